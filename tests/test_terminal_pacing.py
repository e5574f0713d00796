"""Video paced by the terminal's own replies, so a slow link drops frames instead of falling behind.

The end-to-end test runs the real client in a pseudo-terminal whose other end is a terminal
emulator (pyte, which answers cursor position queries like any terminal) behind an emulated thin
SSH link: a buffer the size of what sshd and TCP hold, drained at a fixed rate. The frame dump
(``TUICHAT_DEBUG_FRAMES``) says when each frame was drawn, the frame marks in the byte stream say
when the terminal got it: the difference is how far behind the picture is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyte
import pytest
from textual.app import App

from tests.conftest import FakeClock
from tuichat.tui.direct import (
    ANSWER_WAIT_S,
    FRAME_MARK,
    LOST_REPLY_S,
    QUEUE_BUDGET_S,
    FrameDump,
    TerminalWriter,
)

QUERY = re.compile(r"\x1b\[1;(\d+)H\x1b\[6n")


class Recorded(App[None]):
    """A headless app whose driver's writes are kept, so the queries can be read back."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def writer(self) -> tuple[TerminalWriter, FakeClock]:
        """A writer on a fake clock whose probe has gone out (call inside ``run_test``)."""
        assert self._driver is not None
        self._driver.write = self.written.append  # type: ignore[method-assign,assignment]
        clock = FakeClock()
        writer = TerminalWriter(self, clock=clock)
        writer.probe()
        return writer, clock


async def test_frames_wait_for_the_terminal_and_go_on_when_it_answers() -> None:
    app = Recorded()
    async with app.run_test(size=(80, 24)):
        writer, clock = app.writer()
        probe = int(QUERY.findall("".join(app.written))[-1]) - 1
        # Nothing answered yet: the first frames wait for the probe (the screen's first paint).
        assert not writer.busy()
        clock.now = QUEUE_BUDGET_S + 0.01
        assert writer.busy()
        writer.acknowledge(probe, 0)
        assert writer.answers and writer.base_round_trip == pytest.approx(QUEUE_BUDGET_S + 0.01)
        assert not writer.busy()

        # Two frames go out; the terminal is slow to read them.
        writer.write("frame one", frame=True)
        clock.now += 0.05
        writer.write("frame two", frame=True)
        first, second = (int(tag) - 1 for tag in QUERY.findall("".join(app.written))[-2:])
        assert first != second and writer.in_flight == 2
        clock.now += writer.base_round_trip + QUEUE_BUDGET_S  # type: ignore[operator]
        assert writer.busy() and writer.holding()
        # A key some terminals encode like a position report (Ctrl+F3 is CSI 1;5R) is not an answer.
        writer.acknowledge(60, 0)
        writer.acknowledge(first, 5)
        assert writer.in_flight == 2
        # The reply to the second frame says the first was read too.
        writer.acknowledge(second, 0)
        assert writer.in_flight == 0 and not writer.busy()

        # A reply that never comes (swallowed by a paste) holds the video back for LOST_REPLY_S only.
        writer.write("frame three", frame=True)
        clock.now += 1.0
        assert writer.busy()
        clock.now += LOST_REPLY_S
        assert not writer.busy()
        clock.now += 10.0
        assert not writer.holding()


async def test_a_terminal_that_never_answers_is_not_paced_and_is_asked_less() -> None:
    app = Recorded()
    async with app.run_test(size=(80, 24)):
        writer, clock = app.writer()
        clock.now = ANSWER_WAIT_S + 0.1
        assert not writer.busy() and not writer.answers
        app.written.clear()
        for _ in range(15):  # a second of frames
            writer.write("frame", frame=True)
            clock.now += 1 / 15
        assert len(QUERY.findall("".join(app.written))) == 1
        assert not writer.busy()


# --- a real terminal behind a thin link --------------------------------------------------------------


class ThinTerminal:
    """The far end of a pty: a buffer of ``buffer`` bytes (sshd, TCP, the network) drained into a
    terminal emulator at ``rate`` bytes a second. The emulator answers queries when ``answers``."""

    def __init__(self, fd: int, cols: int, rows: int, rate: float, buffer: int, answers: bool) -> None:
        self.fd, self.rate, self.buffer = fd, rate, buffer
        terminal = self

        class Screen(pyte.Screen):  # type: ignore[misc]
            def write_process_input(self, data: str) -> None:
                if answers:
                    os.write(terminal.fd, data.encode())

        self.screen = Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.pipe = bytearray()
        self.tail = b""
        self.marks: list[tuple[float, int]] = []  # (when the terminal read it, frame number)
        self._mark = re.compile(re.escape(FRAME_MARK) + rb"(\d+)\x07")
        self._delivered = time.monotonic()

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([self.fd], [], [], 0.01)[0] and len(self.pipe) < self.buffer:
                try:
                    self.pipe += os.read(self.fd, self.buffer - len(self.pipe))
                except OSError:
                    return
            now = time.monotonic()
            if not self.pipe:
                self._delivered = now
                continue
            count = int((now - self._delivered) * self.rate)
            if count <= 0:
                continue
            data = bytes(self.pipe[:count])
            del self.pipe[:count]
            self._delivered += len(data) / self.rate
            self.stream.feed(data)
            seen = self.tail + data
            self.marks += [(now, int(m.group(1))) for m in self._mark.finditer(seen)]
            self.tail = seen[-24:] if self._mark.search(seen[-24:]) is None else b""


