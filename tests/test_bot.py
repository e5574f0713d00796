"""The bot as a script uses it: stdin lines read as the terminal client reads them, and a reader of
its output that goes away (``tuichat bot ... | head -2``). Real server, real bot processes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Recorder, wait_until
from tests.test_cli import TUICHAT, read_event, start_bot
from tuichat.bot import Bot, BotOptions
from tuichat.client import RoomEvent, Session
from tuichat.client.chatline import ChatLine, LineKind, parse_line

pytestmark = pytest.mark.timeout(60)


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def sent_by(messages: Recorder, name: str) -> list[str]:
    return [u.message.text for u in messages.items if u.message.sender.name == name]


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("hello", ChatLine(LineKind.TEXT, "hello")),
        ("  indented text", ChatLine(LineKind.TEXT, "  indented text")),
        ("/msg bob hi there", ChatLine(LineKind.PRIVATE, "hi there", name="bob")),
        ('/msg "Ann Lee" hi', ChatLine(LineKind.PRIVATE, "hi", name="Ann Lee")),
        ("/quit", ChatLine(LineKind.QUIT)),
        ("  /exit  ", ChatLine(LineKind.QUIT)),
        ("/help", ChatLine(LineKind.HELP)),
        ("//shrug it off", ChatLine(LineKind.TEXT, "/shrug it off")),  # '//': text that starts with '/'
        ("/MSG Bob Hi", ChatLine(LineKind.PRIVATE, "Hi", name="Bob")),  # QA: "Unknown command /MSG"
        ("/Quit", ChatLine(LineKind.QUIT)),
        # QA: a command ended only at a space ("/quit⏎bye" was "unknown command /quit⏎bye").
        ("/quit\nbye all", ChatLine(LineKind.QUIT)),
        ("/msg\tbob tabbed", ChatLine(LineKind.PRIVATE, "tabbed", name="bob")),
        ("/msg bob\nline two", ChatLine(LineKind.PRIVATE, "line two", name="bob")),
    ],
)
def test_a_line_reads_as_in_the_terminal_client(line: str, parsed: ChatLine) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize("line", ["/msg", "/msg bob", "/msg  ", "/msgbob hi", "/frobnicate now", "/ text"])
def test_a_line_the_terminal_client_would_not_send_is_invalid(line: str) -> None:
    parsed = parse_line(line)
    assert parsed.kind is LineKind.INVALID and parsed.problem


@contextlib.asynccontextmanager
async def alice_and_a_bot(url: str) -> AsyncIterator[tuple[Recorder, Recorder, asyncio.subprocess.Process]]:
    """alice in "lobby", recording MESSAGE and LEFT, and a chat-only bot "robo" that has joined (its
    STATE read): (messages, left, bot). The bot is killed if the test leaves it running."""
    async with Session(url, "alice") as alice:
        room = await alice.join("lobby")
        messages, left = Recorder(), Recorder()
        room.on(RoomEvent.MESSAGE, messages)
        room.on(RoomEvent.LEFT, left)
        bot = await start_bot(port_of(url), "robo", "--chat-only")
        try:
            await read_event(bot, "STATE")
            assert bot.stdin is not None
            yield messages, left, bot
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()


async def test_bad_commands_on_stdin_are_reported_not_sent(url: str) -> None:
    async with alice_and_a_bot(url) as (messages, _left, bot):
        assert bot.stdin is not None
        bot.stdin.write(b"/msg\n/msg alice\n/frobnicate now\n/help\n//shrug\nsent\n")
        await bot.stdin.drain()
        errors = [await read_event(bot, "ERROR") for _ in range(4)]
        usage = 'usage: /msg NAME TEXT (quote a name with spaces: /msg "Ann Lee" hi)'
        assert errors == [
            {"event": "ERROR", "text": "/msg", "reason": usage},
            {"event": "ERROR", "text": "/msg alice", "reason": usage},
            {"event": "ERROR", "text": "/frobnicate now",
             "reason": "unknown command /frobnicate; the bot's commands are /msg NAME TEXT and /quit (or /exit)"},
            {"event": "ERROR", "text": "/help",
             "reason": "not sent: the bot's commands are /msg NAME TEXT and /quit (or /exit)"},
        ]
        # Lines are sent in order: once "sent" is in, nothing before it is still on its way.
        await messages.wait_for(lambda u: u.message.text == "sent", timeout=10)
        assert sent_by(messages, "robo") == ["/shrug", "sent"]
        bot.stdin.close()
        assert await asyncio.wait_for(bot.wait(), 10) == 0


@pytest.mark.parametrize("command", ["/quit", "/exit"])
async def test_quit_on_stdin_leaves_and_exits_0_like_eof(url: str, command: str) -> None:
    async with alice_and_a_bot(url) as (messages, left, bot):
        assert bot.stdin is not None
        # stdin stays open: only the command can end the bot.
        bot.stdin.write(f"before\n{command}\nafter\n".encode())
        await bot.stdin.drain()
        assert await asyncio.wait_for(bot.wait(), 10) == 0
        gone = await left.wait_for(lambda u: u.participant.name == "robo", timeout=10)
        assert gone.reason == "left"
        # The bot's messages reach alice before its leaving does.
        assert sent_by(messages, "robo") == ["before"]
        assert bot.stderr is not None and await bot.stderr.read() == b""


async def test_crlf_lines_on_stdin_are_sent_without_the_cr(url: str) -> None:
    """QA: every line of a CRLF file (Windows editors, many network tools) kept its '\\r' and was
    refused by the server as invalid_text."""
    async with alice_and_a_bot(url) as (messages, _left, bot):
        assert bot.stdin is not None
        bot.stdin.write(b"hello\r\nsecond line\r\n/msg alice psst\r\nlast\r\n")
        bot.stdin.close()
        assert await asyncio.wait_for(bot.wait(), 10) == 0
        assert bot.stdout is not None and bot.stderr is not None
        assert b'"ERROR"' not in await bot.stdout.read() and await bot.stderr.read() == b""
        await messages.wait_for(lambda u: u.message.text == "last", timeout=10)
        assert sent_by(messages, "robo") == ["hello", "second line", "psst", "last"]


async def test_line_separators_in_chat_keep_one_event_per_line(url: str) -> None:
    """QA: U+2028/U+2029 in someone's message went out raw in the bot's JSON: a reader splitting
    lines by Unicode's rules (str.splitlines, many tools) got two halves of invalid JSON."""
    async with Session(url, "mallory") as mallory:
        room = await mallory.join("lobby")
        bot = await start_bot(port_of(url), "watcher", "--chat-only")
        try:
            await read_event(bot, "STATE")
            await room.send_message("one\u2028two\u2029three")
            assert bot.stdout is not None
            line = b""
            while b'"MESSAGE"' not in line:
                line = await asyncio.wait_for(bot.stdout.readline(), 10)
            decoded = line.decode()
            assert decoded.splitlines() == [decoded.rstrip("\n")]
            assert json.loads(decoded)["text"] == "one\u2028two\u2029three"
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()


