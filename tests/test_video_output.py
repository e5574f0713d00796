"""Direct video output in a real pseudo-terminal, read back with pyte (an independent emulator).

A small app (run as ``python -m tests.test_video_output [--direct 0|1]``) shows a `VideoGrid` fed by a
moving test pattern, with the real help screen on F1 and a toast on "n". The widget's frame dump
(``TUICHAT_DEBUG_FRAMES``) records each drawn frame's target cells and, with direct output, marks
the frame in the byte stream; the test feeds the stream up to a mark into pyte and checks that every
cell of the image is within 8 levels of that frame, that overlays stay intact, and that the direct
path writes nothing outside the image.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyte
import pytest

from tuichat.media import BAR_BAND, BARS
from tuichat.tui.direct import FRAME_MARK, FrameDump

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from terminal_bytes import screen_colours  # the bench reads all four glyphs

ROOT = Path(__file__).resolve().parent.parent
KEY_F1 = b"\x1bOP"
KEY_ESC = b"\x1b"


# ----------------------------------------------------------------------------------- the app


def run_app(direct: bool | None) -> None:
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import Footer, Static

    from tuichat.media import render_test_pattern
    from tuichat.tui.app import ChatApp
    from tuichat.tui.screens.help import HelpScreen
    from tuichat.tui.widgets import VideoGrid

    class PatternSource:
        """A FrameSource: the test pattern, moving, at a fixed wall clock so frames are reproducible."""

        def __init__(self) -> None:
            self.start = time.monotonic()
            self.seq = 0

        def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]]:
            self.seq += 1
            t = time.monotonic() - self.start
            return self.seq, render_test_pattern(320, 240, self.seq, t, label="test", wall_time=0.0)

    class VideoApp(App[None]):
        CSS = "#side { width: 20; height: 1fr; } Horizontal { height: 1fr; } VideoGrid { height: 1fr; width: 1fr; }"
        BINDINGS = [Binding("f1", "help", "Help"), Binding("n", "toast", "Toast"), Binding("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            from textual.containers import Horizontal

            with Horizontal():
                yield VideoGrid(id="video", direct=direct)
                yield Static("side panel\ntext stays", id="side")
            yield Footer()

        def on_mount(self) -> None:
            self.query_one(VideoGrid).set_tile("p", "pattern", PatternSource())

        def action_help(self) -> None:
            if not isinstance(self.screen, HelpScreen):
                self.push_screen(HelpScreen(ChatApp.KEY_HELP))

        def action_toast(self) -> None:
            self.notify("a toast over everything", timeout=4)

    VideoApp(ansi_color=False).run()


# ------------------------------------------------------------------------------ the harness


class Pty:
    """The app in a pseudo-terminal; everything it writes is kept."""

    def __init__(self, direct: bool, dump: Path, cols: int = 100, rows: int = 30) -> None:
        self.cols, self.rows = cols, rows
        self.first_size = (cols, rows)
        self.data = bytearray()
        self.resizes: list[tuple[int, int, int]] = []  # (offset in data, cols, rows)
        self.lock = threading.Lock()
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(TERM="xterm-256color", COLORTERM="truecolor", PYTHONPATH=str(ROOT),
                   TUICHAT_DEBUG_FRAMES=str(dump), TUICHAT_VIDEO_DIRECT="1" if direct else "0")
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "tests.test_video_output"], env)
        self.pid, self.fd = pid, fd
        self._size(cols, rows)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _size(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def resize(self, cols: int, rows: int) -> None:
        with self.lock:
            self.resizes.append((len(self.data), cols, rows))
            self._size(cols, rows)
        self.cols, self.rows = cols, rows

    def screen(self, upto: int | None = None) -> pyte.Screen:
        """A fresh pyte screen fed with everything (or the first `upto` bytes), resizes applied."""
        with self.lock:
            data = bytes(self.data if upto is None else self.data[:upto])
            resizes = list(self.resizes)
        screen = pyte.Screen(*self.first_size)
        stream = pyte.ByteStream(screen)
        start = 0
        for offset, cols, rows in resizes:
            if offset > len(data):
                break
            stream.feed(_strip_marks(data[start:offset]))
            screen.resize(rows, cols)
            start = offset
        stream.feed(_strip_marks(data[start:]))
        return screen

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)

    def text(self, screen: pyte.Screen | None = None) -> str:
        return "\n".join((screen or self.screen()).display)

    async def wait_for(self, text: str, timeout: float = 10.0) -> None:
        import asyncio

        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.text()}"
            await asyncio.sleep(0.1)


def _strip_marks(data: bytes) -> bytes:
    return re.sub(re.escape(FRAME_MARK) + rb"\d+\x07", b"", data)


def read_dump(path: Path) -> list[tuple[int, int, int, int, int, bool, npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]:
    """(number, x0, y0, cols, rows, direct, top, bottom) per recorded frame."""
    return [(r.number, r.x0, r.y0, r.cols, r.rows, r.direct, r.top, r.bottom) for r in FrameDump.read(path)]


def check_last_frame(term: Pty, dump: Path) -> tuple[int, int, int, int, int]:
    """Feed the stream up to the last frame mark; every image cell within 8 of that frame's cells."""
    with term.lock:
        data = bytes(term.data)
    marks = list(re.finditer(re.escape(FRAME_MARK) + rb"(\d+)\x07", data))
    assert marks, "no direct frame was written"
    last = marks[-1]
    number = int(last.group(1))
    frames = {f[0]: f for f in read_dump(dump)}
    _, x0, y0, cols, rows, direct, top, bottom = frames[number]
    assert direct
    screen = term.screen(upto=last.end())
    got_top, got_bottom = screen_colours(screen, cols, rows, x0, y0)
    error = max(int(np.abs(got_top - top).max()), int(np.abs(got_bottom - bottom).max()))
    assert error <= 8, f"frame {number}: a cell is {error} levels off"
    return number, x0, y0, cols, rows


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[list[Pty]]:
    made: list[Pty] = []
    yield made
    for term in made:
        term.close()


