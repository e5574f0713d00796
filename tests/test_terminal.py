"""The client in a real terminal (tmux): what a person sees, typed at like a person types."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Recorder
from tuichat.client import RoomEvent, Session

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One private tmux server (its own socket) running one command in a fixed-size window."""

    def __init__(self, width: int = 110, height: int = 32) -> None:
        self.socket = f"tuichat-test-{uuid.uuid4().hex[:8]}"
        self.width = width
        self.height = height

    def run(self, *args: str) -> str:
        # An explicit environment: under pytest the process's C-level environment carries COLUMNS=80
        # and LINES=24 (set by a native library, invisible in os.environ), which the tmux server
        # would hand to the app, pinning it at 80x24 whatever the window size.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=10, env=env).stdout

    def start(self, command: list[str]) -> None:
        self.run("new-session", "-d", "-x", str(self.width), "-y", str(self.height),
                 "-e", "COLORTERM=truecolor", shlex.join(command))

    def screen(self, *, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def paste(self, text: str, scratch: Path) -> None:
        """``text`` pasted as a terminal pastes: between ESC[200~ and ESC[201~, as the app asked."""
        scratch.write_text(text, encoding="utf-8")
        self.run("load-buffer", "-b", "pasted", str(scratch))
        self.run("paste-buffer", "-p", "-d", "-b", "pasted")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session"], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)

    async def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
            await asyncio.sleep(0.1)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    terminal = Tmux()
    yield terminal
    terminal.kill()


async def test_a_real_terminal_session(url: str, tmux: Tmux, tmp_path: object) -> None:
    port = url.split(":")[2].split("/")[0]
    tmux.start([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby",
                "--log-file", f"{tmp_path}/connect.log"])
    await tmux.wait_for("You joined lobby")
    screen = await tmux.wait_for("f7 Copy invite")  # the footer, once the window has its full size
    assert "ESTABLISHED" in screen and "people (1)" in screen
    assert f"tuichat connect 127.0.0.1:{port} THEIR_NAME lobby" in screen
    assert "^q Quit" in screen and "f1 Help" in screen

    async with Session(url, "bob") as bob:
        room = await bob.join("lobby")
        heard = Recorder()
        room.on(RoomEvent.MESSAGE, heard)
        left = Recorder()
        room.on(RoomEvent.LEFT, left)
        await tmux.wait_for("bob joined.")
        await room.send_message("[bold red]boom[/] ☃")
        await tmux.wait_for("bob: [bold red]boom[/] ☃")

        tmux.keys("-l", "hello bob, did you see the ? key")
        tmux.keys("Enter")
        said = await heard.wait_for(lambda u: u.message.sender.name == "alice", timeout=10)
        assert said.message.text == "hello bob, did you see the ? key"

        tmux.keys("F1")
        await tmux.wait_for("tuichat keys")
        tmux.keys("Escape")
        deadline = time.monotonic() + 5
        while "tuichat keys" in tmux.screen():
            assert time.monotonic() < deadline, "the help screen did not close"
            await asyncio.sleep(0.1)

        # No raw escape bytes of other people's text, and colour codes are truecolor as requested.
        coloured = tmux.screen(escapes=True)
        assert "38;2;" in coloured or "48;2;" in coloured

        tmux.keys("C-q")
        await left.wait_for(lambda u: u.participant.name == "alice", timeout=10)
    deadline = time.monotonic() + 10
    while tmux.alive():
        assert time.monotonic() < deadline, "the client did not exit after Ctrl+Q"
        await asyncio.sleep(0.1)


async def test_a_paste_with_escape_codes_is_text_in_the_input(url: str, tmux: Tmux, tmp_path: Path) -> None:
    """Terminal output copied with its colour codes: Textual read each ESC in a paste as the start of a
    key, so the input got '^[1;34mdir^[0mmtvls output:' and the letters after an ESC pair ran as the
    app's keys (m muted the mic, t hid the panels), with the input no longer focused."""
    port = url.split(":")[2].split("/")[0]
    tmux.start([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby",
                "--camera", "none", "--mic", "test", "--speaker", "none", "--log-file", f"{tmp_path}/connect.log"])
    await tmux.wait_for("f7 Copy invite")
    await tmux.wait_for("mic on")
    tmux.paste("ls output: \x1b[1;34mdir\x1b[0m tv\x1b\x1bmtv\x1b", tmp_path / "clipboard")
    tmux.keys("-l", " zz")  # typed after it: the input still has the focus
    screen = await tmux.wait_for("ls output: [1;34mdir[0m tvmtv zz")  # in order, without the ESCs
    assert "mic on" in screen and "Microphone" not in screen  # not muted, and no note of it
    assert "people (1)" in screen and "messages" in screen and "invite:" in screen  # not video only
    # Keys outside a paste are as they were: Esc leaves the input, and m mutes.
    tmux.keys("Escape")
    await asyncio.sleep(0.5)  # Esc alone: past the wait for a key that comes with it
    tmux.keys("m")
    await tmux.wait_for("mic muted")


async def test_video_reaches_a_real_terminal_as_truecolor_half_blocks(url: str, tmux: Tmux, tmp_path: object) -> None:
    import re

    from tuichat.client.call import Call
    from tuichat.media import AudioDrain, TestPatternTrack

    port = url.split(":")[2].split("/")[0]
    async with Session(url, "carol") as carol:
        room = await carol.join("lobby")
        drain = AudioDrain()
        drain.start()
        async with Call(room, video=TestPatternTrack(640, 480, 15), audio_sink=drain):
            tmux.start([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby",
                        "--camera", "none", "--mic", "none", "--speaker", "none", "--colors", "truecolor",
                        "--log-file", f"{tmp_path}/connect.log"])
            await tmux.wait_for("carol PLAYING")
            deadline = time.monotonic() + 10
            while True:
                coloured = tmux.screen(escapes=True)
                # The red bar: a cell that shows strong red, as the fg of '▀', '▄' or '█', or as the bg
                # of '▀', '▄' or a space (the encoder picks whichever reuses the colours already set).
                reds = re.findall(r"38;2;(\d+);(\d+);(\d+)[;m][^▀▄█ ]{0,40}[▀▄█]", coloured)
                reds += re.findall(r"48;2;(\d+);(\d+);(\d+)[;m][^▀▄█ ]{0,40}[▀▄ ]", coloured)
                if any(int(r) > 180 and int(g) < 80 and int(b) < 80 for r, g, b in reds):
                    break
                assert time.monotonic() < deadline, "no red half blocks on the screen"
                await asyncio.sleep(0.2)
            assert any(glyph in tmux.screen() for glyph in "▀▄█")
        await drain.stop()


@pytest.mark.parametrize(("colors", "forbidden"), [("16", ("38;5;", "48;5;", "38;2;", "48;2;")),
                                                   ("mono", ("38;5;", "48;5;", "38;2;", "48;2;")),
                                                   ("256", ("38;2;", "48;2;"))])
async def test_colors_limits_the_whole_interface(url: str, tmux: Tmux, tmp_path: object, colors: str,
                                                 forbidden: tuple[str, ...]) -> None:
    """`--colors 16` changed only the video: borders and the status line still came in 256 colours.
    `--colors mono` (and NO_COLOR) drew the video in the 256-colour gray ramp beside a 16-colour UI."""
    port = url.split(":")[2].split("/")[0]
    raw = f"{tmp_path}/terminal.out"
    tmux.start([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby",
                "--colors", colors, "--camera", "test", "--mic", "none", "--speaker", "none",
                "--log-file", f"{tmp_path}/connect.log"])
    tmux.run("pipe-pane", "-o", f"cat >> {shlex.quote(raw)}")  # every byte the app writes
    await tmux.wait_for("You joined lobby")
    tmux.keys("F6")  # the self-view: video in the same colours
    await tmux.wait_for("PUBLISHING")

    def written() -> str:
        with open(raw, encoding="utf-8", errors="replace") as output:
            return output.read()

    # Until the self-view is on the screen: the encoder writes '▀', or '▄', '█' and spaces where they
    # reuse the colours set (mono's four grays can leave no '▀' at all). Quitting at PUBLISHING raced it.
    deadline = time.monotonic() + 20
    while not any(glyph in tmux.screen() for glyph in "▀▄█"):
        assert time.monotonic() < deadline, "no video was drawn"
        await asyncio.sleep(0.1)
    tmux.keys("C-q")
    deadline = time.monotonic() + 10
    while tmux.alive():
        assert time.monotonic() < deadline, "the client did not quit"
        await asyncio.sleep(0.1)
    everything = written()
    assert "\x1b[" in everything and any(glyph in everything for glyph in "▀▄█"), \
        "nothing of the interface or the video was captured"
    for code in forbidden:
        assert code not in everything, f"{code!r} written with --colors {colors}"
    if colors == "mono":  # README QA: the theme's red, green and accents came through
        hues = {int(p) for params in re.findall(r"\x1b\[([0-9;]*)m", everything) for p in params.split(";")
                if p and (31 <= int(p) <= 36 or 91 <= int(p) <= 96 or 41 <= int(p) <= 46 or 101 <= int(p) <= 106)}
        assert not hues, f"colour codes {sorted(hues)} written with --colors mono"


@pytest.mark.parametrize("hangup", ["ignored", "delivered"])
async def test_a_terminal_that_goes_away_ends_the_call(url: str, tmux: Tmux, tmp_path: object, hangup: str) -> None:
    """The pane killed, as when an SSH session drops or the window closes. With SIGHUP ignored (make
    took it, nohup) the client stayed in the room for ever, unseen, hung on Textual's dead output;
    with SIGHUP delivered it died at once and the others saw "connection lost"."""
    port = url.split(":")[2].split("/")[0]
    client = shlex.join([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby",
                         "--camera", "test", "--mic", "none", "--speaker", "none",
                         "--log-file", f"{tmp_path}/connect.log"])
    tmux.start(["sh", "-c", f"trap '' HUP; exec {client}" if hangup == "ignored" else f"exec {client}"])
    await tmux.wait_for("You joined lobby")
    pid = int(tmux.run("display", "-p", "#{pane_pid}").strip())
    try:
        async with Session(url, "bob") as bob:
            room = await bob.join("lobby")
            left = Recorder()
            room.on(RoomEvent.LEFT, left)
            tmux.kill()
            gone = await left.wait_for(lambda u: u.participant.name == "alice", timeout=10)
            assert gone.reason == "left"  # it left cleanly, not dropped by the heartbeat
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}"):
            assert time.monotonic() < deadline, "the client process is still running"
            await asyncio.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # never leave it behind, whatever failed


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
async def test_sigterm_leaves_the_room_and_gives_the_terminal_back(
        url: str, tmux: Tmux, tmp_path: object, signum: signal.Signals) -> None:
    """`kill PID`: Python's default ended the process on the spot, so the others saw "connection
    lost" and the terminal stayed on the alternate screen with mouse tracking on and no cursor.
    `kill -HUP PID` with the terminal still there does the same, and says SIGHUP (it said SIGTERM)."""
    port = url.split(":")[2].split("/")[0]
    client = shlex.join([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby",
                         "--camera", "test", "--mic", "none", "--speaker", "none",
                         "--log-file", f"{tmp_path}/connect.log"])
    tmux.start(["sh", "-c", f"{client}; echo exit=$?; exec sleep 60"])  # the pane outlives the client
    await tmux.wait_for("You joined lobby")
    shell = int(tmux.run("display", "-p", "#{pane_pid}").strip())
    pid = int(subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True).stdout.split()[0])
    assert tmux.run("display", "-p", "#{alternate_on} #{mouse_any_flag}").split() == ["1", "1"]
    async with Session(url, "bob") as bob:
        room = await bob.join("lobby")
        left = Recorder()
        room.on(RoomEvent.LEFT, left)
        os.kill(pid, signum)
        gone = await left.wait_for(lambda u: u.participant.name == "alice", timeout=10)
        assert gone.reason == "left"  # a goodbye, not a connection dropped
    screen = await tmux.wait_for(f"exit={128 + signum}", timeout=10)
    assert f"stopped by {signum.name}" in screen
    # The terminal is the shell's again: main screen, no mouse reporting, a visible cursor.
    assert tmux.run("display", "-p", "#{alternate_on} #{mouse_any_flag} #{cursor_flag}").split() == ["0", "0", "1"]


