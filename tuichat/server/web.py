"""The web client's HTTP side: the landing page, the room page ``/r/ROOM`` and its static files.

Everything is served from files in the package (``tuichat/web``), never fetched from elsewhere.
Every response carries a Content-Security-Policy that allows only this origin's scripts and styles
(no inline code), ``nosniff`` and ``no-referrer``. A bad room name in a URL gets a short HTML page
with status 400 saying what is wrong. Names and messages never pass through here: the page's script
inserts them as text.
"""

from __future__ import annotations

import html
import importlib.resources
import string
from functools import cache
from urllib.parse import quote, urlsplit

from aiohttp import web

from tuichat.protocol.names import name_problem, room_problem

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "WebClient", "invite_link", "public_base_url"]

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

#: The static files the pages use, with their content types; nothing else under /static/ exists.
STATIC_FILES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
ROOM_PATH = "/r/"
STATIC_PATH = "/static/"


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


def _error_page(request: web.BaseRequest, status: int, title: str, detail: str) -> web.Response:
    body = _template("error.html").substitute(
        root=_root(request), status=status, title=html.escape(title), detail=html.escape(detail))
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")


class WebClient:
    """Adds the web client's routes and headers to ``app``; ``public_url`` overrides link addresses."""

    def __init__(self, app: web.Application, *, public_url: str | None = None) -> None:
        self.public_url = public_url
        app.router.add_get("/", self._index)
        app.router.add_get("/join", self._join)
        app.router.add_get(ROOM_PATH + "{room:.*}", self._room)
        app.router.add_get(STATIC_PATH + "{name}", self._static)
        app.on_response_prepare.append(_add_security_headers)

    async def _index(self, request: web.Request) -> web.Response:
        base = public_base_url(self.public_url, request)
        body = _template("index.html").substitute(root=_root(request), address=html.escape(urlsplit(base).netloc))
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def _join(self, request: web.Request) -> web.Response:
        """The landing page's form (no script needed): redirect to the room's page."""
        room = request.query.get("room", "").strip()
        name = request.query.get("name", "").strip()
        problem = room_problem(room)
        if problem:
            return _error_page(request, 400, "That room name does not work", f"{problem}.")
        target = f"{ROOM_PATH.lstrip('/')}{quote(room, safe='')}"  # relative: works under a proxy's prefix
        if name and name_problem(name) is None:
            target += f"?name={quote(name, safe='')}"
        raise web.HTTPSeeOther(target)

    async def _room(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        problem = room_problem(room)
        if problem:
            return _error_page(request, 400, "That room name does not work", f"{problem}. Room names are 1-32 letters, "
                               "numbers, punctuation or symbols, without spaces or '/'.")
        base = public_base_url(self.public_url, request)
        body = _template("room.html").substitute(root=_root(request), room=html.escape(room),
                                                 invite=html.escape(invite_link(base, room)), base=html.escape(base))
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
