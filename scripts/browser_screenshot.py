"""The web client in a call with a terminal participant, photographed in headless Chromium.

Starts a room server on a free port, a terminal participant publishing the test pattern and a tone
(the Python Session and Call, as the bot uses), opens the room page in Debian's Chromium with its
fake camera and microphone, chats a little, and saves ``screenshots/browser-call.png``.

    .venv/bin/python scripts/browser_screenshot.py [OUTPUT.png]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright

from tuichat.client import Session
from tuichat.client.call import Call
from tuichat.client.stream import PlayStatus
from tuichat.media import AudioDrain, TestPatternTrack, ToneTrack
from tuichat.server import RoomServer

OUTPUT = Path(__file__).resolve().parent.parent / "screenshots" / "browser-call.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars",
]
TIMEOUT_S = 20.0


async def _until(page: object, expression: str) -> None:
    async def poll() -> None:
        while not await page.evaluate(expression):  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), TIMEOUT_S)


async def _wait(predicate: object) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), TIMEOUT_S)


async def shoot(output: Path) -> None:
    async with RoomServer("127.0.0.1", 0) as server:
        session = Session(f"ws://127.0.0.1:{server.port}/ws", "ada (terminal)")
        tracks = [TestPatternTrack(640, 480, 15, label="ada"), ToneTrack()]
        drain = AudioDrain()
        call: Call | None = None
        try:
            await session.connect()
            room = await session.join("standup")
            call = Call(room, video=tracks[0], audio=tracks[1], audio_sink=drain, view=(320, 240, 15))
            await call.start()
            await room.send_message("morning! joining from the terminal over ssh")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                           args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 720})
                    await page.goto(f"http://127.0.0.1:{server.port}/r/standup?name=grace")
                    await page.click("#join-button")
                    await _until(page, "document.querySelector('#call-status').dataset.state === 'connected'")
                    await _until(page, "[...document.querySelectorAll('.tile:not(.self) video')]"
                                       ".some(v => v.videoWidth > 0 && v.currentTime > 0.5)")
                    await page.fill("#text", "hi ada, the browser sees your test pattern")
                    await page.press("#text", "Enter")
                    await _wait(lambda: any(s.status is PlayStatus.PLAYING for s in call.streams.values()))
                    await room.send_message("and I see your camera, 320×240 in half blocks",
                                            to=room.participant_named("grace"))
                    await _until(page, "document.querySelectorAll('#messages .message').length >= 3")
                    await asyncio.sleep(0.5)  # let the last frame and the scrolled log settle
                    output.parent.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=str(output))
                finally:
                    await browser.close()
        finally:
            if call is not None:
                await call.close()
            await drain.stop()
            for track in tracks:
                track.stop()
            await session.disconnect()
    print(f"wrote {output}")


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    asyncio.run(shoot(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
