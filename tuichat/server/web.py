"""The web client's HTTP side: the landing page, the room page ``/r/ROOM`` and its static files.

Everything is served from files in the package (``tuichat/web``), never fetched from elsewhere.
Every response carries a Content-Security-Policy that allows only this origin's scripts and styles
(no inline code), ``nosniff`` and ``no-referrer``. A bad room name in a URL gets a short HTML page
with status 400 saying what is wrong and a link back to the start page's form with the room filled
in; the form sent with a bad room or name comes back with what was typed and the reason. Any other
address gets the same kind of page with status 404 and a link to the start page, not aiohttp's plain
text. Names and messages never pass through here: the page's script inserts them as text.
"""

from __future__ import annotations

import contextlib
import html
import importlib.resources
import socket
import string
from collections.abc import Awaitable, Callable
from functools import cache
from urllib.parse import quote, quote_plus, urlsplit

from aiohttp import web

from tuichat.protocol.invites import invite_command, is_loopback_host, terminal_address
from tuichat.protocol.limits import NAME_MAX_LENGTH, TEXT_MAX_LENGTH
from tuichat.protocol.names import name_problem, room_problem

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SCRIPT_MODULES",
    "SECURITY_HEADERS",
    "WebClient",
    "invite_link",
    "join_hints",
    "public_base_url",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; "
    "media-src 'self' blob: mediastream:; img-src 'self' data:; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

