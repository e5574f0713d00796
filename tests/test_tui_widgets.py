"""The widgets as a small or narrow terminal shows them: what each keeps, and what it cuts (with '…').

Driven through App.run_test and Pilot, against a real server where the widget shows a real room.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest
from textual.app import App, ComposeResult
from textual.widget import Widget

from tests.conftest import free_port
from tests.test_tui import SIZE, log_lines, names, screen_text, until
from tests.test_tui_media import RECEIVE_ONLY, Publisher, join_and_publish, leave, video_playing
from tuichat.client import Session, SessionStatus
from tuichat.client.stream import PublishStatus
from tuichat.tui.app import ChatApp, _publish_summary
from tuichat.tui.bridge import MediaOptions
from tuichat.tui.snapshots import ParticipantView, PublishView
from tuichat.tui.widgets import MessageLog, ParticipantList, StatusLine, VideoGrid
from tuichat.tui.widgets.roster import participant_label
from tuichat.tui.widgets.status import StatusPart

#: Publishing with a test camera and microphone, hearing nothing.
TEST_DEVICES = MediaOptions(camera="test", mic="test", speaker="none")
#: What another three people playing looked like in QA.
PLAYING = StatusPart("dave +2 PLAYING 38×28 15 fps 31 kbps (all 93 kbps)", "dave +2 PLAYING")


def shown(app: App[None], widget: Widget) -> list[str]:
    """The screen's rows over ``widget``, cut to its region: what the person sees of it."""
    region = widget.region
    rows = screen_text(app).splitlines()[region.y:region.bottom]
    return [row[region.x:region.right] for row in rows]


def status_row(app: ChatApp) -> str:
    return shown(app, app.query_one(StatusLine))[0].strip()


def people_rows(app: ChatApp) -> list[str]:
    """The people list's rows, between its borders."""
    return [row[1:-1].strip() for row in shown(app, app.query_one(ParticipantList))[1:-1] if "●" in row]


def publishing(*, mic_muted: bool = False, cam_off: bool = False, size: tuple[int, int] | None = None,
               thin: bool = False, busy: bool = False) -> StatusPart:
    """Our publish state as the app words it."""
    view = PublishView(PublishStatus.PUBLISHING, "", True, True, mic_muted, cam_off, size, thin)
    return _publish_summary(view, False, True, True, busy=busy)


@pytest.fixture
async def zoe(url: str) -> AsyncIterator[Publisher]:
    """Someone publishing a camera and a tone."""
    person = await join_and_publish(url, "zoe", tone=True)
    yield person
    await leave(person)


# --- the status line ---------------------------------------------------------------------------------


async def test_the_status_line_keeps_our_mute_where_the_people_list_is_hidden(url: str, zoe: Publisher) -> None:
    """QA at 63×20, muted: "● ESTABLISHED  5 people  │ PUBLISHING  │ dave +2 PLAYING"; nothing on
    screen said the microphone was off."""
    app = ChatApp(url, "alice", "lobby", media=TEST_DEVICES)
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "PUBLISHING" in status.publish.full and "PLAYING" in status.playing.full,
                    timeout=15)
        await pilot.press("f2")
        await until(pilot, lambda: "mic muted" in status.publish.full)
        await until(pilot, lambda: "mic muted · cam on · PUBLISHING" in status_row(app))
        await pilot.resize_terminal(63, 20)
        await until(pilot, lambda: not app.query_one("#side").display)
        await until(pilot, lambda: "2 people" in status_row(app) and "mic off" in status_row(app))
        await pilot.press("f3")
        await until(pilot, lambda: "mic off · cam off" in status_row(app))


