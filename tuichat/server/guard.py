"""Closing HTTP connections that are not sending a request.

aiohttp waits for a request's headers for ever: a socket opened and left idle, or one trickling a
header a byte at a time (slowloris), held a file descriptor until the server ran out of them and
refused everyone, so the WebSocket caps, which count only upgraded connections, never saw them.
The guard times every connection that is neither handling a request (a WebSocket is one long
request) nor still sending a response, and closes it once that has lasted ``request_timeout``. It
also keeps few such waiting connections per address, closing the newest beyond the cap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from tuichat.protocol.invites import is_loopback_host

log = logging.getLogger(__name__)

__all__ = ["IdleConnectionGuard"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class IdleConnectionGuard:
    """Add ``middleware`` to the application and run ``watch(runner.server)`` while it serves."""

    def __init__(self, *, request_timeout: float, max_waiting_per_address: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.request_timeout = request_timeout
        self.max_waiting_per_address = max_waiting_per_address
        self._clock = clock
        # Keyed by aiohttp's connection objects (which take no weak references); each sweep drops
        # the connections that are gone.
        #: Requests each connection is handling now.
        self._busy: dict[RequestHandler, int] = {}
        #: Since when each connection has been waiting for a request.
        self._waiting_since: dict[RequestHandler, float] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = request.protocol
        self._busy[connection] = self._busy.get(connection, 0) + 1
        try:
            return await handler(request)
        finally:
            if (left := self._busy.get(connection, 1) - 1) > 0:
                self._busy[connection] = left
            else:
                self._busy.pop(connection, None)
            self._waiting_since[connection] = self._clock()

    async def watch(self, server: web.Server) -> None:
        """Sweep ``server``'s connections a few times per timeout, until cancelled."""
        interval = min(1.0, self.request_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self.sweep(server.connections)

    def sweep(self, connections: Iterable[RequestHandler]) -> int:
        """Close the connections that waited too long, or beyond the cap of an address; how many."""
        now = self._clock()
        connections = list(connections)
        alive = set(connections)
        for gone in [c for c in self._waiting_since if c not in alive]:
            del self._waiting_since[gone]
        for gone in [c for c in self._busy if c not in alive]:
            del self._busy[gone]
        waiting: defaultdict[str, list[tuple[float, RequestHandler]]] = defaultdict(list)
        closed = 0
        for connection in connections:
            transport = connection.transport
            if transport is None or transport.is_closing():
                continue
            if self._busy.get(connection, 0) or transport.get_write_buffer_size():
                self._waiting_since[connection] = now  # the wait starts when the response is out
                continue
            since = self._waiting_since.setdefault(connection, now)
            host = _host(connection.peername)
            if now - since >= self.request_timeout:
                log.info("closed a connection from %s: no request in %g s", host, self.request_timeout)
                connection.force_close()
                closed += 1
            elif not is_loopback_host(host):  # a reverse proxy on this machine speaks for many
                waiting[host].append((since, connection))
        for host, connections_of_host in waiting.items():
            over = len(connections_of_host) - self.max_waiting_per_address
            if over > 0:
                log.warning("closed %d connections from %s: more than %d waiting without a request",
                            over, host, self.max_waiting_per_address)
                for _since, connection in sorted(connections_of_host, key=lambda item: item[0])[-over:]:
                    connection.force_close()
                closed += over
        return closed


def _host(peername: object) -> str:
    return str(peername[0]) if isinstance(peername, tuple) and peername else str(peername)
