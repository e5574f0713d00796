"""The headless bot in a call: it publishes its test pattern, plays others, reports missing devices."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Recorder
from tests.test_call import Peers, peers, playing  # noqa: F401  (fixture)
from tuichat.bot import Bot, BotOptions

pytestmark = pytest.mark.timeout(60)


class JsonLines:
    """A text stream for ``Bot(out=...)`` that records each JSON line it is given."""

    def __init__(self) -> None:
        self.events = Recorder()
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self.events(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.asynccontextmanager
async def running_bot(url: str, **options: object) -> AsyncIterator[tuple[Bot, JsonLines]]:
    out = JsonLines()
    bot = Bot(BotOptions(url=url, name="bot", room="call", read_stdin=False, **options), out=out)  # type: ignore[arg-type]
    task = asyncio.ensure_future(bot.run())
    try:
        yield bot, out
    finally:
        bot.stop()
        assert await asyncio.wait_for(task, 10) == 0


async def test_bot_publishes_its_test_pattern_to_a_viewer(url: str, peers: Peers) -> None:  # noqa: F811
    async with running_bot(url) as (_bot, out):
        await out.events.wait_for(lambda e: e == {"event": "PUBLISH", "status": "PUBLISHING",
                                                  "audio": True, "video": True}, timeout=10)
        viewer = await peers.join("viewer", view=(160, 90, 15))
        update = await viewer.calls.wait_for(playing("bot"), timeout=5)
        assert update.stream.size == (120, 90)
        await asyncio.wait_for(_audio_arrives(viewer.drain), 5)


async def _audio_arrives(drain: object) -> None:
    while drain.frames_received < 20:  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)


async def test_bot_without_a_camera_says_so_and_still_receives(url: str, peers: Peers) -> None:  # noqa: F811
    await peers.join("alice", publish=True)
    async with running_bot(url, camera="0") as (_bot, out):
        device = await out.events.wait_for(lambda e: e["event"] == "DEVICE", timeout=10)
        assert device["kind"] == "camera" and device["status"] == "UNAVAILABLE"
        assert "no camera at index 0" in device["reason"]
        await out.events.wait_for(lambda e: e["event"] == "PUBLISH" and e["status"] == "PUBLISHING"
                                  and e["audio"] is True and e["video"] is False, timeout=10)
        play = await out.events.wait_for(lambda e: e["event"] == "PLAY" and e["status"] == "PLAYING", timeout=10)
        assert play["participant"] == "alice" and (play["width"], play["height"]) == (120, 90)
