"""The app in a real call: the video widget shows the publisher's pattern where it belongs, and
mute, camera-off, leaving, preview, focus, self-view and missing devices all reach the screen."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from rich.segment import Segment
from textual import events

from tests.conftest import free_port
from tests.test_call import UnpluggableCamera
from tests.test_tui import SIZE, log_text, names, screen_text, until
from tuichat.client import Session, SessionOptions
from tuichat.client.call import Call
from tuichat.media import BAR_BAND, BARS, AudioDrain, TestPatternTrack, ToneTrack
from tuichat.render import ColorMode
from tuichat.server import RoomServer, ServerLimits
from tuichat.tui.app import ChatApp
from tuichat.tui.bridge import MediaOptions
from tuichat.tui.widgets import StatusLine, VideoGrid

RECEIVE_ONLY = MediaOptions(camera="none", mic="none", speaker="none")


@dataclass
class Publisher:
    session: Session
    call: Call
    drain: AudioDrain


async def join_and_publish(url: str, name: str, *, tone: bool = False) -> Publisher:
    """``name`` in the lobby, sending the test pattern (and a tone)."""
    session = Session(url, name)
    await session.connect()
    drain = AudioDrain()
    drain.start()
    call = Call(await session.join("lobby"), video=TestPatternTrack(640, 480, 15, label=name),
                audio=ToneTrack() if tone else None, audio_sink=drain)
    await call.start()
    return Publisher(session, call, drain)


async def leave(publisher: Publisher) -> None:
    await publisher.call.close()
    await publisher.drain.stop()
    await publisher.session.disconnect()


@pytest.fixture
async def publisher(url: str) -> AsyncIterator[Publisher]:
    carol = await join_and_publish(url, "carol", tone=True)
    yield carol
    await leave(carol)


def cell_colour(grid: VideoGrid, x: int, y: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The (top, bottom) colours drawn at widget cell (x, y), read from the strip the widget renders."""
    strip = grid.render_line(y)
    column = 0
    segment: Segment
    for segment in strip:
        if column + segment.cell_length > x:
            assert segment.text[x - column] == "▀", f"cell {x},{y} is {segment.text!r}"
            style = segment.style
            assert style is not None and style.color is not None and style.bgcolor is not None
            return style.color.get_truecolor(), style.bgcolor.get_truecolor()  # type: ignore[return-value]
        column += segment.cell_length
    raise AssertionError(f"no cell at {x},{y}")


def notices(app: ChatApp) -> str:
    """The toasts on screen now."""
    return " ".join(str(n.message) for n in app._notifications)


def video_playing(app: ChatApp, key: str) -> bool:
    tile = app.query_one(VideoGrid).tiles.get(key)
    return tile is not None and tile.cells is not None and tile.source is not None


async def test_the_publishers_pattern_is_drawn_with_its_colours_in_place(url: str, publisher: Publisher) -> None:
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        grid = app.query_one(VideoGrid)
        tile = grid.tiles[carol]
        placement = tile.placement
        assert placement is not None
        # Aspect kept: 4:3 source, cells are 1×2 pixels.
        assert abs(placement.cols / (2 * placement.rows) - 4 / 3) < 0.1
        assert placement.cols <= tile.width and placement.rows <= tile.height - 1
        # Colour bars: sample the middle of each bar, in the middle of the bar band.
        top_row = tile.y + 1 + placement.y
        y = top_row + int((BAR_BAND[0] + BAR_BAND[1]) / 2 * placement.rows)
        for name, rgb, (x0, x1) in BARS:
            x = tile.x + placement.x + int((x0 + x1) / 2 * placement.cols)
            top, bottom = cell_colour(grid, x, y)
            for drawn in (top, bottom):
                assert max(abs(a - b) for a, b in zip(drawn, rgb, strict=True)) < 60, f"{name} bar drew {drawn}"
        # The picture moves: the rendered rows change over time.
        first = tile.seq
        await until(pilot, lambda: tile.seq > first + 3)
        status = app.query_one(StatusLine).media
        assert "carol PLAYING" in status and "fps" in status and "receive-only" in status
        # A narrow terminal keeps the states and drops details first (the room name, the numbers).
        await pilot.resize_terminal(62, 24)
        await pilot.pause()
        line = app.query_one(StatusLine).render().plain
        assert line.startswith("● ESTABLISHED") and "carol PLAYING" in line and "…" not in line, line
        assert len(line) <= 60 and "room lobby" not in line
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert "room lobby" in app.query_one(StatusLine).render().plain


