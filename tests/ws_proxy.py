"""A WebSocket proxy in front of the real server that misbehaves on demand, for the client's
handling of drops and silences that a healthy server on loopback never produces."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Literal

import aiohttp
from aiohttp import web

Action = Literal["pass", "hold", "defer", "close"]
#: ``policy(connection_number, direction, text)``: direction "up" (client to server) or "down".
Policy = Callable[[int, str, str], Action]


def message_type(text: str) -> str:
    try:
        return str(json.loads(text).get("type", ""))
    except (ValueError, AttributeError):
        return ""


class MisbehavingProxy:
    """``async with MisbehavingProxy(upstream_url, policy) as url``: "hold" swallows a message,
    "defer" keeps it back and sends it just before the next message passed the same way (a burst
    the client reads at once), "close" drops both sides of that connection at once."""

    def __init__(self, upstream: str, policy: Policy) -> None:
        self.upstream = upstream
        self.policy = policy
        self.connections = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"ws://127.0.0.1:{self._runner.addresses[0][1]}/ws"

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        number = self.connections
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with aiohttp.ClientSession() as http, http.ws_connect(self.upstream) as server:

            async def relay(source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
                            sink: aiohttp.ClientWebSocketResponse | web.WebSocketResponse, direction: str) -> None:
                deferred: list[str] = []
                async for message in source:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    action = self.policy(number, direction, message.data)
                    if action == "close":
                        break
                    if action == "defer":
                        deferred.append(message.data)
                    elif action == "pass":
                        for text in [*deferred, message.data]:
                            await sink.send_str(text)
                        deferred.clear()

            relays = [asyncio.create_task(relay(client, server, "up")),
                      asyncio.create_task(relay(server, client, "down"))]
            await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
            for task in relays:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            await server.close()
        await client.close()
        return client