async def test_the_status_line_gives_up_the_mute_next_to_last(url: str) -> None:
    """Narrower and narrower: whenever the line shows anything but the session's state and the head
    count, it shows the mute too; the head count goes last; nothing is cut without '…'."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(120, 24)) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        status = app.query_one(StatusLine)
        status.publish = publishing(mic_muted=True, cam_off=True)
        status.playing = PLAYING
        kept_mute = kept_count = False
        for width in range(120, 16, -3):
            await pilot.resize_terminal(width, 24)
            await until(pilot, lambda width=width: status.region.width == width)
            row = status_row(app)
            assert row.startswith("● ESTABLISHED"), row
            assert len(row) <= width - 2, row
            if any(part in row for part in ("room", "PUBLISHING", "PLAYING")):
                assert "mic" in row and "cam off" in row, f"{width} columns: {row!r}"
            if "mic" in row:
                assert "1 person" in row, f"{width} columns: {row!r}"
            kept_mute |= row == "● ESTABLISHED  1 person  │ mic off · cam off"
            kept_count |= row == "● ESTABLISHED  1 person"
        assert kept_mute and kept_count


async def test_the_retry_countdown_outlasts_the_reason() -> None:
    """QA at 100 columns: "…connection refused (retrying" cut mid-phrase, with no '…'."""
    app = ChatApp(f"ws://127.0.0.1:{free_port()}/ws", "alice", "lobby")
    async with app.run_test(size=(100, 24)) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: status.status is SessionStatus.DISCONNECTED and status.retry_at is not None)
        countdown = re.compile(r" \(retrying (in \d+ s|now)\)$")
        for width in (100, 72, 60):
            await pilot.resize_terminal(width, 24)
            await until(pilot, lambda width=width: status.region.width == width)
            row = status_row(app)
            assert countdown.search(row), f"{width} columns: {row!r}"
            assert "cannot reach" in row and len(row) <= width - 2, row
            reason = countdown.sub("", row)
            assert reason.endswith("connection refused") or reason.endswith("…"), f"{width} columns: {row!r}"
        assert "cannot reach" in row and "…" in row  # at 60 columns the reason was cut, and said so


async def test_a_thin_uplink_leaves_the_room_name_in_place(url: str) -> None:
    """QA at 120 columns: "PUBLISHING 320×240 (thin uplink or busy CPU)" pushed the room name out."""
    app = ChatApp(url, "alice", "design-review")
    async with app.run_test(size=(120, 30)) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: status.joined)
        status.publish = publishing(size=(320, 240), thin=True, busy=True)
        status.playing = PLAYING
        await until(pilot, lambda: "thin uplink" in status_row(app))
        row = status_row(app)
        assert "room design-review  1 person" in row and "PUBLISHING" in row and "dave +2 PLAYING" in row, row
        status.publish = publishing(mic_muted=True, size=(320, 240), thin=True, busy=True)
        await until(pilot, lambda: "mic muted · cam on · PUBLISHING (thin uplink)" in status_row(app))
        assert "room design-review" in status_row(app)


# --- the people list ---------------------------------------------------------------------------------


async def test_the_people_list_shows_what_is_off_at_80_columns(url: str, zoe: Publisher) -> None:
    """QA at 80 columns: "● zoe  mic off" (the camera was off too); our own row "● alice (you)  mic"
    with the camera off, and "● alice (you)" with both off."""
    app = ChatApp(url, "alice", "lobby", media=TEST_DEVICES)
    async with app.run_test(size=(80, 24)) as pilot:
        people = app.query_one(ParticipantList)

        def row(name: str) -> str:
            return next((r for r in people_rows(app) if f"● {name}" in r), "")

        await until(pilot, lambda: sorted(names(app)) == ["alice", "zoe"])
        await until(pilot, lambda: any(p.is_self and p.publishing and p.audio and p.video
                                       for p in people.participants), timeout=15)
        await zoe.call.mute_audio(True)
        await zoe.call.mute_video(True)
        await until(pilot, lambda: all(p.audio_muted and p.video_muted for p in people.participants
                                       if p.name == "zoe"))
        await pilot.pause()
        assert shown_off(row("zoe")) == {"mic", "cam"}, people_rows(app)
        await pilot.press("f3")
        await until(pilot, lambda: any(p.is_self and p.video_muted for p in people.participants))
        await pilot.pause()
        assert shown_off(row("alice")) == {"cam"}, people_rows(app)
        await pilot.press("f2")
        await until(pilot, lambda: any(p.is_self and p.audio_muted for p in people.participants))
        await pilot.pause()
        assert shown_off(row("alice")) == {"mic", "cam"}, people_rows(app)
        for shown_row in people_rows(app):  # each fits between the borders
            assert len(shown_row) <= people.scrollable_content_region.width


def shown_off(label: str) -> set[str]:
    """The devices a people-list row says are off, in whichever form."""
    forms = {"mic": r"mic off|mic cam off|✗mic", "cam": r"cam off|✗cam"}
    return {device for device, form in forms.items() if re.search(form, label)}


@pytest.mark.parametrize("is_self", [False, True])
@pytest.mark.parametrize("name", ["zoe", "alice", "Bartholomew-Maximilian", "李小龍🐉カタカナ"])
def test_a_label_keeps_the_off_states_and_cuts_with_an_ellipsis(name: str, is_self: bool) -> None:
    both_off = ParticipantView("p1", name, is_self, True, True, True, True, True)
    cam_off = ParticipantView("p1", name, is_self, True, True, True, False, True)
    for width in range(4, 40):
        for view in (both_off, cam_off):
            label = participant_label(view, width)
            assert label.cell_len <= width, (width, label.plain)
            text = label.plain
            if name not in text:
                assert "…" in text, (width, text)  # cut, and it shows
            if width >= 18:  # the list's narrowest (64 to 99 columns): what is off, and whose row it is
                assert shown_off(text) == ({"mic", "cam"} if view.audio_muted else {"cam"}), (width, text)
                assert text.startswith(f"● {name[0]}"), (width, text)
        full = participant_label(both_off, 60).plain
        assert "mic off" in full and "cam off" in full


async def test_the_people_title_fits_while_reconnecting(url: str) -> None:
    """QA at 120 columns: "people (5, before the dro…"."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(120, 30)) as pilot:
        people = app.query_one(ParticipantList)
        await until(pilot, lambda: names(app) == ["alice"])
        people.set_stale(True)
        for size in ((120, 30), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            top = shown(app, people)[0]
            title = str(people.border_title)
            assert title.startswith("people") and title in top and "…" not in top, (size, top)


# --- the video tiles ---------------------------------------------------------------------------------


class StillFrame:
    """A frame source that always has the same grey frame."""

    def __init__(self) -> None:
        self.frame: npt.NDArray[np.uint8] = np.full((90, 120, 3), 128, dtype=np.uint8)

    def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]]:
        return 1, self.frame


