"""Bytes written to the terminal by each way of drawing video, on a camera-like clip.

Run: python bench/terminal_bytes.py [CLIP] [--cols 160 --rows 45 --fps 15 --seconds 20]
(make the clip first: python bench/make_clip.py). Figures, not pass/fail.
End to end: python bench/terminal_bytes.py --e2e [--preview] [--seconds 15] (see `run_e2e`).

The clip is decoded with PyAV at the given fps, each frame rendered with `to_cells`, and in one run:
1. full redraw: `encode_ansi` every frame (what a naive widget writes);
2. simple delta: the reference "threshold-8" encoder (re-send cells that moved > 8 levels in a
   channel, cursor jumps, colour codes only on change), written plainly below;
3. `DeltaEncoder` (tuichat.render.delta);
4. timg on the same clip in a pty of the same size (half blocks), if installed;
5. the low-bandwidth preview settings (`PREVIEW`, see below) at their own size, fps and palette.

For each: bytes/s, the ratio to the full redraw, encoder ms per frame and the largest display
error: the stream is fed into pyte (an independent terminal emulator) and every cell it shows is
compared with the ideal frame (what a full redraw shows at that moment), per channel. timg scales
and quantises its own way, so its error against our ideal frames is not meaningful: bytes only.

`measure_stream()` is the reusable part: give it the byte chunks written per frame and the ideal
frames, and it says what a person would have seen.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pyte

from tuichat.render import HALF_BLOCK, PALETTE_256, CellImage, ColorMode, encode_ansi, to_cells
from tuichat.render.delta import DeltaEncoder

DEFAULT_CLIP = Path(__file__).parent / "clips" / "webcam.mp4"

#: The low-bandwidth preview (a 4:3 clip in `PREVIEW_MAX_CELLS` of tuichat.tui.widgets.video): 48×18
#: cells, a third of the frame rate, and a coarse
#: tolerance (truecolor, every cell within 24 levels per channel of the ideal frame).
PREVIEW = {"cols": 48, "rows": 18, "fps": 5.0, "threshold": 24, "mode": ColorMode.TRUECOLOR}


# ------------------------------------------------------------------------------------ decoding


def decode(clip: Path, fps: float, seconds: float) -> list[npt.NDArray[np.uint8]]:
    """RGB frames sampled at `fps` (the newest decoded frame at each tick, as a live call shows)."""
    frames: list[npt.NDArray[np.uint8]] = []
    step = 1.0 / fps
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 1000)
        latest: npt.NDArray[np.uint8] | None = None
        tick = 0.0
        for frame in container.decode(stream):
            t = float((frame.pts or 0) * tb)
            while latest is not None and t > tick + 1e-6:
                frames.append(latest)
                tick += step
                if tick >= seconds - 1e-9:
                    return frames
            latest = frame.to_ndarray(format="rgb24")
        while latest is not None and tick < seconds - 1e-9:
            frames.append(latest)
            tick += step
    return frames


# ------------------------------------------------------------------------ reading the screen


def screen_colours(
    screen: pyte.Screen, cols: int, rows: int, x0: int = 0, y0: int = 0
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """The (top, bottom) RGB a person sees in each cell of the area, as pyte holds it.

    '▀' shows fg over bg, '▄' bg over fg, '█' fg in both halves, a space bg in both halves.
    Colours are truecolor hex strings (pyte resolves 38;5;n to xterm's RGB) or, for 16-colour
    SGRs, names; "default" (never set) reads as -1000 so it can never pass a tolerance check.
    """
    top = np.full((rows, cols, 3), -1000, dtype=np.int16)
    bottom = np.full((rows, cols, 3), -1000, dtype=np.int16)
    for r in range(rows):
        line = screen.buffer[y0 + r]
        for c in range(cols):
            ch = line[x0 + c]
            fg, bg = _rgb(ch.fg, True), _rgb(ch.bg, False)
            if ch.data == HALF_BLOCK:
                top[r, c], bottom[r, c] = fg, bg
            elif ch.data == "\u2584":  # '▄'
                top[r, c], bottom[r, c] = bg, fg
            elif ch.data == "\u2588":  # '█'
                top[r, c] = bottom[r, c] = fg
            elif ch.data == " ":
                top[r, c] = bottom[r, c] = bg
    return top, bottom


# pyte 0.8.2 names 16-colour SGRs; its table spells bg 105 "bfightmagenta" (upstream typo).
_NAMES = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]
_NAME_INDEX = {n: i for i, n in enumerate(_NAMES)} | {"bright" + n: i + 8 for i, n in enumerate(_NAMES)}
_NAME_INDEX["bfightmagenta"] = 13
_CACHE: dict[str, tuple[int, int, int]] = {}


def _rgb(colour: str, fg: bool) -> tuple[int, int, int]:
    rgb = _CACHE.get(colour)
    if rgb is None:
        if colour in _NAME_INDEX:
            r, g, b = (int(v) for v in PALETTE_256[_NAME_INDEX[colour]])
            rgb = (r, g, b)
        elif len(colour) == 6:
            rgb = (int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16))
        else:
            rgb = (-1000, -1000, -1000)
        _CACHE[colour] = rgb
    return rgb


@dataclass
class StreamCheck:
    """What `measure_stream` found: the largest per-channel error and where."""

    max_error: int
    frames_checked: int
    worst_frame: int
    bad_cells: int  # cells beyond the tolerance, summed over checked frames


def measure_stream(
    chunks: Iterable[bytes],
    ideal_frames: Sequence[CellImage],
    cols: int,
    rows: int,
    *,
    x0: int = 0,
    y0: int = 0,
    every: int = 1,
    tolerance: int = 8,
    screen_size: tuple[int, int] | None = None,
) -> StreamCheck:
    """Feed per-frame byte chunks into pyte and compare the screen with each ideal frame.

    `chunks[i]` is what was written for `ideal_frames[i]`; all of it is fed (the screen state
    depends on every byte) but the screen is read only every `every`-th frame (reading costs
    ~15 ms at 160×45). Error is the largest |shown − ideal| over channels and cells.
    """
    width, height = screen_size or (x0 + cols, y0 + rows)
    screen = pyte.Screen(width, height)
    stream = pyte.ByteStream(screen)
    worst, worst_frame, checked, bad = 0, -1, 0, 0
    for i, (chunk, ideal) in enumerate(zip(chunks, ideal_frames, strict=True)):
        stream.feed(chunk)
        if i % every:
            continue
        top, bottom = screen_colours(screen, cols, rows, x0, y0)
        err = np.maximum(
            np.abs(top - ideal.top.astype(np.int16)).max(axis=2),
            np.abs(bottom - ideal.bottom.astype(np.int16)).max(axis=2),
        )
        e = int(err.max())
        bad += int((err > tolerance).sum())
        checked += 1
        if e > worst:
            worst, worst_frame = e, i
    return StreamCheck(worst, checked, worst_frame, bad)


# --------------------------------------------------------------------------------- encoders


class SimpleDelta:
    """The reference threshold encoder, written plainly: the figure `DeltaEncoder` must beat.

    A cell is re-sent with its exact colours when either half moved more than `threshold` in a
    channel; the cursor jumps (CUP) to a cell unless it is already there; fg and bg codes are
    written only when they differ from the previous cell's; each frame starts from an unknown
    SGR state and ends with a reset.
    """

    def __init__(self, cols: int, rows: int, threshold: int = 8) -> None:
        self.threshold = threshold
        self.shown_top = np.zeros((rows, cols, 3), dtype=np.int16)
        self.shown_bottom = np.zeros((rows, cols, 3), dtype=np.int16)
        self.first = True

    def encode(self, cells: CellImage) -> bytes:
        top, bottom = cells.top.astype(np.int16), cells.bottom.astype(np.int16)
        if self.first:
            need = np.ones(top.shape[:2], dtype=bool)
            self.first = False
        else:
            need = (np.abs(top - self.shown_top).max(axis=2) > self.threshold) | (
                np.abs(bottom - self.shown_bottom).max(axis=2) > self.threshold
            )
        out = []
        fg = bg = None
        cursor = None
        for r, c in zip(*np.nonzero(need), strict=True):
            if cursor != (r, c):
                out.append(f"\x1b[{r + 1};{c + 1}H")
            t, b = tuple(cells.top[r, c].tolist()), tuple(cells.bottom[r, c].tolist())
            codes = []
            if t != fg:
                codes.append("38;2;{};{};{}".format(*t))
            if b != bg:
                codes.append("48;2;{};{};{}".format(*b))
            if codes:
                out.append(f"\x1b[{';'.join(codes)}m")
            out.append(HALF_BLOCK)
            fg, bg, cursor = t, b, (r, c + 1)
        out.append("\x1b[0m")
        self.shown_top[need] = top[need]
        self.shown_bottom[need] = bottom[need]
        return "".join(out).encode()


# ----------------------------------------------------------------------------------- timg


def run_timg(clip: Path, cols: int, rows: int, seconds: float) -> tuple[int, float] | None:
    """Bytes timg writes playing the clip in a cols×rows pty (half blocks), and the play time."""
    timg = shutil.which("timg")
    if timg is None:
        return None
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its terminal
        os.environ.update({"TERM": "xterm-256color", "COLORTERM": "truecolor"})
        os.execv(timg, [timg, "-V", "-ph", f"-g{cols}x{rows}", "--loops=1", f"-t{seconds}", str(clip)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    total = 0
    start = time.perf_counter()
    while True:
        ready, _, _ = select.select([fd], [], [], seconds + 10)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        total += len(data)
    os.waitpid(pid, 0)
    return total, time.perf_counter() - start


# ------------------------------------------------------------------------------------ bench


@dataclass
class Row:
    name: str
    nbytes: int
    seconds: float
    ms_per_frame: float | None
    check: StreamCheck | None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.nbytes / self.seconds


def run_encoder(
    name: str, encode: Callable[[CellImage], bytes], ideal: Sequence[CellImage]
) -> tuple[list[bytes], float]:
    """All chunks and the median encode time in ms."""
    chunks, times = [], []
    for cells in ideal:
        start = time.perf_counter()
        chunks.append(encode(cells))
        times.append(time.perf_counter() - start)
    return chunks, 1000 * float(np.median(times))


# ------------------------------------------------------------------------------ end to end

#: The terminal that gives `tuichat connect` a 160×46-cell video widget (160×45 below the name
#: line): the side column is 32 wide and the widget has a border; the stage splits 2:1 with the log.
E2E_TERMINAL = (194, 78)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class E2E:
    name: str
    nbytes: int  # written by the TUI in the measured window, frame marks excluded
    seconds: float
    frames: int  # frames the widget drew in the window
    cpu: float  # % of one core, the TUI process
    check: StreamCheck | None
    tolerance: int
    #: The simple threshold-8 encoder's bytes on the same frames (the issue's yardstick), per second.
    simple_rate: float | None = None

    @property
    def rate(self) -> float:
        return self.nbytes / self.seconds


def simple_rate(frames: Sequence[CellImage], fps: float) -> float | None:
    """Bytes/s `SimpleDelta` writes for `frames` shown at `fps` (its first, full frame left out)."""
    if len(frames) < 2:
        return None
    encoder = SimpleDelta(frames[0].cols, frames[0].rows)
    encoder.encode(frames[0])
    total = sum(len(encoder.encode(cells)) for cells in frames[1:])
    return total / (len(frames) - 1) * fps


#: The client's tagged cursor position query (``TerminalWriter._query``): cursor to row 1, column
#: TAG, then DSR 6, to which a terminal answers ``CSI 1;TAG R``.
_CURSOR_QUERY = re.compile(rb"\x1b\[1;(\d+)H\x1b\[6n")


def run_e2e(clip: Path, *, direct: bool, preview: bool, seconds: float, warmup: float = 4.0,
            size: tuple[int, int] = E2E_TERMINAL, every: int = 3, check: bool = True,
            profile: str | None = None) -> E2E:
    """A real server, a bot publishing `clip`, and `tuichat connect` in a pty; everything it writes.

    The widget dumps the cells it targeted for every frame it drew (``TUICHAT_DEBUG_FRAMES``) and,
    with direct output, marks each frame's end in the byte stream. The display error is then
    measured exactly as for the encoders above: the stream is fed into pyte and, at every `every`-th
    frame mark, the image is compared with the cells of that frame, i.e. what a full redraw of the
    frame the client actually received would show (network frames differ from the file's).
    """
    import subprocess
    import tempfile

    from tuichat.tui.direct import FRAME_MARK

    port = _free_port()
    room = "bench"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    py = sys.executable
    server = subprocess.Popen([py, "-m", "tuichat", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bot = None
    tmp = tempfile.TemporaryDirectory(prefix="tuichat-e2e-")
    dump_path = Path(tmp.name) / "frames.bin"
    try:
        time.sleep(1.0)
        bot = subprocess.Popen([py, "-m", "tuichat", "bot", f"127.0.0.1:{port}", "clipbot", room, "--camera",
                                str(clip), "--mic", "none", "--stay"], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cols, rows = size
        pid, fd = pty.fork()
        if pid == 0:
            env.update(TERM="xterm-256color", COLORTERM="truecolor", TUICHAT_DEBUG_FRAMES=str(dump_path),
                       TUICHAT_VIDEO_DIRECT="1" if direct else "0")
            prof = ["-m", "cProfile", "-o", profile] if profile else []
            args = [py, *prof, "-m", "tuichat", "connect", f"127.0.0.1:{port}", "viewer", room, "--camera", "none",
                    "--mic", "none", "--speaker", "none", "--colors", "truecolor",
                    "--log-file", str(Path(tmp.name) / "connect.log")]
            os.execve(py, args + (["--preview"] if preview else []), env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        data = bytearray()
        answered = 0  # where the last answered query ended
        start = time.monotonic()
        window: tuple[int, float, float, float] | None = None  # offset, time, cpu, frames at start
        first_frame = None
        end = None
        while True:
            now = time.monotonic()
            if first_frame is None and dump_path.exists() and dump_path.stat().st_size:
                first_frame = now
            if first_frame is None and now - start > 40:
                raise RuntimeError("no video frame reached the TUI within 40 s")
            if first_frame is not None and window is None and now - first_frame >= warmup:
                window = (len(data), now, _cpu_seconds(pid), 0.0)
            if window is not None and now - window[1] >= seconds:
                end = (len(data), now, _cpu_seconds(pid))
                break
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 1 << 20)
                except OSError:
                    break
                data += chunk
                # Answer the client's cursor position queries as any terminal does: unanswered, the
                # client paces its first 10 s for a terminal that may yet answer (tuichat.tui.direct),
                # and that start counted in the window (12 fps measured, 15 with answers).
                for query in _CURSOR_QUERY.finditer(data, answered):
                    os.write(fd, f"\x1b[1;{int(query.group(1))}R".encode())
                    answered = query.end()
                answered = max(answered, len(data) - 16)  # a query cut by the read is found next time
        os.write(fd, b"\x11")  # Ctrl+Q: a clean exit (a profile is written then)
        deadline = time.monotonic() + 8
        exited = False
        while not exited and time.monotonic() < deadline:
            exited = os.waitpid(pid, os.WNOHANG)[0] != 0
            try:
                if select.select([fd], [], [], 0.1)[0]:
                    os.read(fd, 1 << 20)
            except OSError:
                pass
        if not exited:
            os.kill(pid, 15)
        try:
            while select.select([fd], [], [], 0.5)[0] and os.read(fd, 1 << 20):
                pass
        except OSError:
            pass
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(fd)
    finally:
        for proc in (bot, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert window is not None and end is not None
    raw = bytes(data)
    mark = re.compile(re.escape(FRAME_MARK) + rb"(\d+)\x07")
    a, b = window[0], end[0]
    mark_bytes = sum(len(m.group(0)) for m in mark.finditer(raw, a, b))
    elapsed = end[1] - window[1]
    cpu = 100 * (end[2] - window[2]) / elapsed
    # Frame records: those drawn in the window (by time), and their cells for the check.
    records = _read_dump(dump_path)
    marks = list(mark.finditer(raw))
    if direct:
        in_window = [m for m in marks if a <= m.start() < b]
        frames = len(in_window)
    else:
        # Line API: count the frames the widget drew during the window, by their timestamps.
        t0 = records[0][1] if records else 0
        span_ns = (window[1] - first_frame) * 1e9 if first_frame else 0  # type: ignore[operator]
        frames = sum(1 for r in records if span_ns <= r[1] - t0 < span_ns + elapsed * 1e9)
    stream_check = None
    tolerance = 24 if preview else 8
    simple = None
    if direct and not preview:
        # The same frames through the simple encoder: a yardstick that does not depend on the clip.
        drawn = {int(m.group(1)) for m in marks if a <= m.start() < b}
        shown = [r[6] for r in records if r[0] in drawn and (r[4], r[5]) == (records[-1][4], records[-1][5])]
        simple = simple_rate(shown, frames / elapsed)
    if direct and check and marks:
        by_number = {r[0]: r for r in records}
        stream_check = _check_marked_stream(raw, marks, by_number, size, every, tolerance)
    if os.environ.get("BENCH_KEEP"):
        Path(os.environ["BENCH_KEEP"]).write_bytes(raw)
        shutil.copy(dump_path, os.environ["BENCH_KEEP"] + ".frames")
    tmp.cleanup()
    label = ("preview " if preview else "") + ("direct (DeltaEncoder)" if direct else "Line API (direct off)")
    return E2E(label, b - a - mark_bytes, elapsed, frames, cpu, stream_check, tolerance, simple)


def _read_dump(path: Path) -> list[tuple[int, int, int, int, int, int, CellImage]]:
    """(number, ns, x0, y0, cols, rows, cells) per frame record of a widget's frame dump."""
    from tuichat.tui.direct import FrameDump

    out = []
    for r in FrameDump.read(path):
        index = np.full((r.rows, r.cols), -1, dtype=np.int16)
        cells = CellImage(r.top.copy(), r.bottom.copy(), index, index.copy(), ColorMode.TRUECOLOR)
        out.append((r.number, r.ns, r.x0, r.y0, r.cols, r.rows, cells))
    return out


def _check_marked_stream(raw: bytes, marks: list, records: dict, size: tuple[int, int], every: int,
                         tolerance: int) -> StreamCheck:
    """Feed the stream into pyte mark by mark; at every `every`-th, compare the image with its frame."""
    screen = pyte.Screen(*size)
    stream = pyte.ByteStream(screen)
    worst, worst_frame, checked, bad = 0, -1, 0, 0
    pos = 0
    for i, m in enumerate(marks):
        stream.feed(raw[pos : m.start()])
        pos = m.end()
        number = int(m.group(1))
        if i % every or number not in records:
            continue
        _, _, x0, y0, cols, rows, ideal = records[number]
        top, bottom = screen_colours(screen, cols, rows, x0, y0)
        err = np.maximum(np.abs(top - ideal.top.astype(np.int16)).max(axis=2),
                         np.abs(bottom - ideal.bottom.astype(np.int16)).max(axis=2))
        e = int(err.max())
        bad += int((err > tolerance).sum())
        checked += 1
        if e > worst:
            worst, worst_frame = e, number
    return StreamCheck(worst, checked, worst_frame, bad)


def main_e2e(args: argparse.Namespace) -> None:
    cols, rows = E2E_TERMINAL
    print(f"end to end: {args.clip.name} published by a bot, `tuichat connect` in a {cols}x{rows} pty "
          f"(video widget 160x46 cells; the picture keeps the clip's aspect), {args.seconds:g} s measured per run")
    results: list[E2E] = []
    modes = [(True, False), (False, False)] if not args.preview else [(True, True), (False, True)]
    if args.preview:
        modes = [(True, True)] + ([(True, False)] if args.with_normal else [])
    for direct, preview in modes:
        results.append(run_e2e(args.clip, direct=direct, preview=preview, seconds=args.seconds, every=args.every,
                               profile=args.profile if direct else None))
        r = results[-1]
        print(f"  {r.name}: done ({r.frames} frames)", flush=True)
    timg = None if args.no_timg or args.preview else run_timg(args.clip, 160, 45, args.seconds)
    base = next((r for r in results if "Line API" in r.name), None)
    print()
    print(f"{'run':36} {'KB/s':>8} {'fps':>6} {'CPU %':>6} {'max err':>8} {'bad':>6} {'vs Line API':>11}")
    for r in results:
        err = "n/a" if r.check is None else str(r.check.max_error)
        bad = "" if r.check is None else str(r.check.bad_cells)
        ratio = f"{r.rate / base.rate:.3f}" if base else ""
        print(f"{r.name:36} {r.rate / 1000:8.1f} {r.frames / r.seconds:6.1f} {r.cpu:6.1f} {err:>8} {bad:>6} "
              f"{ratio:>11}")
    for r in results:
        if r.simple_rate:
            print(f"{'  simple threshold-8, same frames':36} {r.simple_rate / 1000:8.1f}   {r.name} / simple: "
                  f"{r.rate / r.simple_rate:.3f} (the issue's figures: 250 / 445 = 0.562)")
    if timg is not None:
        rate = timg[0] / args.seconds
        ratio = f"{rate / base.rate:.3f}" if base else ""
        print(f"{'timg -V -ph 160x45 (bytes only)':36} {rate / 1000:8.1f} {'':>6} {'':>6} {'n/a':>8} {'':>6} "
              f"{ratio:>11}  played in {timg[1]:.1f} s")
        direct_run = results[0]
        print(f"direct / timg: {direct_run.rate / rate:.3f}")
    print("\nKB/s: bytes the TUI wrote (frame marks excluded) over the measured window; fps: frames the "
          "widget drew; CPU: the TUI process (decode + render + writes), % of one core; max err: "
          f"largest |shown - frame| per channel in pyte at every {args.every}th frame mark "
          "(tolerance 8, preview 24); the frame dump costs a file write per frame.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=45)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=int, default=5, help="read pyte's screen every Nth frame")
    parser.add_argument("--no-timg", action="store_true")
    parser.add_argument("--e2e", action="store_true", help="server + clip bot + the real TUI in a pty")
    parser.add_argument("--preview", action="store_true", help="with --e2e: the low-bandwidth preview")
    parser.add_argument("--with-normal", action="store_true", help="with --e2e --preview: also a normal run")
    parser.add_argument("--profile", default=None, help="with --e2e: cProfile the TUI's direct run to this file")
    args = parser.parse_args(argv)
    if not args.clip.exists():
        sys.exit(f"{args.clip} not found: run python bench/make_clip.py first")
    if args.e2e:
        if "--seconds" not in (argv if argv is not None else sys.argv):
            args.seconds = 15.0
        if "--every" not in (argv if argv is not None else sys.argv):
            args.every = 3
        main_e2e(args)
        return
    cols, rows, fps = args.cols, args.rows, args.fps

    frames = decode(args.clip, fps, args.seconds)
    seconds = len(frames) / fps
    ideal = [to_cells(f, cols, rows, ColorMode.TRUECOLOR) for f in frames]
    print(f"{args.clip.name}: {len(frames)} frames at {fps:g} fps ({seconds:.1f} s), {cols}x{rows} cells")
    results: list[Row] = []

    # 1. Full redraw. Each frame stands alone, so pyte only needs the frames it checks.
    chunks, ms = run_encoder("full", encode_ansi, ideal)
    every = args.every
    check = measure_stream(chunks[::every], ideal[::every], cols, rows)
    check.frames_checked = len(chunks[::every])
    results.append(Row("full redraw (encode_ansi)", sum(map(len, chunks)), seconds, ms, check))
    full_rate = results[0].rate

    # 2. The simple threshold-8 reference.
    simple = SimpleDelta(cols, rows)
    chunks, ms = run_encoder("simple", simple.encode, ideal)
    check = measure_stream(chunks, ideal, cols, rows, every=every)
    results.append(Row("simple threshold-8 delta", sum(map(len, chunks)), seconds, ms, check))

    # 3. DeltaEncoder.
    enc = DeltaEncoder(cols, rows)
    chunks, ms = run_encoder("delta", enc.encode, ideal)
    check = measure_stream(chunks, ideal, cols, rows, every=every)
    results.append(Row("DeltaEncoder (threshold 8)", sum(map(len, chunks)), seconds, ms, check))
    delta_chunks = chunks

    # 4. timg.
    timg = None if args.no_timg else run_timg(args.clip, cols, rows, args.seconds)
    if timg is not None:
        results.append(Row("timg -V -ph (pty)", timg[0], seconds, None, None, f"played in {timg[1]:.1f} s"))

    # 5. Preview.
    p = PREVIEW
    pframes = decode(args.clip, float(p["fps"]), args.seconds)  # type: ignore[arg-type]
    pideal = [to_cells(f, p["cols"], p["rows"], p["mode"]) for f in pframes]  # type: ignore[arg-type]
    penc = DeltaEncoder(p["cols"], p["rows"], threshold=p["threshold"], mode=p["mode"])  # type: ignore[arg-type]
    chunks, ms = run_encoder("preview", penc.encode, pideal)
    check = measure_stream(chunks, pideal, p["cols"], p["rows"], tolerance=p["threshold"])  # type: ignore[arg-type]
    name = f"preview {p['cols']}x{p['rows']} @{p['fps']:g} fps, ±{p['threshold']}"
    results.append(Row(name, sum(map(len, chunks)), len(pframes) / float(p["fps"]), ms, check))  # type: ignore[arg-type]

    print()
    print(f"{'encoder':34} {'KB/s':>8} {'vs full':>8} {'max err':>8} {'bad cells':>9} {'ms/frame':>9}")
    for row in results:
        err = "n/a" if row.check is None else str(row.check.max_error)
        bad = "" if row.check is None else str(row.check.bad_cells)
        ms_text = "" if row.ms_per_frame is None else f"{row.ms_per_frame:.2f}"
        print(
            f"{row.name:34} {row.rate / 1000:8.1f} {row.rate / full_rate:8.3f} {err:>8} {bad:>9} {ms_text:>9}"
            + (f"  {row.note}" if row.note else "")
        )
    print(
        f"\nmax err: largest |shown - ideal| per channel over all cells, read from pyte every {every}th frame "
        "(the full redraw: those frames alone). 'bad cells': cells beyond the tolerance (8; preview: its own)."
    )
    simple_row, delta_row = results[1], results[2]
    print(f"DeltaEncoder / simple threshold-8 on the same frames: {delta_row.rate / simple_row.rate:.3f} "
          "(the issue's figures: 250 / 445 = 0.562)")
    last = delta_chunks[len(delta_chunks) // 2]
    print(f"DeltaEncoder mid-clip frame: {len(last)} bytes; last frame stats: {enc.stats}")


if __name__ == "__main__":
    main()