#: The page's script: ES modules, main.js importing the others by relative path (a module per part of
#: the page, see main.js). Modules are strict about their MIME type, so they go out as text/javascript.
SCRIPT_MODULES = (
    "main.js",
    "config.js",
    "dom.js",
    "state.js",
    "signal.js",
    "call.js",
    "devices.js",
    "tiles.js",
    "people.js",
    "status.js",
    "messages.js",
    "links.js",
    "composer.js",
    "chatline.js",
    "mute.js",
    "invite.js",
)
#: The static files the pages use, with their content types; nothing else under /static/ exists.
STATIC_FILES = {
    **dict.fromkeys(SCRIPT_MODULES, "text/javascript"),
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
ROOM_PATH = "/r/"
STATIC_PATH = "/static/"
#: How much of an unknown address the 404 page repeats (it is the visitor's own text, escaped).
NOT_FOUND_PATH_SHOWN = 80


@cache
def _asset(name: str) -> bytes:
    return importlib.resources.files("tuichat.web").joinpath(name).read_bytes()


def _template(name: str) -> string.Template:
    return string.Template(_asset(name).decode())


def public_base_url(configured: str | None, request: web.BaseRequest) -> str:
    """The base address people use to reach this server: ``--public-url``, else the request's own."""
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def invite_link(base_url: str, room: str) -> str:
    """``https://host:port/r/ROOM``, the room name percent-encoded (it may hold ``?``, ``#``, ``%``)."""
    return f"{base_url.rstrip('/')}{ROOM_PATH}{quote(room, safe='')}"


def join_hints(host: str, port: int, *, tls: bool, public_url: str | None) -> list[str]:
    """What to tell the people to invite, as the server starts: the command and the browser page.

    A wildcard host (0.0.0.0, ::) is shown as this machine's address on its default route (the one
    others on the network most likely reach), else its name."""
    if public_url:
        base = public_url.rstrip("/")
    else:
        shown = _reachable_address() if host in ("", "0.0.0.0", "::") else host
        base = f"{'https' if tls else 'http'}://{f'[{shown}]' if ':' in shown else shown}:{port}"
    hints = [f"invite from a terminal: {invite_command(terminal_address(base), 'ROOM')}",
             f"invite from a browser: {base}{ROOM_PATH}ROOM  (or {base}/ to choose a room)"]
    if not public_url and is_loopback_host(host):
        # As the terminal client's invite line says of such an address: nobody elsewhere can use it.
        hints.append(f"(this computer only: listening on {host}; --host 0.0.0.0 lets others in, "
                     "and behind a reverse proxy --public-url names the address they use)")
    return hints


def _reachable_address() -> str:
    """This machine's address on its default route; no packet is sent (a UDP socket only routes)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.254.254.254", 9))
        return str(probe.getsockname()[0])
    return socket.gethostname()


def check_public_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL without query or fragment; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not an http:// or https:// URL (like https://chat.example.org:8765)")
    return url.rstrip("/")


def _root(request: web.BaseRequest) -> str:
    """The relative path from the page's URL back to the site root (``.``, ``..``, ``../..``), so the
    pages work unchanged behind a proxy that serves them under a path prefix."""
    depth = request.rel_url.raw_path.count("/") - 1
    return "/".join([".."] * depth) or "."


def _error_page(request: web.BaseRequest, status: int, title: str, detail: str, *,
                room: str | None = None) -> web.Response:
    """A short page saying what went wrong, with a way on: with ``room``, a link back to the start
    page's form with that room filled in, so what was typed can be corrected rather than typed again;
    without, a link to the start page."""
    root = _root(request)
    if room is not None:
        action = f'<p><a href="{html.escape(_form_link(root, room))}">Change the room name</a></p>'
    else:
        action = f'<p><a href="{html.escape(root)}/">Go to the start page</a> to open a room.</p>'
    body = _template("error.html").substitute(
        root=root, status=status, title=html.escape(title), detail=html.escape(detail), action=action)
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")


def _form_link(root: str, room: str) -> str:
    """The start page with its room field holding ``room`` (``../?room=a+b``)."""
    return f"{root}/?room={quote_plus(room)}" if room else f"{root}/"


def _room_refusal(problem: str) -> str:
    return f"That room name does not work: {problem}."


def _name_refusal(problem: str) -> str:
    """The same sentence the room page shows when the server refuses a name."""
    return f"That name can't be used: {problem}. Choose another name."


def _not_found_page(request: web.BaseRequest) -> web.Response:
    path = request.path
    if len(path) > NOT_FOUND_PATH_SHOWN:
        path = path[:NOT_FOUND_PATH_SHOWN - 1] + "…"
    return _error_page(request, 404, "There is no page here",
                       f"Nothing is at {path}. A room's page is at /r/ and the room's name, as in /r/lobby.")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _styled_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every 404 (no route, an unknown static file) as the site's own page rather than aiohttp's
    plain "404: Not Found"; the security headers come with it as with every response."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _not_found_page(request)


class WebClient:
    """Adds the web client's routes and headers to ``app``; ``public_url`` overrides link addresses."""

    def __init__(self, app: web.Application, *, public_url: str | None = None) -> None:
        self.public_url = public_url
        app.router.add_get("/", self._index)
        app.router.add_get("/join", self._join)
        app.router.add_get(ROOM_PATH + "{room:.*}", self._room)
        app.router.add_get(STATIC_PATH + "{name}", self._static)
        app.middlewares.append(_styled_not_found)
        app.on_response_prepare.append(_add_security_headers)

    async def _index(self, request: web.Request) -> web.Response:
        """The start page; ``?room=`` and ``?name=`` fill its form (the error page's way back)."""
        return self._landing(request, request.query.get("room", ""), request.query.get("name", ""))

    def _landing(self, request: web.Request, room: str, name: str, *, error: str = "",
                 status: int = 200) -> web.Response:
        base = public_base_url(self.public_url, request)
        body = _template("index.html").substitute(
            root=_root(request), command=html.escape(invite_command(terminal_address(base), "ROOM")),
            room=html.escape(room), name=html.escape(name), error=html.escape(error))
        return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")

    async def _join(self, request: web.Request) -> web.Response:
        """The landing page's form (no script needed): redirect to the room's page, or show the form
        again with what was typed and why it does not work (a browser that skipped its own checks)."""
        room = request.query.get("room", "").strip()
        name = request.query.get("name", "").strip()
        problem = room_problem(room)
        if problem:
            return self._landing(request, room, name, error=_room_refusal(problem), status=400)
        name_trouble = name_problem(name) if name else None
        if name_trouble:
            return self._landing(request, room, name, error=_name_refusal(name_trouble), status=400)
        target = f"{ROOM_PATH.lstrip('/')}{quote(room, safe='')}"  # relative: works under a proxy's prefix
        if name:
            target += f"?name={quote(name, safe='')}"
        raise web.HTTPSeeOther(target)

    async def _room(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        # /r/lobby/ or /r/lobby// (slashes typed or pasted at the end): the room, not "must not contain
        # '/'". Only literal slashes count: /r/a%2F stays a bad name.
        raw = request.rel_url.raw_path
        slashes = min(len(raw) - len(raw.rstrip("/")), len(room) - len(room.rstrip("/")))
        if slashes and room[:-slashes] and not room_problem(room[:-slashes]):
            query = f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else ""
            # Relative, so it works under a proxy's prefix: one "../" per slash climbs back to /r/.
            raise web.HTTPMovedPermanently(f"{'../' * slashes}{quote(room[:-slashes], safe='')}{query}")
        problem = room_problem(room)
        if problem:
            return _error_page(request, 400, "That room name does not work", f"{problem}. Room names are 1-32 letters, "
                               "numbers, punctuation or symbols, without spaces or '/'.", room=room)
        base = public_base_url(self.public_url, request)
        body = _template("room.html").substitute(root=_root(request), room=html.escape(room),
                                                 invite=html.escape(invite_link(base, room)), base=html.escape(base),
                                                 text_max=TEXT_MAX_LENGTH, name_max=NAME_MAX_LENGTH)
        return web.Response(text=body, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=content_type,
                            headers={"Cache-Control": "no-cache"})


async def _add_security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