async def test_camera_off_mute_and_leaving_reach_the_viewer(url: str, publisher: Publisher) -> None:
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        await publisher.call.mute_video(True)
        await publisher.call.mute_audio(True)
        grid = app.query_one(VideoGrid)
        await until(pilot, lambda: grid.tiles[carol].source is None and grid.tiles[carol].status == "camera off")
        await until(pilot, lambda: "mic off" in screen_text(app) and "cam off" in screen_text(app))
        await publisher.call.mute_video(False)
        await until(pilot, lambda: video_playing(app, carol), timeout=10)
        await publisher.call.close()
        await publisher.session.disconnect()
        await until(pilot, lambda: carol not in grid.tiles, timeout=10)
        await until(pilot, lambda: "nobody is sharing video yet" in screen_text(app))
        await until(pilot, lambda: names(app) == ["alice"])


async def test_someone_with_no_camera_is_not_said_to_have_it_off(url: str) -> None:
    """Browser QA: a bot with --camera none read 'camera off' here ('no camera' in the browser)."""
    session = Session(url, "nocam")
    await session.connect()
    drain = AudioDrain()
    call = Call(await session.join("lobby"), video=None, audio=ToneTrack(), audio_sink=drain)
    await call.start()
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    try:
        async with app.run_test(size=SIZE) as pilot:
            nocam = session.room.me.id  # type: ignore[union-attr]
            grid = app.query_one(VideoGrid)
            await until(pilot, lambda: nocam in grid.tiles and grid.tiles[nocam].status == "no camera", timeout=15)
    finally:
        await leave(Publisher(session, call, drain))


async def test_missing_devices_are_explained_and_the_call_is_receive_only(url: str, publisher: Publisher) -> None:
    media = MediaOptions(camera="0", mic="default", speaker="default")
    app = ChatApp(url, "alice", "lobby", media=media)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        text = log_text(app)
        assert "No camera at index 0" in text and "receiving video only" in text  # a sentence of its own
        assert "No microphone" in text and "No speaker" in text
        assert "no mic · no cam · receive-only" in app.query_one(StatusLine).media
        await pilot.press("f3")  # camera key with no camera: a warning, not a crash
        await until(pilot, lambda: "There is no camera" in notices(app))
        await pilot.press("f2")
        await until(pilot, lambda: "There is no microphone" in notices(app))
        # QA: F6 added an empty "no camera" tile that shrank everyone else's, without a word.
        await pilot.press("f6")
        await until(pilot, lambda: "No self-view: no camera could be opened" in notices(app))
        assert "self" not in app.query_one(VideoGrid).tiles and not app.self_view
        assert app.is_running


async def test_preview_lowers_the_subscribed_size_and_rate(url: str, publisher: Publisher) -> None:
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=(160, 50)) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        call = app.bridge.call
        assert call is not None
        stream = call.streams[carol]
        grid = app.query_one(VideoGrid)

        def fits_the_tile() -> bool:  # the picture fills the tile's pixel box in one dimension
            box = grid.view_box()
            return stream.size is not None and (abs(stream.size[0] - box[0]) <= 2 or abs(stream.size[1] - box[1]) <= 2)

        await until(pilot, fits_the_tile, timeout=6)
        full = stream.size
        assert full is not None
        # Timed from the key: Pilot's press returns only once the screen is idle, up to 2 s later
        # here (the picture keeps it busy), and that wait was counted as the switch's (2.03 s).
        started = time.monotonic()
        press = asyncio.ensure_future(pilot.press("f4"))
        await until(pilot, lambda: stream.size is not None and stream.size[1] < full[1] * 0.6, timeout=4)
        assert time.monotonic() - started < 2.0  # the bound (0.05–0.3 s measured)
        await press
        assert "PREVIEW" in app.query_one(StatusLine).media
        await until(pilot, lambda: 2 < stream.fps <= 7, timeout=8)
        # The server applies preview for this subscriber: a small picture under the preview budget.
        assert stream.size is not None and stream.size[0] <= 160 and stream.size[1] <= 90
        await until(pilot, lambda: stream.kbps is not None and stream.kbps < 40, timeout=6)
        await pilot.press("f4")
        await until(pilot, lambda: stream.size == full, timeout=4)


