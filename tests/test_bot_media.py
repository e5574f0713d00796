"""The headless bot in a call: it publishes its test pattern, plays others, reports missing devices."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Recorder
from tests.test_call import Peers, UnpluggableCamera, peers, playing  # noqa: F401  (fixture)
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


async def test_a_bot_whose_camera_stops_says_so_and_goes_on_with_sound(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tuichat.media

    camera = UnpluggableCamera(320, 240, 15, label="bot")
    monkeypatch.setattr(tuichat.media, "open_video_source", lambda spec, label="": camera)
    async with running_bot(url, camera="0") as (_bot, out):
        await out.events.wait_for(lambda e: e == {"event": "PUBLISH", "status": "PUBLISHING",
                                                  "audio": True, "video": True}, timeout=10)
        camera.unplugged = True
        device = await out.events.wait_for(lambda e: e["event"] == "DEVICE", timeout=10)
        assert device == {"event": "DEVICE", "kind": "camera", "status": "ENDED",
                          "reason": "the camera stopped sending"}
        await out.events.wait_for(lambda e: e == {"event": "PUBLISH", "status": "PUBLISHING",
                                                  "audio": True, "video": False}, timeout=10)


async def test_a_bot_with_no_camera_and_no_mic_still_watches(url: str, peers: Peers) -> None:  # noqa: F811
    """`--camera none --mic none` is a watcher (it printed no stream events: it joined no call);
    `--chat-only` is the bot that joins no call."""
    import sys

    await peers.join("alice", publish=True)
    port = url.split(":")[2].split("/")[0]
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tuichat", "bot", f"127.0.0.1:{port}", "watcher", "call", "--camera", "none",
        "--mic", "none", "--stay", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert bot.stdout is not None

        async def play() -> dict[str, object]:
            while line := await bot.stdout.readline():  # type: ignore[union-attr]
                event = json.loads(line)
                if event["event"] == "PLAY" and event["status"] == "PLAYING":
                    return event  # type: ignore[no-any-return]
            raise AssertionError("the bot exited without playing anyone")

        event = await asyncio.wait_for(play(), 20)
        assert event["participant"] == "alice"
    finally:
        bot.terminate()
        await bot.wait()
