"""The commands as a person runs them: real processes, real server, exit codes and output."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Recorder, free_port
from tuichat.cli import build_parser
from tuichat.cli import main as cli_main
from tuichat.client import RoomEvent, Session, websocket_url
from tuichat.media.devices import describe_cameras

TUICHAT = [sys.executable, "-m", "tuichat"]


@pytest.mark.parametrize("command", [[], ["serve"], ["connect"], ["bot"], ["demo"], ["devices"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = subprocess.run([*TUICHAT, *command, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "usage: tuichat" in result.stdout


@pytest.mark.parametrize("command", [["serve"], ["connect", "h", "u", "r"], ["bot", "h", "u", "r"], ["demo"],
                                     ["devices"]])
def test_every_command_takes_the_log_options(command: list[str]) -> None:
    """README QA: "every command has --log-file and -v", but `devices` refused both."""
    args = build_parser().parse_args([*command, "-v", "--log-file", "x.log"])
    assert args.verbose and str(args.log_file) == "x.log"


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["devices"], ["bot", "127.0.0.1:1", "u", "r"]])
def test_a_log_file_that_cannot_be_written_is_one_line_not_a_traceback(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: `--log-file /proc/nope/x` or a directory ended every command in a traceback."""
    for where in ("/proc/nope/x.log", str(tmp_path)):
        assert cli_main([*command, "--log-file", where]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"tuichat {command[0]}: cannot write the log file {where!r}: ") and "Traceback" not in err


def test_demo_takes_the_media_options_of_connect() -> None:
    """QA: the demo could not be given a camera (--camera was an unknown option)."""
    args = build_parser().parse_args(["demo", "--camera", "test", "--mic", "none", "--speaker", "none"])
    assert (args.camera, args.mic, args.speaker) == ("test", "none", "none")
    assert build_parser().parse_args(["demo"]).camera == build_parser().parse_args(["connect", "h", "u", "r"]).camera


