"""The Textual app, driven through App.run_test and Pilot against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable

import pytest
from textual import events
from textual._xterm_parser import XTermParser
from textual.binding import Binding
from textual.drivers import linux_driver
from textual.drivers.headless_driver import HeadlessDriver
from textual.drivers.linux_driver import LinuxDriver
from textual.pilot import Pilot
from textual.widgets import Input

from tests.conftest import Recorder
from tuichat.client import Room, RoomEvent, Session, SessionStatus
from tuichat.protocol.limits import TEXT_MAX_LENGTH
from tuichat.tui.app import ChatApp
from tuichat.tui.bridge import MediaOptions, RoomChanged
from tuichat.tui.paste import PASTE_END, PASTE_START, PasteSafeXTermParser, paste_safe_driver
from tuichat.tui.safe_text import printable
from tuichat.tui.screens.help import HelpScreen
from tuichat.tui.snapshots import MessageView, ParticipantView
from tuichat.tui.widgets import Composer, InviteLine, KeyBar, MessageLog, ParticipantList, StatusLine, VideoGrid
from tuichat.tui.widgets.chat import NEW_BELOW
from tuichat.tui.widgets.status import StatusPart

SIZE = (110, 32)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def log_lines(app: ChatApp) -> list[str]:
    return [strip.text for strip in app.query_one(MessageLog).lines]


def log_text(app: ChatApp) -> str:
    """The log as one string; wrapped lines (hanging under their text) are joined with the space the
    wrap replaced."""
    return " ".join(line.strip() for line in log_lines(app))


def names(app: ChatApp) -> list[str]:
    return [p.name for p in app.query_one(ParticipantList).participants]


def screen_text(app: ChatApp) -> str:
    """Every cell of the screen as the compositor would draw it, including modal screens on top."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_two_people_chat_and_see_each_other(url: str) -> None:
    alice, bob = ChatApp(url, "alice", "lobby"), ChatApp(url, "bob", "lobby")
    async with alice.run_test(size=SIZE) as alice_pilot:
        await until(alice_pilot, lambda: names(alice) == ["alice"])
        async with bob.run_test(size=SIZE) as bob_pilot:
            await until(bob_pilot, lambda: names(bob) == ["bob", "alice"])  # we come first
            await until(alice_pilot, lambda: names(alice) == ["alice", "bob"])
            assert any("bob joined." in line for line in log_lines(alice))
            status = alice.query_one(StatusLine)
            assert status.status is SessionStatus.ESTABLISHED and status.count == 2

            # The input has focus from the start: typing and Enter sends.
            assert isinstance(alice.focused, Input)
            await alice_pilot.press(*"hi bob", "enter")
            await until(bob_pilot, lambda: any(line.endswith("alice: hi bob") for line in log_lines(bob)))
            assert alice.query_one("#composer", Input).value == ""

            # Private message through /msg reaches bob, marked private.
            await bob_pilot.press(*"/msg alice psst", "enter")
            await until(alice_pilot, lambda: any("bob → alice (private): psst" in line for line in log_lines(alice)))

            # Quitting leaves the room cleanly: the other side sees LEFT.
            await bob_pilot.press("ctrl+q")
            await until(alice_pilot, lambda: names(alice) == ["alice"])
            assert any("bob left." in line for line in log_lines(alice))


async def test_markup_in_names_and_text_is_shown_literally(url: str) -> None:
    app = ChatApp(url, "viewer", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["viewer"])
        async with Session(url, "[red]evil[/]") as session:
            room = await session.join("lobby")
            await room.send_message("[bold red]x[/] and [link=http://evil]click[/link]")
            await until(pilot, lambda: any("[bold red]x[/]" in line for line in log_lines(app)))
            line = next(line for line in log_lines(app) if "[bold red]x[/]" in line)
            assert "[red]evil[/]: [bold red]x[/] and [link=http://evil]click[/link]" in line
            assert "[red]evil[/]" in names(app)
            await until(pilot, lambda: "[red]evil[/]" in screen_text(app))


async def test_control_codes_from_a_hostile_server_never_reach_the_terminal(url: str) -> None:
    """The server refuses escapes, but the client must not trust it: feed one straight to the app."""
    app = ChatApp(url, "viewer", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["viewer"])
        evil_name = "mallory\x1b[2J\x9b31m"
        evil_text = "look\x1b]0;owned\x07 \x1b[31mred\x1b[0m \u202eevil"
        message = MessageView(999, time.time(), evil_name, False, evil_text, False, None)
        participants = (ParticipantView("p9", evil_name, False, False, False, False, False, False),)
        app.post_message(RoomChanged(RoomEvent.MESSAGE, participants, message=message))
        app.query_one(StatusLine).playing = StatusPart(f"{evil_name} PLAYING", f"{evil_name} PLAYING")
        await until(pilot, lambda: any("owned" in line for line in log_lines(app)))
        shown = screen_text(app)
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in shown
        assert "mallory␛[2J" in shown and "look␛]0;owned␇" in shown
        assert "mallory␛[2J�31m PLAYING" in shown  # the status line, from a stream's name


def test_printable_replaces_every_control_character() -> None:
    everything = "".join(chr(c) for c in range(0x00, 0xA0))
    shown = printable(everything)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert printable("[b]ok[/b] ünïcödé 李 🙂") == "[b]ok[/b] ünïcödé 李 🙂"
    assert printable("dev 👩\u200d💻 ok") == "dev 👩💻 ok"  # a joiner is left out, not shown as '�'
    assert printable("a\u202eb\u200bc") == "a\ufffdb\ufffdc"  # a bidi override, a zero-width space
    assert printable("a\nb", keep_newlines=True) == "a\nb" and printable("a\nb") == "a␊b"