class GridApp(App[None]):
    """A video grid on its own, drawn through Textual (not straight to a terminal)."""

    CSS = "VideoGrid { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield VideoGrid(direct=False)


def label_rows(grid: VideoGrid) -> dict[str, str]:
    """Each tile's label line, as drawn, cut to the tile."""
    rows: dict[str, str] = {}
    for key, tile in grid.tiles.items():
        line = grid.render_line(tile.y).text
        rows[key] = line[tile.x:tile.x + tile.width]
    return rows


async def test_a_tile_label_says_who_is_muted() -> None:
    """QA, video only (F8): a muted person's tile read "zoe  38×28 15 fps 31 kbps", no mark."""
    app = GridApp()
    async with app.run_test(size=(120, 30)) as pilot:
        grid = app.query_one(VideoGrid)
        grid.set_tile("zoe", "zoe", StillFrame(), "38×28 15 fps 31 kbps", muted=True)
        grid.set_tile("carol", "carol", StillFrame(), "38×28 15 fps 31 kbps")
        await pilot.pause()
        rows = label_rows(grid)
        assert "zoe" in rows["zoe"] and "mic off" in rows["zoe"], rows
        assert "mic off" not in rows["carol"], rows
        grid.set_tile("zoe", "zoe", StillFrame(), "38×28 15 fps 31 kbps", muted=False)
        await pilot.pause()
        assert "mic off" not in label_rows(grid)["zoe"]


