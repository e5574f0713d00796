"""How a second person is invited: the command they paste and the server address it names.

Pure string work, shared by the server (what it prints on start), the terminal app's invite line
and its tests; the web page's invite.js writes the same forms.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["invite_command", "is_loopback_host", "terminal_address"]


def invite_command(address: str, room: str, options: Sequence[str] = ()) -> str:
    """The command to paste into a shell: quoted where a shell would read a character (``a;b``,
    ``it's``, ``$HOME``, zsh's globs in ``[::1]``), and a room that starts with '-' after ``--``.
    ``options`` (``--ca-file tuichat.pem``: what the invitee needs too) go last, so a line cut short
    loses them before the room; before ``--`` where there is one."""
    head = ["tuichat connect", shlex.quote(address), "THEIR_NAME"]
    options = [shlex.quote(word) for word in options]
    if room.startswith("-"):
        return " ".join([*head, *options, "--", shlex.quote(room)])
    return " ".join([*head, shlex.quote(room), *options])


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1``: an address that reaches only the machine it is used on."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def terminal_address(public_url: str) -> str:
    """What ``tuichat connect`` takes for a server reached at ``public_url`` (``serve --public-url``),
    as the web page's invite writes it: ``wss://host`` for https, ``host:port`` for http, and the
    WebSocket path spelled out behind a path prefix (a reverse proxy's)."""
    parts = urlsplit(public_url)
    prefix = parts.path.rstrip("/")
    secure = parts.scheme == "https"
    if prefix:
        return f"{'wss' if secure else 'ws'}://{parts.netloc}{prefix}/ws"
    if secure:
        return f"wss://{parts.netloc}"
    return parts.netloc if parts.port else f"{parts.netloc}:80"