async def test_sixteen_colours_draw_the_command_palettes_edges_visibly(url: str, tmux: Tmux, tmp_path: object) -> None:
    """QA of `--colors 16`: the command palette's search box was edged in black (SGR 30), which does
    not show on the terminal's dark background; the edge under its list too."""
    port = url.split(":")[2].split("/")[0]
    tmux.start([sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "alice", "lobby", "--colors", "16",
                "--camera", "none", "--mic", "none", "--speaker", "none", "--log-file", f"{tmp_path}/connect.log"])
    await tmux.wait_for("You joined lobby")
    tmux.keys("C-p")
    await tmux.wait_for("🔎")
    tmux.keys("-l", "mic")
    await tmux.wait_for("Mute or unmute microphone")
    edges = {}
    for line in tmux.screen(escapes=True).splitlines():
        first = min((line.find(glyph) for glyph in "▔▁" if glyph in line), default=-1)
        if first < 0:
            continue
        foreground = None  # the colour the edge is drawn in: the SGR codes before it, in order
        for params in re.findall(r"\x1b\[([0-9;]*)m", line[:first]):
            for code in (int(p) if p else 0 for p in params.split(";")):
                if code in (0, 39):
                    foreground = None
                elif 30 <= code <= 37 or 90 <= code <= 97:
                    foreground = code
        edges[line[first]] = foreground
    assert set(edges) == {"▔", "▁"}, edges  # the search box's top edge and the list's bottom one
    for glyph, foreground in edges.items():
        assert foreground is not None and foreground != 30, (glyph, foreground)  # a colour, not black
    tmux.keys("Escape")