async def test_in_video_only_a_muted_persons_tile_says_so(url: str, zoe: Publisher) -> None:
    """The app's side of the mark: it tells the grid who is muted (the grid cannot know)."""
    app = ChatApp(url, "alice", "lobby", media=RECEIVE_ONLY)
    async with app.run_test(size=(110, 32)) as pilot:
        zoe_id = zoe.session.room.me.id  # type: ignore[union-attr]
        grid = app.query_one(VideoGrid)
        await until(pilot, lambda: video_playing(app, zoe_id), timeout=15)
        await pilot.press("f8")
        await zoe.call.mute_audio(True)
        await until(pilot, lambda: any(p.audio_muted for p in app.query_one(ParticipantList).participants))
        await until(pilot, lambda: "mic off" in label_rows(grid)[zoe_id], timeout=3)


async def test_tile_labels_are_cut_to_the_tile_with_an_ellipsis() -> None:
    """QA at 120 columns: "carol  24×18 13 fps 34 kbps││", the label ran into the border."""
    app = GridApp()
    async with app.run_test(size=(80, 30)) as pilot:
        grid = app.query_one(VideoGrid)
        for name in ("carol", "dave", "erin", "frank", "grace"):
            grid.set_tile(name, name, StillFrame(), "24×18 13 fps 34 kbps", muted=name == "dave")
        for width in (90, 80, 64, 50, 40):  # 90: three tiles of 28 cells, filled by the label
            await pilot.resize_terminal(width, 30)
            await pilot.pause()
            for key, row in label_rows(grid).items():
                tile = grid.tiles[key]
                label = " ".join(filter(None, [key, "mic off" if key == "dave" else "", tile.status]))
                assert row.endswith(" "), (width, row)  # a blank cell before the next tile or the border
                if " ".join(row.split()) != label:
                    assert row.rstrip().endswith("…"), (width, row)


# --- the message log ---------------------------------------------------------------------------------


async def test_reading_history_is_not_interrupted_by_new_messages(url: str) -> None:
    """QA: Tab to the messages, Home, a new message arrives: the view jumped to the bottom."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(110, 32)) as pilot, Session(url, "carol") as carol:
        room = await carol.join("lobby")
        messages = app.query_one(MessageLog)
        await room.send_message("history 0")
        await until(pilot, lambda: any("history 0" in line for line in log_lines(app)))
        for n in range(1, 40):  # the rest from the app: the server limits a sender's rate
            messages.add_notice(f"history {n}")
        await until(pilot, lambda: messages.scroll_y == messages.max_scroll_y > 0)
        while app.focused is not messages:
            await pilot.press("tab")
        await pilot.press("home")
        await until(pilot, lambda: messages.scroll_y == 0)
        for key in ("home", "pageup"):
            await pilot.press(key)
            before = messages.scroll_y
            await room.send_message(f"news after {key}")
            await until(pilot, lambda key=key: any(f"news after {key}" in line for line in log_lines(app)))
            # Drawn with the marker: a scroll to the end, due after the refresh, would have come by now.
            await until(pilot, lambda: "new messages ↓" in shown(app, messages)[-1])
            assert messages.scroll_y == before and "new messages ↓" in str(messages.border_subtitle)
        await pilot.press("end")
        await until(pilot, lambda: messages.scroll_y == messages.max_scroll_y)
        await until(pilot, lambda: not messages.border_subtitle)
        await room.send_message("news at the end")  # at the end, the log follows again
        await until(pilot, lambda: any("news at the end" in line for line in log_lines(app)))
        await until(pilot, lambda: messages.scroll_y == messages.max_scroll_y
                    and "news at the end" in "".join(shown(app, messages)))
        assert not messages.border_subtitle


async def test_a_wrapped_message_hangs_under_its_text(url: str) -> None:
    """QA: the wrapped lines of a long message started at the left edge, like separate messages."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(80, 30)) as pilot, Session(url, "carol") as carol:
        room = await carol.join("lobby")
        long_text = " ".join(f"word{n}" for n in range(40))
        await room.send_message(long_text)
        await room.send_message("two\nlines")
        await until(pilot, lambda: any("lines" in line for line in log_lines(app)))
        messages = app.query_one(MessageLog)
        indent = len("HH:MM carol: ")

        def hanging() -> bool:
            lines = [line.rstrip() for line in log_lines(app)]
            first = next(i for i, line in enumerate(lines) if "carol: word0" in line)
            words = [line for line in lines[first:] if "word" in line]
            two = next(i for i, line in enumerate(lines) if line.endswith("carol: two"))
            return (lines[first].index("word0") == indent and len(words) > 2
                    and all(line.startswith(" " * indent + "word") for line in words[1:])
                    and " ".join(line.strip() for line in words).endswith(": " + long_text)
                    and lines[two + 1] == " " * indent + "lines"
                    and max(map(len, lines)) <= messages.scrollable_content_region.width)

        for width in (80, 60, 100):  # wrapped again to each new width, hanging still
            await pilot.resize_terminal(width, 30)
            await pilot.pause()
            await until(pilot, hanging)
        # The app's own notices hang under their text after the time too (they wrapped to the edge).
        messages.add_notice(long_text)
        under_text = " " * len("HH:MM ") + "word"
        await until(pilot, lambda: log_lines(app)[-1].startswith(under_text))
        lines = log_lines(app)
        start = max(i for i, line in enumerate(lines) if line[len("HH:MM "):].startswith("word0 "))
        assert len(lines) - start > 1 and all(line.startswith(under_text) for line in lines[start + 1:])



