"""The room server: an aiohttp application serving the room protocol on ``/ws``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiortc import RTCIceServer

from tuichat.protocol.invites import is_loopback_host
from tuichat.protocol.limits import (
    DEFAULT_MAX_PARTICIPANTS,
    DEFAULT_PORT,
    FRAME_MAX_BYTES,
    HEARTBEAT_INTERVAL,
    RATE_BURST,
    RATE_PER_SECOND,
    WS_PATH,
)
from tuichat.server.connection import Connection
from tuichat.server.guard import IdleConnectionGuard
from tuichat.server.media import NEGOTIATE_TIMEOUT_S, SLOT_REST_S, MediaHub
from tuichat.server.room import Registry
from tuichat.server.web import WebClient, check_public_url, join_hints, public_base_url
from tuichat.tasks import log_unexpected_failure

log = logging.getLogger(__name__)



@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """Every server limit and timeout, each finite, each overridable."""

    max_participants: int = DEFAULT_MAX_PARTICIPANTS
    frame_max_bytes: int = FRAME_MAX_BYTES
    heartbeat: float = HEARTBEAT_INTERVAL
    rate_per_second: float = RATE_PER_SECOND
    rate_burst: int = RATE_BURST
    #: What may wait for a client that does not read: messages, and their encoded bytes (a STATE
    #: with history is up to ~0.4 MB); over either, it is disconnected.
    outbox_size: int = 512
    outbox_bytes: int = 2 * 1024 * 1024
    shutdown_timeout: float = 5.0
    #: Offer to answer, ICE gathering included.
    negotiate_timeout: float = NEGOTIATE_TIMEOUT_S
    #: A freed receive slot stays unassigned this long before it shows someone else.
    slot_rest: float = SLOT_REST_S
    #: WebSocket connections in all, and from one address (loopback, a local reverse proxy, is not
    #: counted per address); over either the handshake gets HTTP 503.
    max_connections: int = 2000
    max_connections_per_address: int = 64
    #: An HTTP connection that is not handling a request (a WebSocket is one) nor sending a
    #: response is closed after this long, and at most this many may wait so per address: aiohttp
    #: waits for headers for ever, so idle or trickling sockets used up file descriptors.
    request_timeout: float = 10.0
    max_waiting_per_address: int = 16


class _TCPSite(web.TCPSite):
    """aiohttp's TCP site with a TLS handshake timeout.

    asyncio holds a socket that never completes the handshake for 60 s, and until it does aiohttp
    (and so the idle guard) does not see it: silent sockets used up file descriptors a minute at a
    time. Here the handshake gets the guard's ``request_timeout``. aiohttp's ``start`` with that
    one argument added (aiohttp is pinned below 4).
    """

    def __init__(self, *args: Any, ssl_handshake_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ssl_handshake_timeout = ssl_handshake_timeout

    async def start(self) -> None:
        if self._ssl_context is None:
            await super().start()
            return
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._ssl_handshake_timeout)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


class RoomServer:
    """Start with ``await start()``, stop with ``await stop()`` (idempotent); ``port`` is the bound port."""

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        *,
        limits: ServerLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ice_servers: Sequence[RTCIceServer | str] = (),
        public_url: str | None = None,
    ) -> None:
        """``ice_servers``: STUN/TURN servers (URLs or ``RTCIceServer``) for the server's peer
        connections; none by default (host candidates only). ``public_url``: the address people
        reach this server at (behind a proxy), used in invite links; by default each request's own
        scheme and Host. Raises ValueError for a ``public_url`` that is not an http(s) URL."""
        self.host = host
        self.public_url = check_public_url(public_url) if public_url else None
        self.requested_port = port
        self.limits = limits or ServerLimits()
        self.ssl_context = ssl_context
        self.registry = Registry(max_participants=self.limits.max_participants)
        self.media = MediaHub(self.registry, ice_servers=ice_servers,
                              negotiate_timeout=self.limits.negotiate_timeout, slot_rest=self.limits.slot_rest)
        self.connections: set[Connection] = set()
        self.guard = IdleConnectionGuard(request_timeout=self.limits.request_timeout,
                                         max_waiting_per_address=self.limits.max_waiting_per_address)
        self.app = web.Application(middlewares=[self.guard.middleware])
        self.app.router.add_get(WS_PATH, self._handle_ws)
        self.web = WebClient(self.app, public_url=self.public_url)
        self._runner: web.AppRunner | None = None
        self._guard_task: asyncio.Task[None] | None = None
        self.port: int = port

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=self.limits.shutdown_timeout)
        await self._runner.setup()
        await _TCPSite(self._runner, self.host, self.requested_port, ssl_context=self.ssl_context,
                       ssl_handshake_timeout=self.limits.request_timeout).start()
        assert self._runner.server is not None
        self._guard_task = asyncio.create_task(self.guard.watch(self._runner.server), name="idle connection guard")
        self._guard_task.add_done_callback(log_unexpected_failure)
        self.port = self._runner.addresses[0][1]
        log.info("tuichat server listening on %s:%d", self.host, self.port)
        for line in join_hints(self.host, self.port, tls=self.ssl_context is not None, public_url=self.public_url):
            log.info("%s", line)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._guard_task is not None:
            self._guard_task.cancel()
            self._guard_task = None
        # All at once and within the limit: one by one, each client that never answers the close
        # frame held the shutdown for aiohttp's 10 s close timeout.
        closes = [c.ws.close(code=1001, message=b"server shutting down") for c in list(self.connections)]
        try:
            async with asyncio.timeout(self.limits.shutdown_timeout):
                await asyncio.gather(*closes, return_exceptions=True)
        except TimeoutError:
            log.warning("some clients did not answer the close within %g s; dropping them",
                        self.limits.shutdown_timeout)
        await runner.cleanup()
        await self.media.close()
        log.info("tuichat server stopped")

    async def __aenter__(self) -> RoomServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        peer = f"{request.remote}"
        refusal = self._too_many(peer)
        if refusal:
            log.warning("refused a connection from %s: %s", peer, refusal)
            return web.Response(status=503, text=f"{refusal}; try again later\n", headers={"Retry-After": "10"})
        ws = web.WebSocketResponse(heartbeat=self.limits.heartbeat, max_msg_size=self.limits.frame_max_bytes)
        await ws.prepare(request)
        connection = Connection(ws, self.registry, self.limits, peer, media=self.media,
                                public_url=public_base_url(self.public_url, request))
        self.connections.add(connection)
        log.info("connection from %s", peer)
        try:
            await connection.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection from %s crashed", peer)
        finally:
            self.connections.discard(connection)
            if not ws.closed:
                await ws.close()
            log.info("connection from %s closed (code %s)", peer, ws.close_code)
        return ws


    def _too_many(self, peer: str) -> str:
        """Why one more connection from ``peer`` would be one too many ('' if it would not): one
        machine opening thousands of idle sockets must not use up the server's file descriptors."""
        if len(self.connections) >= self.limits.max_connections:
            return f"the server has {len(self.connections)} connections, its limit"
        if is_loopback_host(peer):
            return ""
        from_peer = sum(1 for c in self.connections if c.peer == peer)
        if from_peer >= self.limits.max_connections_per_address:
            return f"{from_peer} connections from {peer}, the limit for one address"
        return ""


async def serve_forever(server: RoomServer) -> None:
    """Run until cancelled (Ctrl+C in the CLI) or SIGTERM (``kill``, systemd, docker stop), then stop
    cleanly: clients are told "server shutting down" (1001) and reconnect, rather than timing out."""
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
        log.info("SIGTERM: stopping")
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        await server.stop()
