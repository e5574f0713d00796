"""Regenerate screenshots/: real apps against a real server, captured by Textual as SVG.

Run with ``make screenshots``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from tuichat.client import Session
from tuichat.client.call import Call
from tuichat.media import AudioDrain, TestPatternTrack, ToneTrack
from tuichat.server import RoomServer
from tuichat.tui.app import ChatApp
from tuichat.tui.bridge import MediaOptions
from tuichat.tui.widgets import MessageLog, ParticipantList, VideoGrid

OUT = Path(__file__).resolve().parent.parent / "screenshots"
SIZE = (120, 34)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not reach the expected state")
        await pilot.pause(0.05)


async def chat(server: RoomServer) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws"
    async with Session(url, "bob") as bob:
        room = await bob.join("standup")
        await room.send_message("morning! anyone seen the build logs?")
        alice = ChatApp(url, "alice", "standup")
        async with alice.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(alice.query_one(ParticipantList).participants) == 2)
            await pilot.press(*"yes, the flaky test is fixed in #42", "enter")
            await room.send_message("great, shipping it [bold]now[/] (markup shows as typed)")
            await until(pilot, lambda: any("shipping" in s.text for s in alice.query_one(MessageLog).lines))
            await pilot.press(*"/msg bob thanks!", "enter")
            await until(pilot, lambda: any("thanks!" in s.text for s in alice.query_one(MessageLog).lines))
            alice.save_screenshot(str(OUT / "chat.svg"))
            await pilot.press("f1")
            await pilot.pause(0.2)
            alice.save_screenshot(str(OUT / "help.svg"))


async def call(server: RoomServer) -> None:
    """A call: a bot publishing the test pattern, seen in the terminal client."""
    url = f"ws://127.0.0.1:{server.port}/ws"
    async with Session(url, "carol") as carol:
        room = await carol.join("standup")
        drain = AudioDrain()
        drain.start()
        async with Call(room, video=TestPatternTrack(640, 480, 15, label="carol"), audio=ToneTrack(),
                        audio_sink=drain):
            await room.send_message("can you see my screen?")
            alice = ChatApp(url, "alice", "standup", media=MediaOptions(camera="test", mic="none", speaker="none"))
            async with alice.run_test(size=SIZE) as pilot:
                grid = alice.query_one(VideoGrid)

                def playing() -> bool:
                    tile = next((t for t in grid.tiles.values() if t.name == "carol"), None)
                    return tile is not None and tile.cells is not None and tile.seq > 20

                await until(pilot, playing, timeout=20)

                def sent_at_tile_size() -> bool:
                    """carol's picture arrives at the size of her tile (after a resize the server needs a
                    moment to send the new size: until then the old one is drawn scaled up, smeared)."""
                    stream = next((s for s in alice.streams.values() if s.name == "carol"), None)
                    box = grid.view_box()
                    return (stream is not None and stream.size is not None
                            and (abs(stream.size[0] - box[0]) <= 2 or abs(stream.size[1] - box[1]) <= 2))

                async def settle() -> None:
                    await until(pilot, sent_at_tile_size, timeout=20)
                    await pilot.pause(1.0)  # a few frames at that size

                await pilot.press(*"yes, the colour bars are crisp", "enter")
                await pilot.pause(0.5)
                alice.save_screenshot(str(OUT / "call.svg"))
                await pilot.press("f6")
                await until(pilot, lambda: "self" in grid.tiles and grid.tiles["self"].cells is not None)
                await settle()
                alice.save_screenshot(str(OUT / "call-self-view.svg"))
                # The classic 80×24 terminal: compact panels, and F8 for video only.
                await pilot.resize_terminal(80, 24)
                await settle()
                alice.save_screenshot(str(OUT / "call-80x24.svg"))
                await pilot.press("f8")
                await settle()
                alice.save_screenshot(str(OUT / "call-80x24-video-only.svg"))
        await drain.stop()


async def main() -> int:
    OUT.mkdir(exist_ok=True)
    async with RoomServer("127.0.0.1", 0) as server:
        await chat(server)
        await call(server)
    for path in sorted(OUT.glob("*.svg")):
        print(f"wrote {path.relative_to(OUT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
