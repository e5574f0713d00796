"""Shared fixtures: a real room server on 127.0.0.1 and a free port, and helpers to wait for events."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tuichat.server import RoomServer, ServerLimits

pytest_plugins = ["tests.conftest_media"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[RoomServer]:
    async with RoomServer("127.0.0.1", 0, limits=ServerLimits(heartbeat=2.0)) as room_server:
        yield room_server


@pytest.fixture
def url(server: RoomServer) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


class Recorder:
    """Collects callback payloads and lets a test wait, with a timeout, for one that matches."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        async def scan() -> Any:
            seen = 0
            while True:
                for item in self.items[seen:]:
                    if predicate(item):
                        return item
                seen = len(self.items)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll a condition that has no event to wait on (e.g. server-side state), failing after ``timeout``."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(interval)

    await asyncio.wait_for(poll(), timeout)


class FakeClock:
    """A clock a test moves by hand (``clock.now = 1.5``), for code that takes ``clock=``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
