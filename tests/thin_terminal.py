"""A terminal behind a thin SSH link, for the pacing test and ``bench/terminal_link.py``.

The real client runs in a pseudo-terminal whose other end is a terminal emulator (pyte, which
answers cursor position queries like any terminal, or not, to show what happens without replies)
behind an emulated link: a buffer the size of what sshd and TCP hold, drained at a fixed rate. The
frame dump (``TUICHAT_DEBUG_FRAMES``) says when each frame was drawn, the frame marks in the byte
stream say when the terminal got it: the difference is how far behind the picture is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyte

from tuichat.tui.direct import FRAME_MARK, FrameDump

#: Frames read in the first seconds (the first screens, the call starting) are left out.
SETTLE_S = 10.0


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
        return [seen - drawn[n] for seen, n in terminal.marks if seen - start > SETTLE_S and n in drawn], status
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


@dataclass
class LinkRun:
    """What the terminal saw over one run: each frame's lag (s, after the settling time), sorted,
    and the status line at the end."""

    lags: list[float]
    status: str

    def quantile(self, q: float) -> float:
        return self.lags[min(len(self.lags) - 1, int(len(self.lags) * q))] if self.lags else float("nan")

    def fps(self, seconds: float) -> float:
        return len(self.lags) / max(seconds - SETTLE_S, 1e-9)


def compare_over_thin_link(tmp: Path, *, rate: float, buffer: int, seconds: float) -> tuple[LinkRun, LinkRun]:
    """A server, a bot publishing a noisy clip, and the client behind the link twice: with a
    terminal that answers (paced) and one that does not (the baseline, in the same run)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    py = sys.executable
    devnull: Any = subprocess.DEVNULL
    server = subprocess.Popen([py, "-m", "tuichat", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=devnull, stderr=devnull)
    bot = None
    try:
        time.sleep(1.0)
        clip = noisy_clip(tmp / "noisy.mp4")
        bot = subprocess.Popen([py, "-m", "tuichat", "bot", f"127.0.0.1:{port}", "cam", "pacing", "--camera", str(clip),
                                "--mic", "none", "--stay", "--log-file", str(tmp / "bot.log")],
                               stdin=devnull, stdout=devnull, stderr=devnull)
        runs = []
        for answers in (True, False):
            lags, status = run_client_behind_thin_link(port, tmp, answers=answers, seconds=seconds, rate=rate,
                                                       buffer=buffer)
            runs.append(LinkRun(sorted(lags), status))
        return runs[0], runs[1]
    finally:
        for proc in (bot, server):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
