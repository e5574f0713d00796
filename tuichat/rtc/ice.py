"""ICE servers as aiortc takes them, from the ``stun:``/``turn:`` URLs people type.

Checked here, when the server or the call is made: aiortc parses the URLs only when it gathers
candidates, so a typo used to surface as a failed media connection long after start-up.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

__all__ = ["ICE_SCHEMES", "check_ice_url", "ice_server_list"]

#: The URL schemes of RFC 7064 (STUN) and RFC 7065 (TURN), as aiortc spells them (lower case).
ICE_SCHEMES = ("stun", "stuns", "turn", "turns")


def check_ice_url(url: str, schemes: tuple[str, ...] = ICE_SCHEMES) -> str:
    """``url`` if aiortc can use it as a STUN or TURN server (one of ``schemes``), else a ValueError
    that names it (for the CLI to report as a usage error)."""
    if not isinstance(url, str):
        raise TypeError(f"an ICE server URL is a string, not {type(url).__name__} ({url!r})")
    scheme = url.partition(":")[0]
    if scheme not in schemes or scheme not in ICE_SCHEMES:
        kinds = " or ".join(sorted({s[:4].upper() for s in schemes}))
        starts = [f"{s}:" for s in schemes]
        allowed = ", ".join(starts[:-1]) + f" or {starts[-1]}" if len(starts) > 1 else starts[0]
        raise ValueError(f"{url!r} is not a {kinds} URL: it must start with {allowed} "
                         f"(e.g. {schemes[0]}:{schemes[0]}.example.org:3478)")
    try:
        parsed = parse_stun_turn_uri(url)
    except ValueError as exc:
        reason = str(exc).removeprefix("malformed uri").lstrip(": ") or f"expected {scheme}:HOST[:PORT]"
        raise ValueError(f"{url!r} is not a usable {scheme}: URL ({reason})") from None
    if not 0 < parsed["port"] < 65536:
        raise ValueError(f"{url!r} is not a usable {scheme}: URL (port {parsed['port']} is not from 1 to 65535)")
    transports = {"turn": ("udp", "tcp"), "turns": ("tcp",)}.get(scheme)
    if transports is not None and parsed["transport"] not in transports:
        # aiortc would skip this server without a word.
        raise ValueError(f"{url!r} is not a usable {scheme}: URL (aiortc supports transport="
                         f"{' or '.join(transports)} only)")
    return url


def ice_server_list(servers: Iterable[RTCIceServer | str] | RTCIceServer | str) -> list[RTCIceServer]:
    """``stun:``/``turn:`` URLs or ready ``RTCIceServer`` objects (or one of either), as aiortc wants them.

    A bare string is one URL (iterating it gave one "server" per character); every URL is checked."""
    if isinstance(servers, (str, RTCIceServer)):
        servers = [servers]
    checked: list[RTCIceServer] = []
    for server in servers:
        if not isinstance(server, RTCIceServer):
            server = RTCIceServer(urls=check_ice_url(server))
        else:
            urls = [server.urls] if isinstance(server.urls, str) else list(server.urls)
            if not urls:
                raise ValueError(f"{server!r} has no URL")
            for url in urls:
                check_ice_url(url)
        checked.append(server)
    return checked