async def test_self_view_asked_for_before_the_camera_is_open_shows_it_once_open() -> None:
    """F6 pressed before the join (the camera opens after it): the tile said "no camera" and stayed
    so, with the camera sending all along (a loaded machine's test run caught it)."""
    port = free_port()
    app = ChatApp(f"ws://127.0.0.1:{port}/ws", "alice", "lobby",
                  media=MediaOptions(camera="test", mic="none", speaker="none"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")  # the server is not up yet: nothing is open
        grid = app.query_one(VideoGrid)
        assert not app.bridge.devices_known and grid.tiles["self"].status == "starting camera…"
        async with RoomServer("127.0.0.1", port):
            await until(pilot, lambda: video_playing(app, "self"), timeout=15)
            await pilot.press("ctrl+q")


async def test_focus_cycles_and_self_view_shows_our_own_camera(url: str, publisher: Publisher) -> None:
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        grid = app.query_one(VideoGrid)
        await pilot.press("f6")
        await until(pilot, lambda: video_playing(app, "self"))
        assert len(grid.shown_tiles) == 2
        await pilot.press("f5")
        assert grid.focused_key == carol and [t.key for t in grid.shown_tiles] == [carol]
        await pilot.press("f5")
        assert grid.focused_key == "self"
        await pilot.press("f5")
        assert grid.focused_key is None and len(grid.shown_tiles) == 2
        # Camera off turns the self-view into a note, and the others see camera off.
        await pilot.press("f3")
        await until(pilot, lambda: grid.tiles["self"].source is None)
        async with Session(url, "watcher") as watcher:
            room = await watcher.join("lobby")
            alice = room.participant_named("alice")
            assert alice is not None and alice.video_muted


async def test_self_view_switched_while_focused_on_someone_says_where_it_is(url: str, publisher: Publisher) -> None:
    """QA: F6 after F5 seemed to do nothing: the self-view tile was added, but focus shows one tile."""
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        grid = app.query_one(VideoGrid)
        await pilot.press("f5")
        assert grid.focused_key == carol
        # Timed from the key: Pilot's press() returns once the screen is idle, after the 2 s toast.
        pressed = asyncio.ensure_future(pilot.press("f6"))
        await until(pilot, lambda: "Self-view on: the video is focused on carol (F5 goes on" in notices(app))
        await pressed
        assert "self" in grid.tiles and [t.key for t in grid.shown_tiles] == [carol]
        await pilot.press("f5")
        assert grid.focused_key == "self"


async def test_a_camera_unplugged_mid_call_is_said_and_the_call_goes_on(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No camera exists here: the device is a test pattern that can be unplugged (test_call's), opened
    through the app's own path."""
    import tuichat.media

    camera = UnpluggableCamera(320, 240, 15, label="alice")
    monkeypatch.setattr(tuichat.media, "open_video_source", lambda spec, label="": camera)
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="0", mic="none", speaker="none"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await until(pilot, lambda: video_playing(app, "self"), timeout=15)
        await until(pilot, lambda: "cam on" in screen_text(app))
        camera.unplugged = True
        await until(pilot, lambda: "The camera stopped sending; receiving video only." in log_text(app))
        await until(pilot, lambda: "no cam" in screen_text(app) and "self" not in app.query_one(VideoGrid).tiles)
        async with Session(url, "watcher") as watcher:
            room = await watcher.join("lobby")
            alice = room.participant_named("alice")
            assert alice is not None and not alice.publishing  # nothing left to send: unpublished
        await pilot.press("f3")  # the camera key says why there is nothing to turn on
        await until(pilot, lambda: "There is no camera to turn on" in notices(app))
        assert "(you)  cam" not in screen_text(app)  # our row in the people list: sending nothing


async def test_quitting_while_the_microphone_opens_stops_the_camera_already_open(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a device can take seconds (PortAudio, a USB camera). Quitting meanwhile left the
    camera opened just before running: the call did not have it yet, so nothing stopped it."""
    import tuichat.media

    camera = TestPatternTrack(320, 240, 15, label="alice")
    microphone_opening, release_microphone = threading.Event(), threading.Event()

    def open_microphone(spec: str) -> ToneTrack:
        microphone_opening.set()
        release_microphone.wait(10)
        return ToneTrack()

    monkeypatch.setattr(tuichat.media, "open_video_source", lambda spec, label="": camera)
    monkeypatch.setattr(tuichat.media, "open_audio_source", open_microphone)
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="0", mic="default", speaker="none"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, microphone_opening.is_set, timeout=10)
            # In the room, devices opening: said so, not "not in the call yet" (we are in the room).
            await until(pilot, lambda: "mic on · cam on · opening devices…" in app.query_one(StatusLine).publish.full)
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.bridge.stopped, timeout=10)
        assert camera.readyState == "ended"
    finally:
        release_microphone.set()


async def test_after_a_refused_rejoin_no_tile_waits_for_a_call_that_will_not_come(
        url: str, server: RoomServer, publisher: Publisher) -> None:
    """Review: the rejoin refused (our name taken meanwhile), the others' tiles said "reconnecting…"
    for ever, and F6 put up a "starting camera…" self-view that never started."""
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"),
                  session_options=SessionOptions(backoff_initial=1.0, backoff_max=1.0))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        alice = app.bridge.room.me.id  # type: ignore[union-attr]
        ours = next(c for c in server.connections if c.member is not None and c.member.id == alice)
        await ours.ws.close()
        async with Session(url, "alice") as impostor:
            await impostor.join("lobby")
            await until(pilot, lambda: "Dropped from lobby" in log_text(app), timeout=10)
            grid = app.query_one(VideoGrid)
            await until(pilot, lambda: not grid.tiles and "not in lobby" in screen_text(app))
            await pilot.press("f6")
            await until(pilot, lambda: "Not in a call: could not rejoin" in notices(app))
            assert not grid.tiles


@pytest.fixture
async def dave(url: str, publisher: Publisher) -> AsyncIterator[Publisher]:
    """A second publisher in the lobby, after carol."""
    second = await join_and_publish(url, "dave")
    yield second
    await leave(second)


async def test_after_focus_everyone_in_the_grid_is_sent_at_the_grid_size_again(
        url: str, publisher: Publisher, dave: Publisher) -> None:
    """Focus sends the others small and slow; back in the grid they must be full again, and follow
    later resizes (they stayed at 64×48, 2 fps for the rest of the call)."""
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=(200, 56)) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        dave_id = dave.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol) and video_playing(app, dave_id), timeout=15)
        call = app.bridge.call
        assert call is not None
        grid = app.query_one(VideoGrid)

        def in_the_grid(key: str) -> bool:  # sent at the size of a grid tile, at the full rate
            stream, box = call.streams.get(key), grid.view_box()  # absent for a moment in a media restart
            return (stream is not None and stream.size is not None and stream.fps > 10
                    and (abs(stream.size[0] - box[0]) <= 2 or abs(stream.size[1] - box[1]) <= 2))

        await until(pilot, lambda: in_the_grid(carol) and in_the_grid(dave_id), timeout=8)
        assert grid.view_box()[0] > 64
        await pilot.press("f5")  # carol: dave is hidden
        await until(pilot, lambda: dave_id in call.streams and call.streams[dave_id].size == (64, 48), timeout=6)
        await pilot.press("f5")  # dave: carol is hidden
        await until(pilot, lambda: carol in call.streams and call.streams[carol].size == (64, 48), timeout=6)
        await until(pilot, lambda: app.query_one(StatusLine).playing.short.startswith("dave +1 PLAYING"))
        await pilot.press("f5")  # back to the grid
        assert grid.focused_key is None
        await until(pilot, lambda: in_the_grid(carol) and in_the_grid(dave_id), timeout=8)
        # A bigger terminal: both grow with the grid.
        before = grid.view_box()
        await pilot.resize_terminal(250, 70)
        await until(pilot, lambda: grid.view_box() != before and in_the_grid(carol) and in_the_grid(dave_id),
                    timeout=8)


async def test_someone_who_starts_sending_while_another_is_focused_is_fetched_small(
        url: str, publisher: Publisher) -> None:
    """Review: a tile added while someone was focused changed no view box, so no view was sent for
    it: the newcomer, hidden behind the focus, came at the full size and rate (on a thin link too)."""
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=(200, 56)) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        await pilot.press("f5")
        assert app.query_one(VideoGrid).focused_key == carol
        dave = await join_and_publish(url, "dave")
        try:
            dave_id = dave.session.room.me.id  # type: ignore[union-attr]
            call = app.bridge.call
            assert call is not None
            await until(pilot, lambda: dave_id in call.streams and call.streams[dave_id].size == (64, 48), timeout=8)
        finally:
            await leave(dave)


def has_preview(server: RoomServer, name: str, preview: bool, *participants: str) -> bool:
    """The server's views for ``name``'s connection: the default and every participant's in ``preview``."""
    connection = next(c for c in server.connections if c.member is not None and c.member.name == name)
    views = connection.views
    return (views.default.preview is preview and all(p in views.per_participant for p in participants)
            and all(v.preview is preview for v in views.per_participant.values()))


async def test_a_media_restart_keeps_the_tile_its_place_and_the_focus(
        url: str, publisher: Publisher, dave: Publisher) -> None:
    """QA, 7 people on a loaded machine: a publisher's media restart removed their tile, which came
    back at the end of the grid (the grid reshuffled with nobody coming or going) and dropped the
    focus on them without a word. The self-view landed in the middle of the grid."""
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        dave_id = dave.session.room.me.id  # type: ignore[union-attr]
        grid = app.query_one(VideoGrid)
        await until(pilot, lambda: video_playing(app, carol) and video_playing(app, dave_id), timeout=15)
        await pilot.press("f6")
        await until(pilot, lambda: video_playing(app, "self"))
        assert list(grid.tiles) == [carol, dave_id, "self"]
        await pilot.press("f5")
        assert grid.focused_key == carol
        # Carol's media restarts: her stream stops, then comes back on a new peer connection.
        await publisher.call.close()
        await until(pilot, lambda: grid.tiles[carol].status == "waiting for video…")
        publisher.call = Call(publisher.session.room, video=TestPatternTrack(640, 480, 15, label="carol"),  # type: ignore[arg-type]
                              audio=None, audio_sink=publisher.drain)
        await publisher.call.start()
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        assert grid.focused_key == carol
        assert list(grid.tiles) == [carol, dave_id, "self"]
        # Someone who goes for good: their tile leaves at once.
        await leave(dave)
        await until(pilot, lambda: dave_id not in grid.tiles, timeout=10)


async def test_a_media_connection_lost_and_back_is_said_in_the_log(
        server: RoomServer, url: str, publisher: Publisher) -> None:
    """QA: the media connection failed on a loaded machine; every tile said "waiting for video…" and
    PUBLISHING left the status line for 30 s, and the log said nothing at all."""
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        alice = app.bridge.room.me.id  # type: ignore[union-attr]
        await server.media.sessions[alice].pc.close()  # the server gives up on our media
        await until(pilot, lambda: "Media connection lost (the media connection failed); reconnecting…"
                    in log_text(app), timeout=10)
        await until(pilot, lambda: "Media reconnected." in log_text(app), timeout=15)
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        assert log_text(app).count("Media connection lost") == 1
        assert log_text(app).index("Media connection lost") < log_text(app).index("Media reconnected.")


async def test_preview_pressed_in_a_burst_ends_in_the_last_state_pressed(
        server: RoomServer, url: str, publisher: Publisher, dave: Publisher) -> None:
    """Each press asks the server for every participant's view; a burst of presses once outran the
    server's command rate limit, and the views asked for last were refused: the status said PREVIEW
    while the pictures stayed full (or the other way round)."""
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        dave_id = dave.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol) and video_playing(app, dave_id), timeout=15)
        await pilot.press("f5")  # carol focused, dave hidden: three views per press
        for presses, preview in ((15, True), (15, False), (15, True)):
            for _ in range(presses):  # as fast as a held key repeats: Pilot.press waits for an idle process
                app.post_message(events.Key("f4", None))
            await until(pilot, lambda: app.preview is preview, timeout=5)  # noqa: B023
            started = time.monotonic()
            await until(pilot, lambda: has_preview(server, "alice", preview, dave_id), timeout=5)  # noqa: B023
            assert time.monotonic() - started < 2.0, "the last press took effect late"
            assert app.preview is preview
            assert ("PREVIEW" in app.query_one(StatusLine).media) is preview
        stream = app.bridge.call.streams[carol]  # type: ignore[union-attr]
        await until(pilot, lambda: stream.size is not None and stream.size[0] <= 160 and stream.size[1] <= 90,
                    timeout=4)
        assert has_preview(server, "alice", True, dave_id) and app.preview, "a later request overrode the last"


class TestATightCommandRate:
    """A server that allows few commands: views it refuses for the rate are sent again, the latest."""

    @pytest.fixture
    async def server(self) -> AsyncIterator[RoomServer]:
        limits = ServerLimits(heartbeat=2.0, rate_per_second=1.0, rate_burst=4)
        async with RoomServer("127.0.0.1", 0, limits=limits) as room_server:
            yield room_server

    async def test_views_refused_for_the_rate_are_sent_again(
            self, server: RoomServer, url: str, publisher: Publisher, dave: Publisher,
            caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="tuichat.tui.bridge")
        app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
        async with app.run_test(size=SIZE) as pilot:
            carol = publisher.session.room.me.id  # type: ignore[union-attr]
            dave_id = dave.session.room.me.id  # type: ignore[union-attr]
            await until(pilot, lambda: video_playing(app, carol) and video_playing(app, dave_id), timeout=15)
            await pilot.press("f5", "f4")  # six views, and the join and offer before them: over the burst
            await until(pilot, lambda: has_preview(server, "alice", True, dave_id), timeout=12)
            assert "views refused for the command rate" in caplog.text
            assert "PREVIEW" in app.query_one(StatusLine).media


async def test_while_the_server_is_away_the_screen_says_what_it_shows_is_old() -> None:
    """The people list is who was there (dimmed, titled so), tiles say reconnecting, and nothing is
    said to be PLAYING or PUBLISHING; all of it comes back when the server does (a restart on the
    same port). Turning the camera off meanwhile is kept and told to the room after the rejoin
    (it crashed the app: the call still thought it was connected)."""
    from tests.conftest import free_port
    from tuichat.tui.widgets import ParticipantList

    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    server: RoomServer | None = RoomServer("127.0.0.1", port)
    await server.start()
    carol = await join_and_publish(url, "carol")
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: any(video_playing(app, k) for k in app.query_one(VideoGrid).tiles), timeout=15)
            status, people = app.query_one(StatusLine), app.query_one(ParticipantList)
            assert "PLAYING" in status.playing.full and not people.has_class("-stale")
            await until(pilot, lambda: "PUBLISHING" in status.publish.full, timeout=10)
            await server.stop()
            server = None
            await until(pilot, lambda: people.has_class("-stale"), timeout=10)
            assert "before the drop" in str(people.border_title)
            assert status.playing.full == "" and "PLAYING" not in screen_text(app)
            assert all(tile.source is None and tile.status == "reconnecting…"
                       for tile in app.query_one(VideoGrid).tiles.values())
            await until(pilot, lambda: "PUBLISHING" not in status.publish.full)
            await pilot.press("f3")  # camera off while away
            await until(pilot, lambda: "cam off" in status.publish.full)
            assert app.is_running
            server = RoomServer("127.0.0.1", port)
            await server.start()
            await until(pilot, lambda: not people.has_class("-stale") and "PLAYING" in status.playing.full,
                        timeout=20)
            async with Session(url, "watcher") as watcher:  # the room was told after the rejoin
                alice = (await watcher.join("lobby")).participant_named("alice")
                assert alice is not None and alice.video_muted
            await until(pilot, lambda: any(video_playing(app, k) for k in app.query_one(VideoGrid).tiles), timeout=15)
            assert "Media connection lost" not in log_text(app)  # the session's notices said it all
    finally:
        await leave(carol)
        if server is not None:
            await server.stop()


async def test_camera_turned_off_before_the_join_starts_the_call_with_it_off() -> None:
    """F3 pressed while the server cannot be reached yet: the call starts with the camera off, and
    the room is told so."""
    from tests.conftest import free_port

    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
    async with app.run_test(size=SIZE) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "not in the call yet" in status.publish.full)
        await pilot.press("f3")
        await until(pilot, lambda: status.publish.full.startswith("no mic · cam off"))
        async with RoomServer("127.0.0.1", port):
            await until(pilot, lambda: "PUBLISHING" in status.publish.full, timeout=20)
            assert "cam off" in status.publish.full
            async with Session(url, "watcher") as watcher:
                alice = (await watcher.join("lobby")).participant_named("alice")
                assert alice is not None and alice.publishing and alice.video_muted
            await pilot.press("ctrl+q")


async def test_colour_modes_draw_palette_colours(url: str, publisher: Publisher) -> None:
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY, color_mode=ColorMode.COLOR256)
    async with app.run_test(size=SIZE) as pilot:
        carol = publisher.session.room.me.id  # type: ignore[union-attr]
        await until(pilot, lambda: video_playing(app, carol), timeout=15)
        tile = app.query_one(VideoGrid).tiles[carol]
        assert tile.cells is not None and tile.cells.mode is ColorMode.COLOR256
        assert int(tile.cells.top_index.max()) <= 255 and int(tile.cells.top_index.min()) >= 0