@contextlib.asynccontextmanager
async def alice_and(url: str, name: str) -> AsyncIterator[tuple[ChatApp, Pilot[None], Room, Recorder]]:
    """alice's app and ``name``'s session, both in "lobby" (in either order); ``name``'s MESSAGE
    events are recorded: (app, pilot, name's room, messages)."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot, Session(url, name) as session:
        room = await session.join("lobby")
        messages = Recorder()
        room.on(RoomEvent.MESSAGE, messages)
        await until(pilot, lambda: sorted(names(app)) == sorted(["alice", name]))
        yield app, pilot, room, messages


async def test_keys_work_while_typing_without_typing_letters(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        composer = app.query_one("#composer", Input)
        await pilot.press(*"draft?")
        assert composer.value == "draft?"  # '?' in the input is text, not help
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        for key in ("F1", "F7", "Ctrl+Q", "/msg NAME TEXT"):
            assert key in help_text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f7")
        assert composer.value == "draft?"
        # Esc leaves the input; then single letters are shortcuts.
        await pilot.press("escape")
        assert app.focused is not composer
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.press("i")
        assert app.focused is composer and composer.value == "draft?"
        # Out of the input Esc does nothing (Esc Esc m mutes, read together or not), and a letter
        # that is no shortcut goes to the input (QA: it was lost).
        await pilot.press("escape")
        assert isinstance(app.focused, ParticipantList)
        await pilot.press("escape")
        assert isinstance(app.focused, ParticipantList)
        await pilot.press("x")
        assert app.focused is composer and composer.value == "draft?x"
        await pilot.press("escape")
        app.post_message(events.Paste("pasted mtv"))  # as a terminal's paste arrives, out of the input
        await until(pilot, lambda: app.focused is composer and composer.value == "draft?xpasted mtv")


async def test_a_bare_q_asks_before_leaving(url: str) -> None:
    """Out of the input, letters are keys: typing on after a Tab must not drop the call at a 'q'."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        await pilot.press("escape", "q", "u")
        await until(pilot, lambda: "Press q again" in screen_text(app))
        assert app.is_running
        # 'u' is no shortcut: typing went on, in the input, where q is a letter.
        composer = app.query_one("#composer", Input)
        await pilot.press("q", "q")
        assert app.is_running and app.focused is composer and composer.value == "uqq"
        await pilot.press("escape", "q", "x")  # q, another key, q is not a double q either
        await pilot.press("escape", "q")
        assert app.is_running and composer.value == "uqqx"
        await pilot.press("escape", "q", "q")
        await until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_esc_and_a_key_read_together_are_esc_then_the_key(url: str) -> None:
    """A fast typist or a laggy link delivers ESC and the next key in one read: Textual parses it as
    Alt+key, which the input took as the key typed ("hello" became "helloq")."""
    from textual._xterm_parser import XTermParser

    def as_read(data: str) -> events.Key:
        parser = XTermParser()
        read = [*parser.feed(data), *parser.feed("")]  # one read, then the parser's flush
        (key,) = [event for event in read if isinstance(event, events.Key)]
        return key

    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        composer = app.query_one("#composer", Input)
        await pilot.press(*"hello")
        key = as_read("\x1bp")
        assert key.key == "alt+p"  # what the terminal's bytes arrive as
        app.post_message(key)
        await until(pilot, lambda: app.preview)
        assert composer.value == "hello" and app.focused is not composer
        # Out of the input Esc does nothing, so Esc+q is q.
        app.post_message(as_read("\x1bq"))
        await until(pilot, lambda: "Press q again" in screen_text(app))
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)


async def test_esc_and_a_key_stay_so_when_a_frames_cursor_report_follows(url: str) -> None:
    """With video playing the terminal answers a cursor query every frame; when the answer came right
    behind ESC+q, Textual reissued the pair as '^' and 'q', and "^q" was typed into the input."""
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    earlier_report = [*parser.feed("\x1b[1;39R")]
    read = [*parser.feed("\x1bq"), *parser.feed("\x1b[1;40R")]  # the report arrives in the next read
    assert [getattr(e, "key", type(e).__name__) for e in read] == ["circumflex_accent", "q", "CursorPosition"]

    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        composer = app.query_one("#composer", Input)
        await pilot.press(*"hello")
        for event in earlier_report + read:
            app.post_message(event)
        await until(pilot, lambda: "Press q again" in screen_text(app))
        assert composer.value == "hello" and app.focused is not composer
        # A '^' typed by hand is a '^', video or not.
        await pilot.press("i")
        app.post_message(events.CursorPosition(x=38, y=0))  # frames are being answered
        await pilot.press("circumflex_accent")
        await pilot.pause(0.05)
        await pilot.press("x")
        await until(pilot, lambda: composer.value == "hello^x")


def test_the_help_lists_every_key_the_app_binds() -> None:
    """The help's table is written by hand beside the bindings: a key added to one and not the
    other would drift unnoticed."""
    listed = " ".join(key for key, _ in ChatApp.KEY_HELP).lower().split()
    spelled = {"question_mark": "?", "escape": "esc"}
    for binding in ChatApp.BINDINGS:
        assert isinstance(binding, Binding)
        assert spelled.get(binding.key, binding.key) in listed, f"{binding.key} is not in the help"


async def test_every_key_stays_in_the_footer_down_to_80_columns(url: str) -> None:
    """Textual's footer cut off F7 and F8 at 80 columns; the key bar goes compact and short instead."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        for width in (80, 86, 92, 100, 108, 114, 120, 140):
            await pilot.resize_terminal(width, 24)
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            for key in ("^q Quit", "f1 Help", "f2 Mic", "f4 Preview", "f8 Video"):
                assert key in footer, f"{key!r} is not in the footer at {width} columns: {footer!r}"
            if width >= 120:
                assert "f8 Video only" in footer and "^p palette" in footer, footer


async def test_narrower_footers_leave_keys_out_whole_and_keep_help_and_quit(url: str) -> None:
    """Below 64 columns the footer cut its last key mid-word; now it leaves the least used out."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        shown_before = 99
        for width in (79, 70, 64, 56, 48, 40, 32, 24):
            await pilot.resize_terminal(width, 24)
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            assert "f1 Help" in footer and "^q Quit" in footer, f"at {width}: {footer!r}"
            keys = re.findall(r"\b(f\d) (\w+)", footer)
            labels = dict(keys)
            for key, whole in (("f2", "Mic"), ("f3", "Cam"), ("f4", "Preview"), ("f5", "Focus"),
                               ("f6", "Self"), ("f7", "Invite"), ("f8", "Video")):
                assert labels.get(key, whole) == whole, f"{key} cut at {width}: {footer!r}"
            assert len(keys) <= shown_before
            shown_before = len(keys)
            if width >= 48:
                assert "f2 Mic" in footer, footer
        assert shown_before < 8