def start(terminals: list[Pty], tmp_path: Path, direct: bool, cols: int = 100, rows: int = 30) -> tuple[Pty, Path]:
    dump = tmp_path / f"frames-{len(terminals)}.bin"
    term = Pty(direct, dump, cols, rows)
    terminals.append(term)
    return term, dump


async def wait_frames(dump: Path, count: int, timeout: float = 15.0, direct: bool | None = None) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        frames = read_dump(dump)
        if direct is not None:
            frames = [f for f in frames if f[5] == direct]
        if len(frames) >= count:
            return
        assert time.monotonic() < deadline, f"only {len(frames)} frames drawn"
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------- tests


async def test_direct_output_draws_the_pattern_in_place_and_nothing_else(terminals: list[Pty], tmp_path: Path) -> None:
    direct, dump = start(terminals, tmp_path, direct=True)
    plain, plain_dump = start(terminals, tmp_path, direct=False)
    await wait_frames(dump, 20, direct=True)
    await wait_frames(plain_dump, 20)
    _, x0, y0, cols, rows = check_last_frame(direct, dump)
    screen = direct.screen()
    # The colour bars, against the pattern's own definition (not the widget's dump).
    top, bottom = screen_colours(screen, cols, rows, x0, y0)
    y = int((BAR_BAND[0] + BAR_BAND[1]) / 2 * rows)
    for name, rgb, (a, b) in BARS:
        x = int((a + b) / 2 * cols)
        for drawn in (top[y, x], bottom[y, x]):
            assert np.abs(drawn - np.array(rgb)).max() < 60, f"{name} bar shows {drawn}"
    # Outside the image the screen is exactly what the Line API alone draws.
    other = plain.screen()
    inside = {(r, c) for r in range(y0, y0 + rows) for c in range(x0, x0 + cols)}
    differ = [
        (r, c)
        for r in range(direct.rows)
        for c in range(direct.cols)
        if (r, c) not in inside
        and (screen.buffer[r][c].data, screen.buffer[r][c].fg, screen.buffer[r][c].bg)
        != (other.buffer[r][c].data, other.buffer[r][c].fg, other.buffer[r][c].bg)
    ]
    assert not differ, f"{len(differ)} cells outside the image differ, e.g. {differ[:5]}"
    assert "side panel" in direct.text(screen) and "pattern" in direct.text(screen)
    # And the direct path wrote far fewer bytes for the same frames.
    assert len(direct.data) < len(plain.data)


async def test_help_modal_and_toast_are_not_overwritten_and_video_comes_back(
    terminals: list[Pty], tmp_path: Path
) -> None:
    import asyncio

    from tuichat.tui.app import ChatApp

    term, dump = start(terminals, tmp_path, direct=True)
    await wait_frames(dump, 10, direct=True)
    term.send(KEY_F1)
    await term.wait_for("tuichat keys")
    # The video keeps playing underneath, drawn through Textual (not directly) while covered.
    await wait_frames(dump, len([f for f in read_dump(dump) if not f[5]]) + 10, direct=False)
    text = term.text()
    for key, description in ChatApp.KEY_HELP:
        assert description[:40] in text, f"help line {key!r} damaged:\n{text}"
    assert not read_dump(dump)[-1][5], "still drawing directly under the help screen"
    before = len([f for f in read_dump(dump) if f[5]])
    term.send(KEY_ESC)
    await wait_frames(dump, before + 10, direct=True)
    assert "tuichat keys" not in term.text()
    check_last_frame(term, dump)
    # A toast over the video: the widget hands the image back to Textual while it shows, then
    # takes it over again.
    before = len(read_dump(dump))
    term.send(b"n")
    await term.wait_for("a toast over everything")
    deadline = time.monotonic() + 5
    while not any(not f[5] for f in read_dump(dump)[before:]):
        assert time.monotonic() < deadline, "still drawing directly under the toast"
        await asyncio.sleep(0.1)
    assert "a toast over everything" in term.text()
    deadline = time.monotonic() + 15
    while "a toast over everything" in term.text():
        assert time.monotonic() < deadline, "the toast never went"
        await asyncio.sleep(0.2)
    before = len([f for f in read_dump(dump) if f[5]])
    await wait_frames(dump, before + 5, direct=True)
    check_last_frame(term, dump)


async def test_resize_refits_the_image(terminals: list[Pty], tmp_path: Path) -> None:
    term, dump = start(terminals, tmp_path, direct=True, cols=100, rows=30)
    await wait_frames(dump, 10, direct=True)
    _, _, _, cols, rows = check_last_frame(term, dump)
    term.resize(80, 24)
    deadline = time.monotonic() + 10
    while True:
        frames = [f for f in read_dump(dump) if f[5]]
        if frames[-1][3] < cols and len([f for f in frames if f[3] < cols]) > 5:
            break
        assert time.monotonic() < deadline, "the image never re-fitted"
        import asyncio

        await asyncio.sleep(0.1)
    _, _, _, new_cols, new_rows = check_last_frame(term, dump)
    assert new_cols < cols and new_rows < rows
    assert "side panel" in term.text()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--direct", choices=["0", "1", "auto"], default="auto")
    args = parser.parse_args()
    run_app(None if args.direct == "auto" else args.direct == "1")
