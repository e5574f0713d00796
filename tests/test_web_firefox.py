"""The web client in a real headless Firefox (Debian's ``firefox-esr``), driven over Marionette.

A smoke test of the same call as the Chromium one in test_web.py: Firefox's fake camera and
microphone reach a Python participant, the Python test pattern plays in the page, chat goes both
ways, and leaving the page gives LEFT. Without ``firefox-esr`` it skips, or fails when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import numpy as np
import pytest

from tests.conftest import wait_until
from tests.firefox_driver import ENTER, FIREFOX, Firefox
from tests.test_call import Peers, peers  # noqa: F401  (fixture)
from tuichat.client import RoomEvent
from tuichat.client.stream import PlayStatus
from tuichat.server import RoomServer

pytestmark = pytest.mark.timeout(45)

#: Collects what goes wrong in the page; run through Marionette, so the page's CSP does not apply.
COLLECT_ERRORS_JS = """
if (!window.__errors) {
  const errors = window.__errors = [];
  window.addEventListener("error", (e) => errors.push(`error: ${e.message} (${e.filename}:${e.lineno})`));
  window.addEventListener("unhandledrejection", (e) => errors.push(`unhandled rejection: ${e.reason}`));
  document.addEventListener("securitypolicyviolation",
    (e) => errors.push(`CSP violation: ${e.violatedDirective} ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
  for (const level of ["error", "warn"]) {
    const original = console[level].bind(console);
    console[level] = (...args) => { errors.push(`console.${level}: ${args.join(" ")}`); original(...args); };
  }
}
return true;
"""

#: The video of the tile named ``arguments[0]``: its size and time, or null without one.
VIDEO_JS = """
const tile = [...document.querySelectorAll('.tile')]
  .find(t => t.querySelector('.tile-name').textContent === arguments[0]);
const v = tile && tile.querySelector('video');
return v ? {width: v.videoWidth, height: v.videoHeight, time: v.currentTime, paused: v.paused, muted: v.muted,
            overlay: tile.querySelector('.tile-overlay').textContent} : null;
"""
PLAYING_JS = VIDEO_JS.replace("return v ? {", "return v && v.videoWidth > 0 && v.currentTime > 0 && !v.paused ? {")


def _firefox_or_skip() -> None:
    if not os.path.exists(FIREFOX):
        message = "headless Firefox unavailable: firefox-esr is not installed (apt-get install firefox-esr)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (required when CI=true)")
        pytest.skip(message)


class FoxPage:
    """The blocking Marionette client run in a thread, so the server on this event loop keeps serving."""

    def __init__(self, firefox: Firefox) -> None:
        self.firefox = firefox

    async def js(self, body: str, *args: Any) -> Any:
        return await asyncio.to_thread(self.firefox.js, body, *args)

    async def do(self, method: str, *args: Any) -> Any:
        return await asyncio.to_thread(getattr(self.firefox, method), *args)

    async def errors(self) -> list[str]:
        return list(await self.js("return window.__errors || []"))

    async def until(self, body: str, *args: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := await self.js(body, *args)):
            if time.monotonic() > deadline:
                status = await self.js("return document.querySelector('.statuses').innerText")
                raise AssertionError(f"not true within {timeout:g} s: {body.strip()} {args} (statuses: "
                                     f"{status!r}, page errors: {await self.errors()})")
            await asyncio.sleep(0.1)
        return value


async def test_firefox_joins_a_call_with_a_terminal_participant(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    _firefox_or_skip()
    pub = await peers.join("pub", publish=True, view=(320, 240, 15), room="R")
    firefox = await asyncio.to_thread(Firefox)
    try:
        page = FoxPage(firefox)
        await page.do("navigate", f"http://127.0.0.1:{server.port}/r/R?name=fox")
        await page.js(COLLECT_ERRORS_JS)
        assert await page.js("return typeof window.tuichat") == "object"  # main.js ran
        await page.do("click", "#join-button")
        await page.until("return document.querySelector('#call-status').dataset.state === 'connected'", timeout=15)
        joined = await pub.room_updates.wait_for(lambda u: u.event is RoomEvent.JOINED
                                                 and u.participant.name == "fox", timeout=5)
        assert joined.participant.name == "fox"

        # Firefox's fake camera and microphone reach Python: fox's stream plays, frames keep coming.
        def fox() -> Any:
            return next((s for s in pub.call.streams.values()
                         if s.name == "fox" and s.status is PlayStatus.PLAYING and s.latest is not None), None)

        await wait_until(lambda: fox() is not None, timeout=10)
        stream = fox()
        first, count, audio = stream.latest.copy(), stream.frames_received, pub.drain.frames_received
        await wait_until(lambda: stream.frames_received >= count + 10 and pub.drain.frames_received >= audio + 25,
                         timeout=5)
        assert stream.latest.shape == (stream.size[1], stream.size[0], 3) and stream.size[0] > 0
        assert not np.array_equal(first, stream.latest)  # Firefox's fake camera changes colour

        # The Python test pattern plays in the page, with sound, and its time moves on.
        await page.until(PLAYING_JS, "pub", timeout=10)
        before = await page.js(VIDEO_JS, "pub")
        after = await page.until(VIDEO_JS.replace("return v ? {", "return v && v.currentTime > arguments[1] ? {"),
                                 "pub", before["time"], timeout=5)
        assert after["width"] > 0 and not after["muted"], (before, after)
        assert await page.js("return document.querySelector('#publish-status').textContent") == \
            "sending: camera on, mic on"

        # Chat both ways.
        await pub.room.send_message("hello firefox")
        await page.until("return [...document.querySelectorAll('#messages .message-text')]"
                         ".some(m => m.textContent === arguments[0])", "hello firefox", timeout=5)
        await page.do("type", "#text", "hello from firefox" + ENTER)
        said = await pub.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE
                                               and u.message.sender.name == "fox", timeout=5)
        assert said.message.text == "hello from firefox"

        # Navigating away: pagehide closes the socket and the others get LEFT.
        errors = await page.errors()
        await page.do("navigate", "about:blank")
        await pub.room_updates.wait_for(lambda u: u.event is RoomEvent.LEFT and u.participant.name == "fox",
                                        timeout=8)
        assert errors == [], json.dumps(errors, indent=1)
    finally:
        await asyncio.to_thread(firefox.close)


async def test_firefox_joins_with_the_camera_off_and_turns_it_on(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Joining with the camera off asks Firefox for the microphone alone and finds the camera by
    listing the devices before any permission for it (enumerateDevices): the room sees the camera
    off, not missing, and turning it on asks for it then, and sends it once the room has been told."""
    _firefox_or_skip()
    pub = await peers.join("pub", view=(160, 120, 15), room="R")

    def told() -> tuple[bool, bool, bool, bool] | None:
        who = pub.room.participant_named("fox")
        s = who.stream if who is not None else None
        return None if s is None else (s.audio, s.video, s.audio_muted, s.video_muted)

    firefox = await asyncio.to_thread(Firefox)
    try:
        page = FoxPage(firefox)
        await page.do("navigate", f"http://127.0.0.1:{server.port}/r/R?name=fox")
        await page.js(COLLECT_ERRORS_JS)
        await page.do("click", "#join-cam")
        assert await page.js("return document.querySelector('#join-button').textContent") == "Join with camera off"
        await page.do("click", "#join-button")
        status = "return document.querySelector('#publish-status').textContent === arguments[0]"
        await page.until(status, "sending: camera off, mic on", timeout=15)
        await wait_until(lambda: told() == (True, True, False, True))
        assert await page.js("const l = window.tuichat.state.local; return [Boolean(l.audio), Boolean(l.video)]") \
            == [True, False]  # the camera was not opened
        assert await page.js("return document.querySelector('#cam').disabled") is False

        await page.do("click", "#cam")
        await page.until(status, "sending: camera on, mic on", timeout=10)
        await wait_until(lambda: told() == (True, True, False, False))

        def fox() -> Any:
            return next((s for s in pub.call.streams.values()
                         if s.name == "fox" and s.status is PlayStatus.PLAYING and s.latest is not None), None)

        await wait_until(lambda: fox() is not None, timeout=10)
        count = fox().frames_received
        await wait_until(lambda: fox().frames_received >= count + 10, timeout=5)
        await page.until(PLAYING_JS, "fox (you)", timeout=10)
        assert await page.errors() == []
    finally:
        await asyncio.to_thread(firefox.close)
