"""Turn what a person types (``host``, ``host:port``, ``[::1]:port``, a URL) into a WebSocket URL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from tuichat.protocol.limits import DEFAULT_PORT, WS_PATH


def websocket_url(address: str, *, default_port: int = DEFAULT_PORT) -> str:
    """``localhost:9000`` → ``ws://localhost:9000/ws``; ``https://h`` → ``wss://h/ws``. Raises ValueError.

    A room's browser link (``http://host:port/r/ROOM``, what invites show) or any page's address
    (``https://host/prefix/``) is taken as its server. The port defaults to ``default_port``, but
    for ``http://`` and ``https://``/``wss://`` (80, 443).
    """
    typed = address = address.strip()  # errors quote what was typed, not the URL made of it
    if not address:
        raise ValueError("the server address is empty")
    if "://" not in address:
        address = f"ws://{address}"
    parts = urlsplit(address)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"unsupported scheme {parts.scheme!r} in {typed!r}; use ws://, wss://, http:// or https://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {typed!r}: a port is a number from 1 to 65535") from None
    if port == 0:
        raise ValueError(f"bad port in {typed!r}: a port is a number from 1 to 65535")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in {typed!r}")
    if port is None and scheme == "wss":
        netloc = _host(host)
    elif port is None and parts.scheme == "http":
        netloc = f"{_host(host)}:80"  # a link from a browser's address bar: its port is the scheme's
    else:
        netloc = f"{_host(host)}:{port or default_port}"
    path = parts.path
    prefix, sep, room = path.rstrip("/").rpartition("/r/")
    if sep and room and "/" not in room:
        return urlunsplit((scheme, netloc, prefix + WS_PATH, "", ""))  # the WebSocket beside a room's page
    if parts.scheme in ("http", "https") and not path.endswith(WS_PATH):
        # A page's address (the start page behind a proxy's prefix, as `serve --public-url` prints
        # it): the WebSocket is beside it. A ws:// or wss:// URL is a WebSocket's own, used as typed.
        return urlunsplit((scheme, netloc, path.rstrip("/") + WS_PATH, "", ""))
    return urlunsplit((scheme, netloc, path if path not in ("", "/") else WS_PATH, parts.query, ""))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def display_address(url: str) -> str:
    """The ``host:port`` form people type, from a WebSocket URL."""
    parts = urlsplit(url)
    host = _host(parts.hostname or "")
    default = 443 if parts.scheme == "wss" else 80
    port = parts.port or default
    if parts.scheme == "wss":
        return f"wss://{host}" + (f":{port}" if port != 443 else "")
    return f"{host}:{port}"