def test_mono_keeps_text_readable_and_video_pixels_exact() -> None:
    """QA of `--colors mono`: the palette's edges were black on black, muted text dim dark gray,
    and hues must become grays that still read; the video's half blocks keep their exact grays."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.color import Color

    from tuichat.tui.grays import FourGrays

    def shown(text: str, style: str) -> tuple[int | None, int | None, bool]:
        [segment] = FourGrays().apply([Segment(text, Style.parse(style))], Color(0, 0, 0))
        assert segment.style is not None
        color, bgcolor = segment.style.color, segment.style.bgcolor
        return (color.number if color else None, bgcolor.number if bgcolor else None, bool(segment.style.dim))

    assert shown("▔▔▔", "color(0)") == (8, None, False)  # an edge on the terminal's own background
    assert shown("text", "color(7) on color(7)") == (15, 7, False)
    assert shown("invite", "dim color(8)") == (8, None, False)
    assert shown("error", "bold dim red") == (7, None, True)  # a hue as text: white
    assert shown("x", "bright_red on blue") == (15, 8, False)  # a coloured background: a highlight
    assert shown("▀▄█", "color(0) on color(0)") == (0, 0, False)  # pixels: exact
    assert shown("▀", "rgb(120,120,120) on rgb(250,250,250)") == (8, 15, False)


async def test_sixteen_colours_keep_the_interface_on_the_terminals_background() -> None:
    """QA of `--colors 16`: the default theme's panels came out bright black, under dark green,
    red and dim text (the status line, the footer), and the focused input's border was red."""
    from textual.widgets import Footer

    from tuichat.render import ColorMode

    app = ChatApp(f"ws://127.0.0.1:{free_port()}/ws", "alice", "lobby", color_mode=ColorMode.COLOR16)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for widget in (app.query_one(StatusLine), app.query_one(Footer)):
            background = widget.styles.background
            assert background.a == 0 or background.ansi == -1, (widget, background)  # the terminal's own
        border = app.query_one("#composer").styles.border.top[1]
        assert border.ansi is not None and border.ansi not in (1, 9), border  # an ANSI colour, not red
        await pilot.press("ctrl+q")