def test_devices_lists_what_the_media_options_take(tmp_path: Path) -> None:
    """Device errors pointed at "the device list", which no command showed."""
    result = subprocess.run([*TUICHAT, "devices"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stderr == ""
    cameras, sound = result.stdout.split("\n\n")
    assert cameras.startswith("Cameras (--camera N):\n") and sound.startswith("Sound devices (")
    assert not os.path.exists("/dev/video0") or "/dev/video0" in cameras
    for node in ("video0", "video10", "video2", "vbi0"):
        (tmp_path / node).touch()
    assert [line.split()[:2] for line in describe_cameras(str(tmp_path)).splitlines()] == [
        ["0", f"{tmp_path}/video0"], ["2", f"{tmp_path}/video2"], ["10", f"{tmp_path}/video10"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["connect", "localhost", "bad\x1bname", "room"], "U+001B"),
        (["bot", "localhost", "alice", "a/b"], "must not contain '/'"),
        (["serve", "--port", "99999"], "99999 is not between 0 and 65535"),
        (["bot", "ftp://host", "alice", "room"], "unsupported scheme 'ftp'"),
        (["bot", "host:notaport", "alice", "room"],
         "tuichat bot: error: bad port in 'host:notaport': a port is a number from 1 to 65535"),
        # QA: "invalid port in 'ws://127.0.0.1:99999'", a URL nobody typed.
        (["connect", "127.0.0.1:99999", "alice", "room"],
         "tuichat connect: error: bad port in '127.0.0.1:99999': a port is a number from 1 to 65535"),
        (["connect", "localhost", "-dash", "room"],
         "'-dash' was read as an option: a name or room starting with '-' goes after --, options before it,"
         " as in: tuichat connect HOST -- -dash ROOM"),
        # A misspelt option is named with the one meant, in the command's own usage.
        (["connect", "localhost", "alice", "room", "--colour", "256"],
         "tuichat connect: error: unknown option --colour (did you mean --colors?)"),
        # Review: a bad STUN URL surfaced only as a failed media connection (aiortc reads it late).
        (["serve", "--stun", "http://nope"], "argument --stun: 'http://nope' is not a STUN URL"),
        (["connect", "h", "u", "r", "--turn", "stun:x"], "argument --turn: 'stun:x' is not a TURN URL"),
        # aiortc uses the first STUN and the first TURN server: a second one was ignored silently.
        (["serve", "--stun", "stun:a.example.org", "--stun", "stun:b.example.org"],
         "argument --stun: given twice: tuichat's WebRTC (aiortc) uses one STUN and one TURN server, "
         "so give --stun once"),
        (["serve", "--prot", "9000"], "tuichat serve: error: unknown option --prot (did you mean --port?)"),
        (["bot", "--bogus"], "unknown option --bogus (see tuichat bot --help); the following arguments are required"),
        (["bot", "localhost", "alice", "room", "--say", "one", "two"],
         "tuichat bot: error: unrecognized arguments: two (a value with spaces needs quotes)"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = subprocess.run([*TUICHAT, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


async def start_bot(port: int, name: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *TUICHAT, "bot", f"127.0.0.1:{port}", name, "lobby", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def read_event(process: asyncio.subprocess.Process, event: str, timeout: float = 10) -> dict[str, Any]:
    assert process.stdout is not None

    async def scan() -> dict[str, Any]:
        while line := await process.stdout.readline():  # type: ignore[union-attr]
            data = json.loads(line)
            if data["event"] == event:
                return data  # type: ignore[no-any-return]
        raise AssertionError(f"bot exited before {event}")

    return await asyncio.wait_for(scan(), timeout)


async def test_bot_prints_events_says_reads_stdin_and_exits_on_eof(url: str) -> None:
    port = int(url.split(":")[2].split("/")[0])
    async with Session(url, "alice") as alice:
        room = await alice.join("lobby")
        messages = Recorder()
        room.on(RoomEvent.MESSAGE, messages)
        bot = await start_bot(port, "robo", "--say", "hello from --say")
        state = await read_event(bot, "STATE")
        assert [p["name"] for p in state["participants"]] == ["alice", "robo"]
        said = await messages.wait_for(lambda u: u.message.sender.name == "robo", timeout=10)
        assert said.message.text == "hello from --say"

        await room.send_message("hi robo [bold]x[/]")
        event = await read_event(bot, "MESSAGE")
        while event["from"] != "alice":
            event = await read_event(bot, "MESSAGE")
        assert event["text"] == "hi robo [bold]x[/]" and event["private"] is False

        assert bot.stdin is not None
        bot.stdin.write(b"typed on stdin\n")
        await bot.stdin.drain()
        typed = await messages.wait_for(lambda u: u.message.text == "typed on stdin", timeout=10)
        assert typed.message.sender.name == "robo"
        # A line reads as in the terminal client: /msg NAME TEXT is private.
        bot.stdin.write(b"/msg alice just you\n/msg nobody hello\n")
        await bot.stdin.drain()
        private = await messages.wait_for(lambda u: u.message.text == "just you", timeout=10)
        assert private.message.private and private.message.sender.name == "robo"
        error = await read_event(bot, "ERROR")
        assert error["reason"] == "nobody called 'nobody' is in the room"

        left = Recorder()
        room.on(RoomEvent.LEFT, left)
        bot.stdin.close()
        assert await asyncio.wait_for(bot.wait(), 10) == 0
        await left.wait_for(lambda u: u.participant.name == "robo")


async def test_a_flood_piped_into_the_bot_arrives_whole_and_in_order(url: str) -> None:
    """The server allows a burst of 30 commands, then 10 a second: the bot waits instead of dropping."""
    port = int(url.split(":")[2].split("/")[0])
    async with Session(url, "alice") as alice:
        room = await alice.join("lobby")
        messages = Recorder()
        room.on(RoomEvent.MESSAGE, messages)
        bot = await start_bot(port, "robo")
        await read_event(bot, "STATE")
        lines = [f"line {n}" for n in range(60)]
        stdout, stderr = await asyncio.wait_for(bot.communicate("\n".join(lines).encode() + b"\n"), 30)
        assert bot.returncode == 0, stderr.decode()
        assert '"ERROR"' not in stdout.decode()
        await messages.wait_for(lambda u: u.message.text == "line 59", timeout=5)
        got = [u.message.text for u in messages.items if u.message.sender.name == "robo"]
        assert got == lines


async def test_bot_that_cannot_join_exits_1_with_the_reason(url: str) -> None:
    port = int(url.split(":")[2].split("/")[0])
    async with Session(url, "taken") as holder:
        await holder.join("lobby")
        bot = await start_bot(port, "TAKEN")
        stdout, stderr = await asyncio.wait_for(bot.communicate(b""), 15)
        assert bot.returncode == 1
        assert "someone called 'taken' is already in room 'lobby'" in stderr.decode()
        events = [json.loads(line) for line in stdout.decode().splitlines()]
        assert {"event": "FAILED", "code": "name_taken",
                "reason": "someone called 'taken' is already in room 'lobby'"} in events
        assert events[-1] == {"event": "SESSION", "status": "DISCONNECTED", "reason": "disconnected"}


async def test_bot_with_no_server_exits_1() -> None:
    bot = await start_bot(free_port(), "robo")
    stdout, stderr = await asyncio.wait_for(bot.communicate(b""), 15)
    assert bot.returncode == 1
    assert "cannot reach" in stderr.decode()
    assert json.loads(stdout.decode().splitlines()[-1])["status"] == "FAILED"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_serve_logs_connections_joins_and_leaves_and_stops_on_ctrl_c_or_sigterm(stop_signal: int) -> None:
    """Soak QA: SIGTERM (kill, systemd, docker stop) ended the server without stopping it: clients
    were not told, and waited for their heartbeat to time out."""
    import aiohttp

    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *TUICHAT, "serve", "--host", "127.0.0.1", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert server.stderr is not None
    lines: list[str] = []

    async def expect(fragment: str) -> None:
        async def scan() -> None:
            while not any(fragment in line for line in lines):
                line = await server.stderr.readline()  # type: ignore[union-attr]
                if not line:
                    raise AssertionError(f"server exited before logging {fragment!r}: {lines}")
                lines.append(line.decode())

        await asyncio.wait_for(scan(), 10)

    try:
        await expect(f"listening on 127.0.0.1:{port}")
        async with Session(f"ws://127.0.0.1:{port}/ws", "alice") as alice:
            await alice.join("lobby")
            await expect("connection from 127.0.0.1")
            await expect("alice (p1) joined room lobby [1 present]")
        await expect("alice (p1) left room lobby")
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await expect("connection from 127.0.0.1")
            server.send_signal(stop_signal)
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)
            assert closing.extra == "server shutting down"
        assert await asyncio.wait_for(server.wait(), 10) == 0
        rest = (await server.stderr.read()).decode()
        assert "Traceback" not in rest and "Traceback" not in "".join(lines)
        assert "server stopped" in rest
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def test_serve_says_how_to_invite_at_an_address_others_can_reach() -> None:
    """QA: `serve` printed only "listening on 0.0.0.0:19703", no command or link to hand out."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *TUICHAT, "serve", "--host", "0.0.0.0", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert server.stderr is not None
    try:
        lines: list[str] = []
        while not any("invite from a browser" in line for line in lines):
            line = (await asyncio.wait_for(server.stderr.readline(), 10)).decode()
            assert line, f"the server exited: {lines}"
            lines.append(line)
        command = next(line for line in lines if "invite from a terminal: " in line)
        words = shlex.split(command.split("invite from a terminal: ", 1)[1])
        assert words[:2] == ["tuichat", "connect"] and words[3:] == ["THEIR_NAME", "ROOM"], words
        address = words[2]
        assert not address.startswith(("0.0.0.0", "127.")) and address.endswith(f":{port}"), address
        link = next(line for line in lines if "invite from a browser: " in line).split(": ", 1)[1].split()[0]
        assert link == f"http://{address}/r/ROOM"
        # What it names works: the command's address, and the page.
        async with Session(websocket_url(address), "alice") as alice:
            assert (await alice.join("lobby")).joined
        async with aiohttp.ClientSession() as http, http.get(link) as response:
            assert response.status == 200
    finally:
        server.kill()
        await server.wait()


def test_serve_on_a_busy_port_fails_clearly() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*TUICHAT, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                capture_output=True, text=True, timeout=30, env={**os.environ})
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_says_when_its_invites_reach_this_computer_only() -> None:
    """QA: `serve --host 127.0.0.1` (the README's reverse-proxy example) printed a loopback invite
    with no word that nobody elsewhere can use it (the terminal client's invite line says so)."""
    from tuichat.server.web import join_hints

    for host in ("127.0.0.1", "::1", "localhost"):
        hints = join_hints(host, 9000, tls=False, public_url=None)
        assert len(hints) == 3 and hints[2].startswith(f"(this computer only: listening on {host};"), hints
        assert "--host 0.0.0.0" in hints[2] and "--public-url" in hints[2]
    assert len(join_hints("127.0.0.1", 9000, tls=True, public_url="https://chat.example.org")) == 2
    assert len(join_hints("192.0.2.7", 9000, tls=False, public_url=None)) == 2


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("localhost", "ws://localhost:8765/ws"),
        ("[::1]:9000", "ws://[::1]:9000/ws"),
        ("ws://h:1/ws", "ws://h:1/ws"),
        ("wss://h", "wss://h/ws"),
        ("wss://h/prefix", "wss://h/prefix"),  # a WebSocket's own URL: as typed
        # A page's address (the start page `serve --public-url` prints): the WebSocket beside it.
        ("https://h/prefix", "wss://h/prefix/ws"),
        ("https://chat.example.org/tuichat/", "wss://chat.example.org/tuichat/ws"),
        ("https://h/prefix/ws", "wss://h/prefix/ws"),
        ("http://h:9000/?x=1", "ws://h:9000/ws"),
        # A room's browser link, as the invite line and the web page show it: its server.
        ("http://127.0.0.1:9000/r/standup?name=bob", "ws://127.0.0.1:9000/ws"),
        ("https://chat.example.org/tuichat/r/caf%C3%A9/", "wss://chat.example.org/tuichat/ws"),
        ("http://h/r/a", "ws://h:80/ws"),
    ],
)
def test_server_addresses_as_people_type_them(typed: str, url: str) -> None:
    from tuichat.client.address import websocket_url

    assert websocket_url(typed) == url


async def test_the_rooms_browser_link_works_as_the_server_address(url: str) -> None:
    port = int(url.split(":")[2].split("/")[0])
    bot = await asyncio.create_subprocess_exec(
        *TUICHAT, "bot", f"http://127.0.0.1:{port}/r/lobby", "robo", "lobby", "--chat-only",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    state = await read_event(bot, "STATE")
    assert [p["name"] for p in state["participants"]] == ["robo"]
    assert bot.stdin is not None
    bot.stdin.close()
    assert await asyncio.wait_for(bot.wait(), 10) == 0