async def test_the_input_hint_is_shortened_to_fit_not_cut(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        composer = app.query_one(Composer)
        for width, hint in ((120, "Message lobby as alice  (F1 for help)"), (40, "Message lobby  (F1 for help)"),
                            (30, "Message  (F1 for help)"), (20, "Message")):
            await pilot.resize_terminal(width, 24)
            await until(pilot, lambda hint=hint: composer.placeholder == hint)  # type: ignore[misc]
            await pilot.pause()
            assert hint in screen_text(app)


async def test_the_people_highlight_stays_on_its_person_when_someone_above_leaves(url: str) -> None:
    """Review: the highlight kept its row, so after alice left, Enter on "bob" started a private
    message to carol."""
    app = ChatApp(url, "viewer", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["viewer"])
        others = [Session(url, name) for name in ("alice", "bob", "carol")]
        try:
            for session in others:
                await session.connect()
                await session.join("lobby")
            await until(pilot, lambda: names(app) == ["viewer", "alice", "bob", "carol"])
            await pilot.press("escape")
            people = app.query_one(ParticipantList)
            await until(pilot, lambda: app.focused is people)
            await pilot.press("down")
            await until(pilot, lambda: people.highlighted is not None
                        and people.participants[people.highlighted].name == "bob")
            await others[0].disconnect()
            await until(pilot, lambda: names(app) == ["viewer", "bob", "carol"])
            await pilot.press("enter")
            await until(pilot, lambda: app.query_one(Composer).value == "/msg bob ")
        finally:
            for session in others:
                await session.disconnect()


@pytest.mark.parametrize("how", ["video only", "narrow terminal"])
async def test_esc_does_not_focus_a_people_list_that_is_not_shown(url: str, how: str) -> None:
    """Review: Esc gave focus to the hidden list; Enter then started a private message unseen."""
    app = ChatApp(url, "viewer", "lobby")
    async with app.run_test(size=SIZE if how == "video only" else (60, 24)) as pilot, Session(url, "bob") as bob:
        await bob.join("lobby")
        await until(pilot, lambda: names(app) == ["viewer", "bob"])
        if how == "video only":
            await pilot.press("f8")
        assert not app.query_one("#side").display
        await pilot.press("escape")
        await until(pilot, lambda: app.focused is None)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(Composer).value == ""


async def test_tab_cycles_focus(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        seen = []
        for _ in range(3):
            await pilot.press("tab")
            seen.append(app.focused.id if app.focused else None)
        assert set(seen) == {"people", "log", "composer"}


async def test_refused_join_is_explained(url: str) -> None:
    async with Session(url, "alice") as session:
        await session.join("lobby")
        app = ChatApp(url, "alice", "lobby", media=MediaOptions(camera="none", mic="none", speaker="none"))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            status = app.query_one(StatusLine)
            assert "no mic · no cam · not in the call yet" in status.render().plain  # known from the options
            await until(pilot, lambda: status.status is SessionStatus.FAILED)
            assert "Could not join lobby: someone called 'alice' is already in room 'lobby'. Ctrl+Q quits; " \
                   "then connect again with another name." in log_text(app)
            assert "FAILED" in screen_text(app)
            # QA: the screen kept "nobody is sharing video yet" and an invite to a room we are not in.
            await until(pilot, lambda: "not in lobby" in screen_text(app))
            assert "nobody is sharing video" not in screen_text(app)
            assert not app.query_one(InviteLine).display
            # Nothing waits for a call that will not come (QA: "people (0, before the drop)", "mic on ·
            # cam on · not in the call yet", "Not sent: not in the room yet", "muted when the call starts").
            assert "not in the call yet" not in status.render().plain and "mic" not in status.render().plain
            assert app.query_one(ParticipantList).border_title == "people (0)"
            await pilot.press(*"hi", "enter")
            await until(pilot, lambda: "Not sent: you are not in lobby: someone called 'alice' is already in "
                                       "room 'lobby'. Ctrl+Q quits" in log_text(app))
            # The line comes back as typed (QA: "//shrug" came back as "/shrug", a command).
            composer = app.query_one("#composer", Composer)
            composer.message = ""
            await pilot.press(*"//shrug", "enter")
            await until(pilot, lambda: composer.message == "//shrug")
            await pilot.press("f2")
            await until(pilot, lambda: "Not in a call: someone called" in screen_text(app))
            await pilot.press("ctrl+q")
        # Exit status 1 and the reason, printed by `tuichat connect` once the screen is restored.
        assert app.return_code == 1
        assert app.exit_message == "tuichat: someone called 'alice' is already in room 'lobby'"


async def test_toasts_show_names_as_text_markup_and_controls_included(url: str) -> None:
    """Review: a refused join as "x[/]y" then F3 crashed the app (the reason, with the name in it,
    was read as Rich markup), and F5's toast put a name's ESC and bidi controls on the terminal."""
    name = "x[/]y"
    async with Session(url, name) as session:
        await session.join("lobby")
        app = ChatApp(url, name, "lobby", media=MediaOptions(camera="test", mic="none", speaker="none"))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: app.query_one(StatusLine).status is SessionStatus.FAILED)
            for key in ("f3", "f2"):
                await pilot.press(key)
                await until(pilot, lambda: "Not in a call: someone called 'x[/]y' is already" in screen_text(app))
                assert app.is_running
            evil = "mallory\x1b[2J\x9b31m\u202e"
            grid = app.query_one(VideoGrid)
            grid.set_tile("p9", evil, None, "camera off")  # a stream's name, as a hostile server sends it
            await pilot.press("f5")
            await until(pilot, lambda: f"Focused on {printable(evil)}" in screen_text(app))
            assert not any(code in screen_text(app) for code in ("\x1b", "\x9b", "\u202e"))


async def test_unreachable_server_is_reported_and_retried() -> None:
    from tests.conftest import free_port

    app = ChatApp(f"ws://127.0.0.1:{free_port()}/ws", "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        status = app.query_one(StatusLine)
        # DISCONNECTED, not FAILED, while another try is coming.
        await until(pilot, lambda: status.status is SessionStatus.DISCONNECTED and status.retry_at is not None)
        first = status.retry_at
        assert "cannot reach" in status.render().plain and "retrying" in status.render().plain
        # A shape, not only a colour: in mono ESTABLISHED and DISCONNECTED were the same white dot.
        assert status.render().plain.startswith("○ DISCONNECTED"), status.render().plain
        # The next attempt fails too (its back-off is longer): the status line counts down to the
        # one after, and the log keeps the one line it has (it added a copy every attempt).
        await until(pilot, lambda: status.retry_at not in (None, first), timeout=6)
        assert "retrying in" in status.render().plain
        text = log_text(app)
        assert text.count("Cannot reach") == 1 and "(retrying; the status line counts down)" in text, text
        await pilot.press("ctrl+q")
    assert app.return_code == 1 and app.exit_message.startswith("tuichat: never joined lobby: cannot reach")
    assert app.exit_message.endswith(": connection refused")  # the OS's reason, not aiohttp's repr


async def test_a_server_gone_for_good_is_explained_while_retrying() -> None:
    """QA: after the server died the client said only "reconnecting (attempt 11)", never why."""
    from tuichat.server import RoomServer

    server = RoomServer("127.0.0.1", 0)
    await server.start()
    app = ChatApp(f"ws://127.0.0.1:{server.port}/ws", "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        await server.stop()
        await until(pilot, lambda: "Connection lost: the server closed the connection" in log_text(app))
        session = app.bridge.session
        await until(pilot, lambda: session.reconnect_attempt >= 3, timeout=10)
        status = app.query_one(StatusLine)
        await until(pilot, lambda: status.status is SessionStatus.DISCONNECTED and status.retry_at is not None)
        line = status.render().plain
        assert "cannot reach" in line and "connection refused" in line and "retrying" in line, line
        assert log_text(app).count("Still reconnecting: cannot reach") == 1, log_text(app)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)


async def test_a_server_that_is_not_tuichat_is_not_retried() -> None:
    """Trying again cannot help (the same goes for an unknown host or an untrusted certificate)."""
    from aiohttp import web

    runner = web.AppRunner(web.Application())  # answers every path with 404
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        app = ChatApp(f"ws://127.0.0.1:{port}/ws", "alice", "lobby")
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: "is not a tuichat server (HTTP 404)" in log_text(app))
            await pilot.pause(1.5)  # a retry would have come after 0.5 s
            assert log_text(app).count("is not a tuichat server") == 1 and "retrying" not in log_text(app)
            assert app.query_one(StatusLine).status is SessionStatus.FAILED
            # QA: the invite to the room stayed (F7 copied it), and nothing said how to go on.
            assert "Ctrl+Q quits." in log_text(app) and not app.query_one(InviteLine).display
            await pilot.press("f7")
            await until(pilot, lambda: "Not in lobby: no invite to copy" in screen_text(app))
            await pilot.press("ctrl+q")
        assert app.return_code == 1 and "is not a tuichat server" in app.exit_message
    finally:
        await runner.cleanup()


async def test_quitting_while_still_connecting_says_it_never_joined() -> None:
    """QA: Ctrl+Q while the server had not answered exited 0 and said nothing (1, with the reason,
    while it retried a refused port)."""
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)  # never answers
    port = server.sockets[0].getsockname()[1]
    try:
        app = ChatApp(f"ws://127.0.0.1:{port}/ws", "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.query_one(StatusLine).status is SessionStatus.PENDING)
            await pilot.press("ctrl+q")
        assert app.return_code == 1
        assert app.exit_message == f"tuichat: never joined lobby: quit while connecting to ws://127.0.0.1:{port}/ws"
    finally:
        server.close()


@pytest.mark.parametrize("room", ["a&b", "it's;x", "$HOME", "*", "-x", "café", "[x]"])
def test_the_invite_command_survives_a_shell(room: str) -> None:
    """Pasted into bash, the invite runs tuichat with the room as it is, and the CLI reads it so."""
    import shlex
    import subprocess

    from tuichat.cli import build_parser
    from tuichat.tui.widgets.invite import invite_command

    command = invite_command("[::1]:9000", room)
    argv = subprocess.run(["bash", "-c", command.replace("tuichat ", "printf '%s\\n' ", 1)],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert [arg for arg in argv if arg != "--"] == ["connect", "[::1]:9000", "THEIR_NAME", room]
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.address, args.user, args.room) == ("[::1]:9000", "THEIR_NAME", room)


async def test_invite_line_and_resize_reflow(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        invite = app.query_one(InviteLine)
        port = url.split(":")[2].split("/")[0]
        assert invite.command == f"tuichat connect 127.0.0.1:{port} THEIR_NAME lobby"
        assert invite.command in screen_text(app)
        # Narrower: a loopback address keeps "this computer only" over the link; what is shown is
        # whole, never cut off.
        await pilot.resize_terminal(112, 40)
        await pilot.pause()
        shown = invite.render().plain
        assert invite.command in shown and "this computer only" in shown and invite.link not in shown
        await pilot.resize_terminal(80, 40)
        await pilot.pause()
        shown = invite.render().plain
        assert invite.command in shown and invite.link not in shown and "…" not in shown
        await pilot.resize_terminal(50, 40)  # too narrow even for the command: cut, and says so
        await pilot.pause()
        shown = invite.render().plain
        assert shown.endswith("…") and shown[:-1] in f"invite: {invite.command}"
        await pilot.resize_terminal(70, 20)
        await pilot.pause()
        assert app.query_one("#composer").region.right <= 70
        assert app.query_one(StatusLine).region.bottom <= 20
        await pilot.resize_terminal(160, 45)
        await pilot.pause()
        assert app.query_one("#video").region.width > 100


async def test_the_invite_says_what_the_invitee_needs_and_where_it_works(url: str) -> None:
    """README QA: with a self-signed certificate the invite left out --ca-file (the invitee got "not
    trusted"), and an invite to 127.0.0.1 did not say it reaches only this computer."""
    import shlex

    from tuichat.cli import build_parser, invite_trust_options

    args = build_parser().parse_args(["connect", "wss://chat.lan:8765", "me", "lobby", "--ca-file", "/etc/x/tc.pem"])
    assert invite_trust_options(args) == ("--ca-file", "tc.pem")
    assert invite_trust_options(build_parser().parse_args(["connect", "h", "me", "r", "--insecure"])) == ("--insecure",)
    assert invite_trust_options(build_parser().parse_args(["connect", "h", "me", "r"])) == ()
    app = ChatApp(url, "alice", "-x", invite_options=("--ca-file", "my ca.pem"))
    port = url.split(":")[2].split("/")[0]
    options_last = ChatApp(url, "alice", "lobby", invite_options=("--insecure",))
    async with options_last.run_test(size=(160, 40)):  # QA: options before the room, cut off first
        assert options_last.query_one(InviteLine).command == \
            f"tuichat connect 127.0.0.1:{port} THEIR_NAME lobby --insecure"
    async with app.run_test(size=(160, 40)) as pilot:
        invite = app.query_one(InviteLine)
        port = url.split(":")[2].split("/")[0]
        assert invite.command == f"tuichat connect 127.0.0.1:{port} THEIR_NAME --ca-file 'my ca.pem' -- -x"
        parsed = build_parser().parse_args(shlex.split(invite.command)[1:])
        assert (parsed.user, parsed.room, str(parsed.ca_file)) == ("THEIR_NAME", "-x", "my ca.pem")
        await pilot.pause()
        assert "(this computer only; F7 copies both)" in screen_text(app)
        invite.set_public_url("https://chat.example.org")
        await pilot.pause()
        assert invite.command == "tuichat connect wss://chat.example.org THEIR_NAME --ca-file 'my ca.pem' -- -x"
        assert "this computer only" not in screen_text(app) and "(F7 copies both)" in screen_text(app)


async def test_long_names_take_one_line_in_the_people_list(url: str) -> None:
    """QA: a long name wrapped mid-word, the bullet alone on its line; a CJK one took 4 lines."""
    from tuichat.tui.widgets import ParticipantList

    app = ChatApp(url, "alice", "lobby")
    long_names = ["Bartholomew-Maximilian-Feathers", "李小龍🐉カタカナ李小龍🐉カタカナ"]
    async with app.run_test(size=SIZE) as pilot:
        sessions = [Session(url, name) for name in long_names]
        try:
            for session in sessions:
                await session.connect()
                await session.join("lobby")
            people = app.query_one(ParticipantList)
            await until(pilot, lambda: len(people.participants) == 3)
            await pilot.pause()
            for width in (32, 22):
                assert people.region.width == width
                lines = [line.rstrip() for line in screen_text(app).splitlines()]
                rows = [line for line in lines if "│ ● " in line]  # the people list's, not the status line's
                assert len(rows) == 3, rows  # one line each
                assert any("Bartholom" in row and "…" in row for row in rows), rows
                await pilot.resize_terminal(80, 24)  # the narrower list
                await until(pilot, lambda: people.region.width == 22)
                await pilot.pause()
        finally:
            for session in sessions:
                await session.disconnect()


async def test_small_terminals_give_the_video_the_room(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        side, invite, composer = app.query_one("#side"), app.query_one(InviteLine), app.query_one("#composer")
        assert side.region.width == 32 and invite.display and composer.region.height == 3
        wide_video = app.query_one("#video").region
        await pilot.resize_terminal(80, 24)  # the classic terminal: a narrower people list, no invite line
        await pilot.pause()
        assert side.region.width == 22 and not invite.display and composer.region.height == 1
        assert app.query_one("#video").region.width == 80 - 22
        assert app.query_one("#video").region.height >= 13
        await pilot.resize_terminal(60, 20)  # too narrow for a people list: the status line counts them
        await pilot.pause()
        assert not side.display and app.query_one("#video").region.width == 60
        status = app.query_one(StatusLine)
        await until(pilot, lambda: status.joined)
        status.publish = StatusPart("mic on · cam on · PUBLISHING 160×120 (thin uplink or busy CPU)",
                                    "PUBLISHING (thin uplink)")
        status.playing = StatusPart("carol +3 PLAYING 54×40 15 fps 56 kbps (all 202 kbps)", "carol +3 PLAYING")
        await pilot.pause()
        assert "1 person" in status.render().plain  # the count went first of all (QA, 63 columns)
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert side.display and side.region.width == 32 and invite.display and composer.region.height == 3
        assert app.query_one("#video").region == wide_video


async def test_the_message_log_wraps_again_to_its_width(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        messages = app.query_one(MessageLog)
        long_text = " ".join(f"word{n}" for n in range(40))
        messages.add_notice(long_text)
        await pilot.pause()
        for width in (60, 44, 100):
            await pilot.resize_terminal(width, 24)

            def wrapped() -> bool:
                inner = messages.scrollable_content_region.width
                return max(len(line.rstrip()) for line in log_lines(app)) in range(inner - 12, inner + 1)

            await until(pilot, wrapped)  # a resize is followed by one re-wrap once it settles
            assert messages.max_scroll_x == 0  # nothing hidden behind a horizontal scrollbar
            assert long_text in log_text(app)
        # Lines added while the log is hidden (video only) are wrapped when it comes back.
        await pilot.press("f8")
        await pilot.pause()
        messages.add_notice("written while hidden " + long_text)
        await pilot.press("f8")
        await until(pilot, lambda: "written while hidden " + long_text in log_text(app))
        await until(pilot, wrapped)


async def log_of_notes(pilot: Pilot[None], app: ChatApp, count: int) -> MessageLog:
    """The joined app's message log holding notes "note 0" to "note COUNT-1", scrolled to the end."""
    await until(pilot, lambda: names(app) == ["alice"])
    messages = app.query_one(MessageLog)
    for n in range(count):
        messages.add_notice(f"note {n}")
    await until(pilot, lambda: messages.scroll_y == messages.max_scroll_y > count // 3)
    return messages


async def test_the_newest_message_stays_in_view_when_the_terminal_shrinks(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(120, 40)) as pilot:
        messages = await log_of_notes(pilot, app, 30)

        def newest_in_view() -> bool:
            return "note 29" in screen_text(app)

        await until(pilot, newest_in_view)
        for size in ((80, 24), (80, 18), (120, 40)):
            await pilot.resize_terminal(*size)
            await until(pilot, newest_in_view)
        # Scrolled up by hand, it stays where the person put it.
        messages.scroll_home(animate=False)
        await pilot.pause()
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert not newest_in_view() and messages.scroll_y == 0


async def test_a_reader_scrolled_up_keeps_their_place_through_a_resize_and_new_lines(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(120, 40)) as pilot:
        messages = await log_of_notes(pilot, app, 60)
        messages.scroll_to(y=messages.max_scroll_y // 2, animate=False)
        await until(pilot, lambda: "note 30" in screen_text(app) and "note 59" not in screen_text(app))
        await pilot.resize_terminal(100, 30)
        # The log is wrapped again at the new width after the resize settles; the reader stays put.
        await until(pilot, lambda: messages._wrapped_at == messages.scrollable_content_region.width)
        await pilot.pause()
        assert "note 59" not in screen_text(app)
        assert 0 < messages.scroll_y < messages.max_scroll_y
        messages.add_notice("note 60")
        await until(pilot, lambda: messages.border_subtitle == NEW_BELOW)
        await pilot.pause()
        assert "note 60" not in screen_text(app) and "note 59" not in screen_text(app)


async def test_scrolling_up_wins_over_a_line_or_a_rewrap_in_the_same_moment(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(120, 40)) as pilot:
        messages = await log_of_notes(pilot, app, 60)
        # A line and a rewrap (after a resize) scroll to the end after the next refresh; the reader
        # scrolls home before that refresh comes.
        messages.add_notice("note 60")
        messages._rewrap()
        messages.scroll_home(animate=False)
        await pilot.pause()
        await pilot.pause()
        assert messages.scroll_y == 0 and "note 0" in screen_text(app) and "note 60" not in screen_text(app)
        messages.add_notice("note 61")
        await until(pilot, lambda: messages.border_subtitle == NEW_BELOW)
        assert messages.scroll_y == 0


async def test_video_only_hides_the_panels_and_pops_messages_up(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        await pilot.press("tab")  # focus the people list: it is about to be hidden
        await pilot.press("f8")
        await pilot.pause()
        assert app.video_only
        assert not any(app.query_one(selector).display for selector in ("#log", "#side", "#invite"))
        assert app.query_one("#video").region.width == SIZE[0]
        # Out of the input the letters stay keys (a second 't' was typed into the input instead of
        # bringing the panels back); 'i' goes to the input.
        assert app.focused is None
        await pilot.press("t", "t")
        assert app.video_only and app.query_one("#composer", Input).value == ""
        await pilot.press("i")
        assert app.focused is app.query_one("#composer")  # typing still works
        async with Session(url, "bob [b]") as session:
            room = await session.join("lobby")
            await until(pilot, lambda: "bob [b] joined." in screen_text(app))
            await room.send_message("look [bold]here[/]")
            await until(pilot, lambda: "bob [b]: look [bold]here[/]" in screen_text(app))
        await pilot.press("escape", "t")  # the letter works too, once out of the input line
        await pilot.pause()
        assert not app.video_only and app.query_one("#log").display and app.query_one("#side").display
        await until(pilot, lambda: "bob [b]: look [bold]here[/]" in log_text(app))  # nothing was lost


async def test_a_terminal_too_short_for_the_log_pops_messages_up(url: str) -> None:
    """At 12 rows the video and the log overflowed the screen: the video lost its bottom rows and
    the log was not drawn at all, with nothing saying so."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(80, 12), notifications=True) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        assert not app.query_one("#log").display
        video = app.query_one("#video").region
        assert video.bottom <= app.query_one("#composer").region.y  # all of it on screen
        async with Session(url, "bob") as session:
            room = await session.join("lobby")
            await until(pilot, lambda: "bob joined." in screen_text(app))
            await room.send_message("can you see this?")
            await until(pilot, lambda: "bob: can you see this?" in screen_text(app))
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: app.query_one("#log").display)
        await until(pilot, lambda: "can you see this?" in log_text(app))  # kept in the log all along


async def test_reconnect_is_shown(url: str, server: object) -> None:
    from tuichat.server import RoomServer

    assert isinstance(server, RoomServer)
    app = ChatApp(url, "alice", "lobby", session_options=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        for connection in list(server.connections):
            await connection.ws.close()
        await until(pilot, lambda: any("Connection lost" in line for line in log_lines(app)))
        await until(pilot, lambda: any("Reconnected." in line for line in log_lines(app)), timeout=10)
        await until(pilot, lambda: app.query_one(StatusLine).joined and names(app) == ["alice"])


async def test_a_double_slash_sends_text_that_starts_with_a_slash(url: str) -> None:
    async with alice_and(url, "bob") as (_app, pilot, _room, heard):
        await pilot.press(*"//shrug", "enter")
        said = await heard.wait_for(lambda u: u.message.sender.name == "alice", timeout=10)
        assert said.message.text == "/shrug"


@pytest.mark.parametrize("command", ["/nope", "/msg", "/msg bob"])
async def test_bad_commands_are_explained_and_keep_the_text(url: str, command: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        await pilot.press(*command, "enter")
        await until(pilot, lambda: any(("Usage" in line or "Unknown command" in line) for line in log_lines(app)))
        assert app.query_one("#composer", Input).value == command


async def test_refused_message_gives_the_text_back(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        await pilot.press(*"/msg nobody hello", "enter")
        await until(pilot, lambda: any("Not sent: nobody called 'nobody'" in line for line in log_lines(app)))
        assert app.query_one("#composer", Input).value == "/msg nobody hello"
        # Typing goes on where the text ends (it went in front of it).
        await pilot.press(*" there")
        assert app.query_one("#composer", Input).value == "/msg nobody hello there"


async def test_a_paste_keeps_its_lines_and_a_full_input_says_so(url: str) -> None:
    """Textual's Input kept the first line of a paste and dropped a paste past the limit without a
    word; a zero-width space copied from a web page made the server refuse the whole message."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE, notifications=True) as pilot, Session(url, "carol") as carol:
        room = await carol.join("lobby")
        received = Recorder()
        room.on(RoomEvent.MESSAGE, received)
        await until(pilot, lambda: sorted(names(app)) == ["alice", "carol"])
        composer = app.query_one("#composer", Composer)
        await pilot.press(*"see: ")
        app.post_message(events.Paste("def f():\r\n\treturn 1\u200b\n\x1b[31m"))
        await until(pilot, lambda: composer.message == "see: def f():\n    return 1\n[31m")
        assert "see: def f():⏎    return 1⏎[31m" in screen_text(app)
        await pilot.press("enter")
        update = await received.wait_for(lambda u: u.message.sender.name == "alice")
        assert update.message.text == "see: def f():\n    return 1\n[31m"
        await until(pilot, lambda: "return 1" in log_text(app))
        # Too long for one message: what fits goes in, and a warning says what was left out.
        app.post_message(events.Paste("x" * (TEXT_MAX_LENGTH + 5)))
        await until(pilot, lambda: len(composer.value) == TEXT_MAX_LENGTH)
        await until(pilot, lambda: "last 5 characters left out" in screen_text(app))
        await pilot.press("y")
        await until(pilot, lambda: f"at most {TEXT_MAX_LENGTH} characters" in screen_text(app))
        assert composer.value == "x" * TEXT_MAX_LENGTH
        await pilot.press("enter")
        await received.wait_for(lambda u: u.message.text == "x" * TEXT_MAX_LENGTH)


async def test_a_typed_return_symbol_is_sent_as_itself(url: str) -> None:
    """'⏎' was both how the input showed a pasted line break and what it sent as one: a '⏎' typed or
    pasted went out as a line break. The input's own mark for a break can't be typed or pasted."""
    async with alice_and(url, "carol") as (app, pilot, _room, received):
        composer = app.query_one("#composer", Composer)
        await pilot.press(*"press ")
        app.post_message(events.Key("return_symbol", "⏎"))  # as the terminal's "⏎" reaches the app
        await pilot.press(*" to send")
        app.post_message(events.Key("ufdd0", "\ufdd0"))  # whatever marks a break in the input, typed
        app.post_message(events.Paste(", or\n⏎\ufdd0!"))  # a line break, a '⏎' and that mark, pasted
        await until(pilot, lambda: "press ⏎ to send, or⏎⏎!" in screen_text(app))  # a break shows as '⏎'
        assert composer.message == "press ⏎ to send, or\n⏎!"
        await pilot.press("left", "backspace", "x")  # the pasted '⏎' goes, the line break stays
        assert composer.message == "press ⏎ to send, or\nx!"
        await pilot.press("enter")
        update = await received.wait_for(lambda u: u.message.sender.name == "alice")
        assert update.message.text == "press ⏎ to send, or\nx!"
        # QA: a pasted snippet lost the indentation of its first line (the bot keeps it).
        app.post_message(events.Paste("\n    indented()\n        more()  \n"))
        await until(pilot, lambda: composer.message == "    indented()\n        more()  ")
        await pilot.press("enter")
        update = await received.wait_for(lambda u: u.message.text.endswith("more()"))
        assert update.message.text == "    indented()\n        more()"


def read_input(parser: XTermParser, *chunks: str) -> list[str]:
    """What ``parser`` makes of ``chunks`` read one after another, then the end of input."""
    return [repr(token) for chunk in (*chunks, "") for token in parser.feed(chunk)]


@pytest.mark.parametrize("keys", ["\x1b[15~\x1bOP", "\x1b", "\x1bm", "\x1b\x1bq", "\x1b[1;3A\x1b[2~\x1b[20~",
                                  "\x1b[<0;12;5M\x1b[<0;12;5m\x1b[I", "\x1b[20", "\x1b[201~a", "\x1b\x1b[200"])
def test_keys_outside_a_paste_are_read_as_textual_reads_them(keys: str) -> None:
    """Function keys, Esc then a key, Alt combinations, mouse and focus reports: the same events."""
    assert read_input(PasteSafeXTermParser(), keys) == read_input(XTermParser(), keys)
    assert read_input(PasteSafeXTermParser(), *keys) == read_input(XTermParser(), *keys)  # a byte at a time


def test_everything_between_the_paste_markers_is_one_paste() -> None:
    """Textual read an ESC in a paste as the start of a key: the text after it came out first, as keys."""
    pasted = "ls \x1b[1;34mdir\x1b[0m\x1b\x1bmtv\x1b[200~\r\t\x1b"
    stream = f"x{PASTE_START}{pasted}{PASTE_END}\x1bOP"
    expected = [repr(events.Key("x", "x")), repr(events.Paste(pasted)), repr(events.Key("f1", None))]
    assert read_input(PasteSafeXTermParser(), stream) == expected
    assert read_input(PasteSafeXTermParser(), *stream) == expected


def test_the_paste_safe_parser_is_the_linux_drivers_alone(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    driver = paste_safe_driver(LinuxDriver)
    assert issubclass(driver, LinuxDriver)
    assert driver.run_input_thread.__globals__["XTermParser"] is PasteSafeXTermParser
    assert linux_driver.XTermParser is XTermParser  # Textual's module as it was
    assert paste_safe_driver(HeadlessDriver) is HeadlessDriver
    # A Textual whose driver makes its parser some other way: its own parser, and a word in the log.
    monkeypatch.setattr(LinuxDriver, "run_input_thread", lambda self: None)
    assert paste_safe_driver(LinuxDriver) is LinuxDriver
    assert "Textual's input parser kept" in caplog.text


async def test_keys_after_enter_belong_to_the_next_message(url: str) -> None:
    """A paste without bracketed paste is typed text and Enters; the app used to empty the input only
    when it handled a line, after the next keys were in: lines were glued together, or lost."""
    async with alice_and(url, "carol") as (app, _pilot, _room, received):
        lines = [f"line {n}" for n in range(1, 7)]
        for line in lines:  # all queued before the app handles any
            for char in line:
                app.post_message(events.Key("space" if char == " " else char, char))
            app.post_message(events.Key("enter", "\r"))
        await received.wait_for(lambda u: u.message.text == "line 6")
        assert [u.message.text for u in received.items] == lines
        assert app.query_one("#composer", Input).value == ""


async def test_switching_the_mic_before_joining_is_how_the_call_starts() -> None:
    """Before the room is joined nothing is known of the devices: F2 said there was no microphone."""
    from tests.conftest import free_port

    media = MediaOptions(camera="none", mic="test", speaker="none")
    app = ChatApp(f"ws://127.0.0.1:{free_port()}/ws", "alice", "lobby", media=media)  # nobody listens there
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "not in the call yet" in status.publish.full)
        await pilot.press("f2")
        await until(pilot, lambda: "Microphone muted when the call starts" in screen_text(app))
        assert status.publish.full.startswith("mic muted · no cam"), status.publish.full
        assert "no microphone" not in screen_text(app)
        # A device the command line turned off is not there to switch.
        await pilot.press("f3")
        await until(pilot, lambda: "There is no camera" in screen_text(app))
        assert status.publish.full.startswith("mic muted · no cam"), status.publish.full


async def test_a_private_message_started_from_the_people_list_stays_private(url: str) -> None:
    async with alice_and(url, "carol") as (app, pilot, room, received):
        people = app.query_one(ParticipantList)
        people.focus()
        await pilot.pause()
        # Focused, the list starts on the first person who is not you: Enter works at once.
        option = people.highlighted_option
        assert option is not None and option.id == room.me.id  # type: ignore[union-attr]
        await pilot.press("enter")
        composer = app.query_one("#composer", Input)
        await until(pilot, lambda: app.focused is composer and composer.value == "/msg carol ")
        await pilot.press(*"hey carol", "enter")
        update = await received.wait_for(lambda u: u.message.text == "hey carol")
        assert update.message.private
        # A draft survives leaving the input and coming back (focus used to select it all).
        await pilot.press(*"draft")
        people.focus()
        await pilot.pause()
        composer.focus()
        await pilot.pause()
        await pilot.press(*" two")
        assert composer.value == "draft two"


async def test_events_reach_the_app_in_order(url: str) -> None:
    """The bridge posts every room event; a burst of messages arrives complete and in order."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: names(app) == ["alice"])
        async with Session(url, "bob") as session:
            room = await session.join("lobby")
            recorder = Recorder()
            room.on(RoomEvent.MESSAGE, recorder)
            for n in range(20):
                await room.send_message(f"burst {n}")
            await recorder.wait_for(lambda u: u.message.text == "burst 19")
            await until(pilot, lambda: any("burst 19" in line for line in log_lines(app)))
            bursts = [line.split(": ", 1)[1] for line in log_lines(app) if "burst" in line]
            assert bursts == [f"burst {n}" for n in range(20)]
        await asyncio.sleep(0)


async def test_command_palette_offers_tuichat_actions(url: str) -> None:
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"self-view")
        await until(pilot, lambda: "Self-view" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: app.self_view)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Keys and commands" in titles and "Keys" not in titles  # one help, not Textual's beside ours
        # QA: Textual's "Maximize" hid the call behind a full-screen input line; its "Screenshot" has
        # no video in it; its "Quit" is ours, which leaves the room first.
        assert not {"Maximize", "Screenshot", "Quit"} & set(titles) and "Leave and quit" in titles
        assert "Theme" not in titles  # QA: a light theme left the video area and status line dark


async def test_ctrl_c_says_how_to_quit_in_the_apps_words(url: str) -> None:
    """QA: Ctrl+C showed Textual's "Do you want to quit? Press ctrl+q to quit the app"."""
    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+c", "ctrl+c")
        await pilot.pause()
        toasts = [str(n.message) for n in app._notifications]
        assert toasts == ["Ctrl+C copies. Ctrl+Q leaves the call and quits."], toasts
        assert app.is_running


async def test_invite_link_uses_the_servers_public_url() -> None:
    from tuichat.server import RoomServer

    async with RoomServer("127.0.0.1", 0, public_url="https://chat.example.org/tuichat") as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        app = ChatApp(url, "alice", "lobby")
        async with app.run_test(size=(160, 32)) as pilot:
            invite = app.query_one(InviteLine)
            assert invite.link == f"http://127.0.0.1:{server.port}/r/lobby"  # before STATE: where we connected
            await until(pilot, lambda: invite.link == "https://chat.example.org/tuichat/r/lobby")
            assert "https://chat.example.org/tuichat/r/lobby" in screen_text(app)
            # The command too (README QA: it kept the address we used, which the invitee cannot reach).
            assert invite.command == "tuichat connect wss://chat.example.org/tuichat/ws THEIR_NAME lobby"
            await pilot.press("f7")
            assert app.clipboard == f"{invite.command}\n# or in a browser: {invite.link}"  # QA: pasted, "or" ran


# --- Unicode line breaks, the help at 80×24, no invite key without an invite, a new room -------------


def test_printable_breaks_lines_at_unicode_line_breaks_too() -> None:
    """U+2028 and U+2029 are not control characters (the server lets them through) and showed as '�'
    in the log; U+0085 (NEXT LINE) is a C1 control, which only a hostile server sends."""
    for separator in ("\u2028", "\u2029", "\x85"):
        assert printable(f"one{separator}two", keep_newlines=True) == "one\ntwo"
        assert printable(f"one{separator}two") == "one␊two"  # one line (a name): as '\n' is there
    # Nothing else changes: format characters still show, joiners are still left out.
    assert printable("a\u202eb\u200bc\u2066d\ufeffe", keep_newlines=True) == "a\ufffdb\ufffdc\ufffdd\ufffde"
    assert printable("a\r\nb", keep_newlines=True) == "a␍\nb"


def test_a_paste_breaks_lines_at_unicode_line_breaks_too() -> None:
    """Pasted, they are line breaks as in the log ('⏎' in the input): U+2028 went into the input as
    itself, and U+0085 was dropped, gluing the words on either side."""
    from tuichat.tui.widgets.composer import clean_paste

    assert Composer.text_of(clean_paste("one\u2028two\u2029three\x85four\u2028")) == "one\ntwo\nthree\nfour"


async def test_line_and_paragraph_separators_break_lines_in_the_log(url: str) -> None:
    async with alice_and(url, "bob") as (app, pilot, room, _):
        await room.send_message("one\u2028two\u2029three")
        await until(pilot, lambda: "three" in log_text(app))
        lines = log_lines(app)
        first = next((index for index, line in enumerate(lines) if line.endswith("bob: one")), None)
        assert first is not None, lines  # it was one line: "bob: one�two�three"
        indent = len(lines[first]) - len("one")  # the later lines hang under the text
        assert [line.rstrip() for line in lines[first + 1:first + 3]] == [" " * indent + "two", " " * indent + "three"]
        # From a server that lets NEXT LINE through, the same (and never the control code itself).
        message = MessageView(999, time.time(), "bob", False, "four\x85five", False, None)
        app.post_message(RoomChanged(RoomEvent.MESSAGE, tuple(app.query_one(ParticipantList).participants),
                                     message=message))
        await until(pilot, lambda: any(line.strip() == "five" for line in log_lines(app)))
        assert any(line.endswith("bob: four") for line in log_lines(app))
        shown = screen_text(app)
        assert not any(char in shown for char in "\ufffd\x85\u2028\u2029"), shown


async def test_the_help_fits_80x24_without_scrolling(url: str) -> None:
    """QA: at 80×24 the help had a scrollbar, with half its keys below it."""
    from textual.containers import VerticalScroll

    app = ChatApp(url, "alice", "lobby")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        scroll = app.screen.query_one(VerticalScroll)
        assert scroll.max_scroll_y == 0 and not scroll.show_vertical_scrollbar, scroll.virtual_size
        from tuichat.tui.screens.help import CHAT_COMMANDS, HELP_TEXT_CELLS

        shown = screen_text(app)
        rows = shown.splitlines()
        assert "tuichat keys" in shown and "Esc, F1 or q closes" in shown
        for key, description in [*ChatApp.KEY_HELP, *CHAT_COMMANDS]:
            assert len(description) <= HELP_TEXT_CELLS, description  # one line each at 80 columns
            assert any(key in row and description in row for row in rows), (key, description)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


def footer_actions(app: ChatApp) -> list[str]:
    from textual.widgets._footer import FooterKey

    return [key.action for key in app.query_one(KeyBar).query(FooterKey)]


async def test_an_unknown_host_leaves_no_invite_key_in_the_footer() -> None:
    """QA: after an unknown host the invite line went, but "f7 Invite" stayed in the footer."""
    app = ChatApp("ws://nosuchhost.invalid:8765/ws", "alice", "lobby")  # .invalid never resolves (RFC 6761)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "unknown host nosuchhost.invalid" in log_text(app), timeout=15)
        # The footer recomposes: empty for a moment, then its keys without F7.
        await until(pilot, lambda: "toggle_mic" in (keys := footer_actions(app)) and "copy_invite" not in keys)
        assert not app.query_one(InviteLine).display
        assert "f7" not in screen_text(app).splitlines()[-1]
        await pilot.press("f7")  # the key still says why there is nothing to copy
        await until(pilot, lambda: "Not in lobby: no invite to copy" in screen_text(app))
        # In the room after all (as after a refused rejoin): the key comes back with the line.
        app._show_invite(True)
        await until(pilot, lambda: "copy_invite" in footer_actions(app))
        assert "f7" in screen_text(app).splitlines()[-1]


async def test_joining_an_empty_room_says_it_is_new(url: str) -> None:
    """A mistyped room name made a new, empty room, and only "Here: nobody else yet." hinted at it."""
    app = ChatApp(url, "alice", "lobyb")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "You joined lobyb, a new room: nobody else is here." in log_text(app))
        assert "Check its name if you expected someone; F7 copies the invite" in log_text(app)
        assert "Here: nobody else yet" not in log_text(app)  # one line, not two
    async with Session(url, "bob") as bob:
        await bob.join("lobby")
        app = ChatApp(url, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "You joined lobby. Here: bob." in log_text(app))
            await pilot.pause(0.2)
            assert "new room" not in log_text(app)


@pytest.mark.parametrize(("sent", "shown"), [
    # VS16 (emoji presentation): Rich counted '❤️' as 2 cells, tmux 3.3 drew 1, emoji terminals 2.
    ("ht❤️", "ht❤"), ("☺️✌️⚠️✔️", "☺✌⚠✔"), ("©️ ™️ ↔️ ▶️ 🅰️", "© ™ ↔ ▶ 🅰"),
    ("key 1️⃣ #️⃣", "key 1\u20e3 #\u20e3"),  # a keycap keeps its enclosing mark: one cell, as '1'
    ("⌚️ 🙂\ufe0f", "⌚ 🙂"),  # after an emoji that is wide anyway: no change of width, left out all the same
    # VS15 (text presentation) after a wide emoji: some terminals draw it narrow, Rich counts 2.
    ("☃\ufe0e ⌚\ufe0e", "☃ ⌚"),
    # Skin tones: Rich counted 0 cells, tmux drew a 2-cell swatch after the hand ('👍🏽' took 4 for 2).
    ("th👍🏽 ☝🏿 👋🏻👋🏼", "th👍 ☝ 👋👋"), ("🏽 alone", " alone"),
    # ZWJ sequences: the joiner, the selectors and the tones all go; each emoji is left as itself.
    ("👩\u200d💻 🏳️\u200d🌈 🧑🏽\u200d💻", "👩💻 🏳🌈 🧑💻"),
    # Where Rich and the terminal agree, kept as sent: flags, wide, ambiguous and fullwidth
    # characters, emoji wide by default, other variation selectors (zero width everywhere).
    ("🇫🇷 🇫🇷🇩", "🇫🇷 🇫🇷🇩"), ("李 한국어 ｗ", "李 한국어 ｗ"), ("±§① αβ жы", "±§① αβ жы"),
    ("🙂 👍 ⌚", "🙂 👍 ⌚"), ("葛\U000e0100 a\ufe00", "葛\U000e0100 a\ufe00"),
], ids=["vs16-heart", "vs16-symbols", "vs16-text-defaults", "vs16-keycaps", "vs16-on-wide", "vs15",
        "skin-tones", "lone-skin-tone", "zwj-sequences", "flags", "east-asian-wide", "ambiguous",
        "wide-emoji", "other-variation-selectors"])
def test_printable_leaves_out_what_changes_an_emojis_width(sent: str, shown: str) -> None:
    """A name or message with '❤️' ran a cell short of its box in tmux; with '👍🏽' two cells past it."""
    from rich.cells import cell_len, get_character_cell_size

    assert printable(sent) == shown
    # What is left measures as its characters do, one by one, as a wcwidth terminal draws it (Rich
    # measures '❤️', '👍🏽' and joined emoji as a whole, and that is where terminals differ).
    assert cell_len(shown) == sum(get_character_cell_size(char) for char in shown)


def test_printable_keeps_its_other_rules_around_emoji() -> None:
    assert printable("[b]❤️[/b] 👍🏽") == "[b]❤[/b] 👍"  # markup shown as typed
    assert printable("❤️\n👍🏽", keep_newlines=True) == "❤\n👍" and printable("❤️\n👍🏽") == "❤␊👍"
    assert printable("\x1b[31m❤️\u202e") == "␛[31m❤\ufffd"  # control pictures, format characters as '�'
    assert printable("\u200d\ufe0f\U0001f3fd") == ""  # nothing to draw: nothing drawn