async def test_quit_with_more_stdin_behind_it_ends_the_reader_quietly(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the stdin thread was left waiting on a queue put nobody took after /quit; the closing
    loop cancelled it and it died with a traceback on stderr (exit 0 all the same). Run in this
    process to watch the thread itself: from a subprocess the traceback shows only when the dying
    thread beats the interpreter's exit."""
    async with Session(url, "alice") as alice:
        room = await alice.join("lobby")
        messages, left = Recorder(), Recorder()
        room.on(RoomEvent.MESSAGE, messages)
        room.on(RoomEvent.LEFT, left)
        crashes: list[threading.ExceptHookArgs] = []
        monkeypatch.setattr(threading, "excepthook", crashes.append)
        # More than the thread reads ahead: it is waiting to hand a line over at /quit.
        monkeypatch.setattr(sys, "stdin", io.StringIO("before\n/quit\n" + "".join(f"line {n}\n" for n in range(500))))
        out = io.StringIO()

        def run_bot_in_its_own_loop() -> int:
            return asyncio.run(Bot(BotOptions(url=url, name="robo", room="lobby", media=False), out=out).run())

        assert await asyncio.wait_for(asyncio.to_thread(run_bot_in_its_own_loop), 20) == 0
        try:
            await wait_until(lambda: not any(t.name == "bot-stdin" for t in threading.enumerate()))
        except TimeoutError:
            pytest.fail("the stdin thread is still waiting to hand over a line after the bot ended")
        assert [(c.exc_type, c.exc_value) for c in crashes] == []
        await left.wait_for(lambda u: u.participant.name == "robo", timeout=10)
        assert sent_by(messages, "robo") == ["before"]


async def _readline(reader: Any) -> dict[str, Any]:
    line = await asyncio.wait_for(asyncio.to_thread(reader.readline), 10)
    if not line:
        raise AssertionError("the bot closed its output")
    return json.loads(line)  # type: ignore[no-any-return]


@pytest.mark.parametrize("reader_leaves", ["before the first line", "after STATE"])
async def test_a_reader_that_goes_away_stops_the_bot_quietly(url: str, reader_leaves: str) -> None:
    """``tuichat bot ... | head -2``: the bot leaves the room cleanly and exits 0, no traceback."""
    async with Session(url, "alice") as alice:
        room = await alice.join("lobby")
        joined, left = Recorder(), Recorder()
        room.on(RoomEvent.JOINED, joined)
        room.on(RoomEvent.LEFT, left)
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb")
        if reader_leaves == "before the first line":
            reader.close()
        try:
            bot = await asyncio.create_subprocess_exec(
                *TUICHAT, "bot", f"127.0.0.1:{port_of(url)}", "piper", "lobby", "--chat-only",
                stdin=asyncio.subprocess.PIPE, stdout=write_fd, stderr=asyncio.subprocess.PIPE,
            )
        finally:
            os.close(write_fd)
        try:
            if not reader.closed:
                while (await _readline(reader))["event"] != "STATE":
                    pass
                reader.close()
            await joined.wait_for(lambda u: u.participant.name == "piper", timeout=10)
            # stdin stays open (the `(sleep 8; echo hi)` of the report); the bot only learns that its
            # reader is gone when it next writes: alice gives it something to write.
            await room.send_message("anyone there?")
            assert await asyncio.wait_for(bot.wait(), 10) == 0
            assert bot.stderr is not None
            assert (await bot.stderr.read()).decode() == ""
            gone = await left.wait_for(lambda u: u.participant.name == "piper", timeout=10)
            assert gone.reason == "left"
        finally:
            reader.close()
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