def run_client_behind_thin_link(port: int, tmp: Path, *, answers: bool, seconds: float,
                                rate: float, buffer: int) -> tuple[list[float], str]:
    """How far behind (s) each frame the terminal read after a 10 s settling time was, and the
    status line it showed at the end."""
    dump = tmp / f"frames-{answers}.bin"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor", TUICHAT_DEBUG_FRAMES=str(dump),
               TUICHAT_VIDEO_DIRECT="1")
    cols, rows = 100, 30
    pid, fd = pty.fork()
    if pid == 0:  # the client, as a person would start it
        args = [sys.executable, "-m", "tuichat", "connect", f"127.0.0.1:{port}", f"viewer{int(answers)}", "pacing",
                "--camera", "none", "--mic", "none", "--speaker", "none", "--log-file", str(tmp / "connect.log")]
        os.execve(sys.executable, args, env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        terminal = ThinTerminal(fd, cols, rows, rate, buffer, answers)
        start = time.monotonic()
        terminal.run(seconds)
        status = next((line for line in terminal.screen.display if "ESTABLISHED" in line), "")
        drawn = {record.number: record.ns / 1e9 for record in FrameDump.read(dump)}
        return [seen - drawn[n] for seen, n in terminal.marks if seen - start > 10 and n in drawn], status
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(fd)


def noisy_clip(path: Path, seconds: float = 4.0) -> Path:
    """A camera-like clip: a gradient that drifts, with sensor noise (every cell changes a little)."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=15, options={"crf": "18", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        y, x = np.mgrid[0:240, 0:320]
        for i in range(int(seconds * 15)):
            base = np.stack([(x + 4 * i) % 256, (y + 2 * i) % 256, (x + y) // 3 % 256], axis=-1)
            noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.timeout(120)
def test_over_a_thin_ssh_link_the_picture_stays_current(tmp_path: Path) -> None:
    """40 KB/s (320 kbps) behind 150 KB of buffers: unpaced, the picture is ~4 s behind for good
    (measured: 4.3 s); paced by the terminal's replies, ~0.3 s, at the same frame rate."""
    from tests.conftest import free_port

    port = free_port()
    py = sys.executable
    devnull: Any = subprocess.DEVNULL
    server = subprocess.Popen([py, "-m", "tuichat", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=devnull, stderr=devnull)
    bot = None
    try:
        time.sleep(1.0)
        clip = noisy_clip(tmp_path / "noisy.mp4")
        bot = subprocess.Popen([py, "-m", "tuichat", "bot", f"127.0.0.1:{port}", "cam", "pacing", "--camera", str(clip),
                                "--mic", "none", "--stay", "--log-file", str(tmp_path / "bot.log")],
                               stdin=devnull, stdout=devnull, stderr=devnull)
        link = {"rate": 40_000.0, "buffer": 150_000, "seconds": 25.0}
        paced, status = run_client_behind_thin_link(port, tmp_path, answers=True, **link)  # type: ignore[arg-type]
        unpaced, _ = run_client_behind_thin_link(port, tmp_path, answers=False, **link)  # type: ignore[arg-type]
    finally:
        for proc in (bot, server):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    assert paced and unpaced, "no frames reached the terminal"
    paced.sort()
    unpaced.sort()
    median, worst = paced[len(paced) // 2], paced[int(len(paced) * 0.95)]
    # The same link without replies shows what the buffers would do (and that this test can fail).
    assert unpaced[len(unpaced) // 2] > 2.0, f"the link never backed up: {unpaced[len(unpaced) // 2]:.2f} s"
    assert median < 0.6 and worst < 1.2, f"paced frames were {median:.2f} s (p95 {worst:.2f} s) behind"
    # The person is told why the picture is choppy (the short form: the status line is 100 wide).
    assert re.search(r"PLAYING · terminal \d+ fps", status), status
    # Dropping frames at the source costs no frame rate: the link carries as many either way.
    assert len(paced) >= 0.7 * len(unpaced), f"{len(paced)} frames shown paced, {len(unpaced)} unpaced"