async def test_sixteen_colours_draw_the_command_palettes_edges_visibly() -> None:
    """QA of `--colors 16`: the command palette's search box and the edge under its list were drawn
    in black, invisible on the terminal's own dark background."""
    from rich.color import ColorType

    from tuichat.render import ColorMode

    app = ChatApp(f"ws://127.0.0.1:{free_port()}/ws", "alice", "lobby", color_mode=ColorMode.COLOR16)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await until(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
        await pilot.press(*"mic")
        await until(pilot, lambda: "Mute or unmute microphone" in screen_text(app))
        await pilot.pause()
        edges = [segment for strip in app.screen._compositor.render_strips() for segment in strip
                 if segment.text.strip() and set(segment.text) <= {"▔", "▁"}]
        drawn = {(segment.text[0], segment.style.color) for segment in edges if segment.style is not None}
        assert {glyph for glyph, _ in drawn} == {"▔", "▁"}, drawn  # the box's top, the list's bottom
        for glyph, color in drawn:
            assert color is not None and color.type is ColorType.STANDARD and color.number != 0, (glyph, color)
        await pilot.press("escape")


async def test_the_status_line_stays_one_row_and_the_video_keeps_its_own_space() -> None:
    """A report had the status line wrapping to two rows at 80 columns and narrower (stream states,
    a slow terminal's hint, preview) over a video area that kept its old size. It is one row that
    gives way part by part: this keeps it so, and the video area (and the pixel box asked of the
    server, from the tiles' size) ending where the messages begin."""
    app = ChatApp(f"ws://127.0.0.1:{free_port()}/ws", "alice", "lobby")
    async with app.run_test(size=(120, 30)) as pilot:
        status, grid, log = app.query_one(StatusLine), app.query_one(VideoGrid), app.query_one(MessageLog)
        grid.set_tile("bob", "bob", StillFrame(), "120×90 15 fps 230 kbps")
        grid.set_tile("carol", "carol", StillFrame(), "120×90 15 fps 230 kbps")
        status.publish = publishing(mic_muted=True, size=(320, 240), thin=True, busy=True)
        status.playing = StatusPart("bob +1 PLAYING 120×90 15 fps 230 kbps (all 460 kbps) · busy CPU or slow "
                                    "terminal link: 4 of 15 fps shown", "bob +1 PLAYING · 4 of 15 fps shown")
        for width, height in ((120, 30), (80, 24), (64, 24), (50, 20), (40, 16)):
            await pilot.resize_terminal(width, height)
            await until(pilot, lambda w=width: status.region.width == w)  # type: ignore[misc]
            await pilot.pause()
            assert status.region.height == 1 and len(status_row(app)) <= width - 2, (width, status_row(app))
            assert grid.region.bottom <= log.region.y < status.region.y, (width, grid.region, log.region)
            box = grid.content_region
            for tile in grid.shown_tiles:
                placement = tile.placement
                assert placement is not None and tile.y + tile.height <= box.height, (width, tile)
                assert tile.y + 1 + placement.y + placement.rows <= box.height, (width, tile, placement)
                # The picture's last row is on screen, inside the video's border.
                last = shown(app, grid)[1 + tile.y + placement.y + placement.rows][1 + tile.x + placement.x]
                assert last == "▀", (width, shown(app, grid))
            tile = grid.shown_tiles[0]
            assert grid.view_box() == (max(16, tile.width), max(16, 2 * (tile.height - 1)))


async def test_enter_on_your_own_name_says_what_enter_does(url: str) -> None:
    """QA: Enter on our own row (the list's Down wraps to it) did nothing and said nothing."""
    app = ChatApp(url, "viewer", "lobby", media=RECEIVE_ONLY)
    async with Session(url, "bob") as bob, app.run_test(size=SIZE, notifications=True) as pilot:
        await bob.join("lobby")
        await until(pilot, lambda: [p.name for p in app.query_one(ParticipantList).participants] == ["viewer", "bob"])
        await pilot.press("escape")
        people = app.query_one(ParticipantList)
        await until(pilot, lambda: app.focused is people)
        people.highlighted = 0  # ourselves
        await pilot.press("enter")
        await until(pilot, lambda: "That is you: Enter on someone else's name" in screen_text(app))
        assert app.query_one("#composer").value == ""  # type: ignore[attr-defined]
        people.highlighted = 1
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one("#composer").value == "/msg bob ")  # type: ignore[attr-defined]
