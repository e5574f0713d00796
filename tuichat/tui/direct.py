"""Writing video cells straight to the terminal, alongside Textual's own screen updates.

Textual's compositor re-sends whole dirty rows with a full SGR per segment, which costs megabytes a
second for video. The video widget instead owns its image rectangle: it writes a `DeltaEncoder`'s
bytes through the app's driver and shows only blank cells there to the compositor. Four things make
that safe, all here:

- **Serialisation.** Textual writes from the UI thread only (`App._display` → `driver.write`, one
  string per update, queued to its writer thread). We write from the UI thread too, each frame as one
  string, so our bytes can never land inside one of Textual's updates.
- **Knowing when Textual painted over us.** `DisplayWatch` wraps the app's `_display` (the one place
  Textual writes screen updates) and tells listeners which screen rows each update repainted. The
  widget forgets those cells in its encoder and redraws them straight after, in the same UI-thread
  turn, so the blank cells the compositor wrote are replaced before the next update.
- **Pacing by the terminal.** Each frame ends with a cursor position query; the terminal's reply
  says it has read the frame, and new frames wait while it is behind (`TerminalWriter`), so over a
  slow SSH link the picture drops frames instead of falling seconds behind in buffers.
- **Knowing when something covers us.** `covered()` is true when another screen (the help modal,
  the command palette) is on top, or a widget that is not an ancestor overlaps the rectangle (a toast,
  a tooltip): then the widget hands the region back to normal Line API repaints.

`FrameDump` is a debug aid for benchmarks (``TUICHAT_DEBUG_FRAMES``): it records the cells each
drawn frame targeted, and marks the frame in the terminal stream, so a byte stream can be checked.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
from textual._compositor import ChopsUpdate
from textual.geometry import Region

if TYPE_CHECKING:
    from textual.app import App
    from textual.widget import Widget

    from tuichat.render import CellImage

__all__ = [
    "ANSWER_WAIT_S",
    "DEBUG_FRAMES_ENV",
    "DIRECT_ENV",
    "FRAME_MARK",
    "LAST_REPLIES_WAIT_S",
    "LOST_REPLY_S",
    "MAX_FRAMES_IN_FLIGHT",
    "MAX_QUEUED_WRITES",
    "QUEUE_BUDGET_S",
    "DisplayWatch",
    "FrameDump",
    "FrameRecord",
    "Painted",
    "TerminalWriter",
    "covered",
    "direct_wanted",
]

#: "1" forces direct output on (if the driver can take it), "0" forces the Line API path.
DIRECT_ENV = "TUICHAT_VIDEO_DIRECT"
#: A file path: every drawn frame's target cells are appended there (see `FrameDump`).
DEBUG_FRAMES_ENV = "TUICHAT_DEBUG_FRAMES"
#: Skip a frame when Textual's writer thread has more than this many writes queued (a slow link):
#: the delta encoder catches up on the next frame instead of blocking the UI loop on a full queue.
MAX_QUEUED_WRITES = 4
#: Terminal pacing (`TerminalWriter`): how far the oldest unanswered frame may lag the best recent
#: round trip before new frames wait. Enough for a wobbly link, small against a frame interval's few.
QUEUE_BUDGET_S = 0.15
#: And never more than this many frames unanswered: the best round trip is learnt from replies,
#: so a link whose buffers were full from the start (the first screens over 5 KB/s) would teach a
#: bloated one; with a few frames at most in flight the buffers drain and the truth shows. (A
#: 300 ms link then carries 10 frames a second.)
MAX_FRAMES_IN_FLIGHT = 3
#: The best round trip is taken over this window (so a route that got slower is learnt).
ROUND_TRIP_WINDOW_S = 10.0
#: A query unanswered this long is given up on (a lost reply must not stop the video for good).
LOST_REPLY_S = 3.0
#: A terminal that has not answered its first query by then is taken never to answer: not paced.
ANSWER_WAIT_S = 10.0
#: How often a terminal that has not answered is asked again (it may be slow, not silent).
SILENT_QUERY_S = 1.0
#: Frames are tagged by the column of the cursor in row 1: 1 to this many (at most the width).
QUERY_TAGS = 64
#: Quitting, how long to wait for the terminal's answers to the last frames' queries (see
#: `TerminalWriter.unanswered`): a link slower than that loses a few to the shell anyway.
LAST_REPLIES_WAIT_S = 2.0
#: OSC written after each frame when dumping (terminals ignore unknown OSC numbers).
FRAME_MARK = b"\x1b]7771;f;"

#: Rows repainted by one screen update: None means all of them (a full-screen layout update).
Painted = list[tuple[int, int, int]] | None
Listener = Callable[[Painted], None]

_SYNC_START = "\x1b[?2026h"
_SYNC_END = "\x1b[?2026l"


def direct_wanted(app: App[Any], requested: bool | None) -> bool:
    """Whether a widget should write directly: asked for, or (None) when on a real terminal driver.

    The environment variable overrides the automatic choice (benchmarks compare both paths).
    """
    driver = app._driver
    possible = driver is not None and not app.is_headless and not app.is_inline and not app.is_web
    if not possible:
        return False
    env = os.environ.get(DIRECT_ENV)
    if env in ("0", "1"):
        return env == "1"
    return True if requested is None else requested


_T = TypeVar("_T")


def _one_per_app(app: App[Any], attribute: str, make: Callable[[App[Any]], _T]) -> _T:
    """The object kept on ``app`` under ``attribute``, made on first use."""
    found: _T | None = getattr(app, attribute, None)
    if found is None:
        found = make(app)
        setattr(app, attribute, found)
    return found


class DisplayWatch:
    """Tells listeners which rows each of Textual's screen updates repainted, after it is queued.

    One per app, found with `DisplayWatch.of(app)`. It wraps `App._display` on the instance (a
    private method, but the single place Textual writes screen updates in 8.x); `remove()` restores it.
    """

    _ATTRIBUTE = "_tuichat_display_watch"

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.listeners: list[Listener] = []
        self._original = app._display

        def display(screen: Any, renderable: Any) -> None:
            self._original(screen, renderable)
            if renderable is None or app._batch_count:
                return  # nothing was written
            painted: Painted = list(renderable.spans) if isinstance(renderable, ChopsUpdate) else None
            for listener in list(self.listeners):
                listener(painted)

        app._display = display  # type: ignore[method-assign]

    @classmethod
    def of(cls, app: App[Any]) -> DisplayWatch:
        return _one_per_app(app, cls._ATTRIBUTE, cls)

    def add(self, listener: Listener) -> None:
        if listener not in self.listeners:
            self.listeners.append(listener)

    def discard(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)
        if not self.listeners and getattr(self.app, self._ATTRIBUTE, None) is self:
            self.remove()

    def remove(self) -> None:
        with contextlib.suppress(AttributeError):
            del self.app._display  # the instance attribute: the class method shows again
        if getattr(self.app, self._ATTRIBUTE, None) is self:
            delattr(self.app, self._ATTRIBUTE)


def painted_rows(painted: Painted, region: Region) -> range | list[int]:
    """The rows of `region` (screen coordinates) an update repainted, relative to the region's top.

    A span (y, x1, x2) is written from the start of the widget chop containing x1, so any span that
    reaches into the region's columns counts as the whole row: coarse, and always safe.
    """
    if painted is None:
        return range(region.height)
    top, bottom, left, right = region.y, region.bottom, region.x, region.right
    return sorted({y - top for y, x1, x2 in painted if top <= y < bottom and x1 < right and x2 > left})


def covered(widget: Widget, rects: list[Region]) -> bool:
    """Whether anything is drawn over `rects` (screen cells the widget writes directly).

    True when another screen is on top (a modal, the command palette), when a rectangle is not
    wholly inside the widget's visible part (clipped, scrolled, off screen), or when any widget that
    is not the widget or one of its ancestors overlaps one (a toast, a tooltip, a menu).
    """
    app = widget.app
    try:
        screen = widget.screen
        visible = screen._compositor.visible_widgets
    except Exception:  # not mounted (any more)
        return True
    if app.screen is not screen:
        return True
    mine = visible.get(widget)
    if mine is None:
        return True
    shown = mine[0].intersection(mine[1])
    if any(shown.intersection(rect) != rect for rect in rects):
        return True
    own = set(widget.ancestors_with_self)
    for other, (other_region, clip) in visible.items():
        if other in own:
            continue
        seen = other_region.intersection(clip)
        if any(seen.overlaps(rect) for rect in rects):
            return True
    return False


class TerminalWriter:
    """Writes video frames through the app's driver from the UI thread, paced by the terminal itself.

    One per app (`TerminalWriter.of(app)`). Over SSH the bytes pass through the writer thread's
    queue, the pty, sshd, TCP buffers and the network before the terminal shows them: a link slower
    than the video fills every one of those buffers and the picture falls seconds behind, while the
    local write never blocks. So each frame ends with a cursor position query (DSR 6) whose reply
    (CPR) comes back through the input once the terminal has read the frame: the cursor is first
    put in row 1 at a column that tags the frame, so a reply says which frame it answers. A new
    frame waits while the oldest unanswered one is older than the best round trip seen lately plus
    ``QUEUE_BUDGET_S``, or ``MAX_FRAMES_IN_FLIGHT`` are unanswered: the picture drops frames
    instead of falling behind. A terminal that does not answer (a test harness reading the pty) is
    not paced: no reply, no waiting.
    """

    _ATTRIBUTE = "_tuichat_terminal_writer"

    def __init__(self, app: App[Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.bytes_written = 0
        #: The terminal has answered a query: frames are paced by its replies.
        self.answers = False
        self._clock = clock
        self._next_tag = 0
        self._in_flight: deque[tuple[int, float]] = deque()  # (tag column, sent at), oldest first
        self._first_query: float | None = None
        self._held_at: float | None = None
        #: The last hold the terminal's reply explains: it had not answered yet (see ``link_slow``).
        self._link_held_at: float | None = None
        self._round_trips: deque[tuple[float, float]] = deque()  # (answered at, round trip)
        #: The app is giving the terminal back: no more frames, no more queries (``stop``).
        self._stopping = False

    @classmethod
    def of(cls, app: App[Any]) -> TerminalWriter:
        return _one_per_app(app, cls._ATTRIBUTE, cls)

    @classmethod
    def existing(cls, app: App[Any]) -> TerminalWriter | None:
        """The app's writer, if it has one (not made here)."""
        return getattr(app, cls._ATTRIBUTE, None)

    def stop(self) -> None:
        """The app is about to give the terminal back: frames wait for good, and nothing more asks."""
        self._stopping = True

    def unanswered(self) -> int:
        """Queries the terminal has yet to answer (not those given up on, nor from a terminal that
        never answers). Its answers come as typed input: after the app gave the terminal back, to
        the shell (QA over a slow SSH link: "^[[1;11R" echoed and "1R2R" at the prompt)."""
        now = self._clock()
        while self._in_flight and now - self._in_flight[0][1] > LOST_REPLY_S:
            self._in_flight.popleft()
        return len(self._in_flight) if self.answers else 0

    @classmethod
    def answered(cls, app: App[Any], x: int, y: int, arrived: float | None = None) -> None:
        """Hand the app's cursor position reports (``events.CursorPosition``) to its writer, if any;
        ``arrived``: when the input thread read it (the event's time)."""
        writer: TerminalWriter | None = getattr(app, cls._ATTRIBUTE, None)
        if writer is not None:
            writer.acknowledge(x, y, arrived)

    @property
    def base_round_trip(self) -> float | None:
        """The best round trip of the last ``ROUND_TRIP_WINDOW_S``: the link with nothing queued."""
        return min(rt for _, rt in self._round_trips) if self._round_trips else None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def busy(self) -> bool:
        """True when a new frame should wait: the terminal is behind, or the output queue backed up."""
        if self._stopping or self._queued_writes() > MAX_QUEUED_WRITES:
            return True
        now = self._clock()
        while self._in_flight and now - self._in_flight[0][1] > LOST_REPLY_S:
            self._in_flight.popleft()  # a reply that never came (read as a paste?): stop waiting for it
        if not self._in_flight or not self._paced(now):
            return False
        base = self.base_round_trip or 0.0
        if len(self._in_flight) < MAX_FRAMES_IN_FLIGHT and now - self._in_flight[0][1] <= base + QUEUE_BUDGET_S:
            return False
        self._held_at = now
        return True

    def holding(self, within: float = 2.0) -> bool:
        """Whether frames waited for the terminal's replies in the last ``within`` seconds."""
        return self._held_at is not None and self._clock() - self._held_at < within

    def link_slow(self, within: float = 2.0) -> bool:
        """Whether frames waited in the last ``within`` seconds because the terminal had not answered.

        A busy process holds frames too: the reply has arrived but waits behind our own work (on a
        loaded machine, even over loopback). That is not a slow link, and must not be called one.
        """
        return self._link_held_at is not None and self._clock() - self._link_held_at < within

    def _paced(self, now: float) -> bool:
        """Pace by replies once the terminal has answered, and while it still may (``ANSWER_WAIT_S``)."""
        first = self._first_query
        return self.answers or (first is not None and now - first < ANSWER_WAIT_S)

    def probe(self) -> None:
        """Ask once before any video, so the first frames already wait for the screen's first paint."""
        if self._first_query is None and self.app._driver is not None and not self._stopping:
            self._send(self._query(self._restore()))

    def _queued_writes(self) -> int:
        thread = getattr(self.app._driver, "_writer_thread", None)
        queue = getattr(thread, "_queue", None)
        try:
            return int(queue.qsize()) if queue is not None else 0
        except Exception:
            return 0

    def acknowledge(self, x: int, y: int, arrived: float | None = None) -> None:
        """The terminal reported its cursor at (x, y): it has read every frame up to the one tagged x.

        ``arrived``: when the report was read from the terminal (else now). Round trips count to
        then, not to when the app got round to it, and a hold before it was the link's doing.
        """
        if y != 0 or not any(tag == x for tag, _ in self._in_flight):
            return  # not ours (a key some terminals encode like a report: Ctrl+F3 is CSI 1;5R)
        now = self._clock()
        at = min(now, arrived) if arrived is not None else now
        self.answers = True
        while self._in_flight:
            tag, sent = self._in_flight.popleft()
            if tag == x:
                break
        if self._held_at is not None and self._held_at <= at:
            self._link_held_at = self._held_at  # frames waited while the terminal had not answered
        self._round_trips.append((at, max(0.0, at - sent)))
        while self._round_trips and now - self._round_trips[0][0] > ROUND_TRIP_WINDOW_S:
            self._round_trips.popleft()

    def write(self, text: str, *, frame: bool = False) -> None:
        """One string per write: synchronised output where the terminal has it, cursor put back.

        ``frame``: a new video frame, followed by a tagged cursor position query (see the class).
        """
        if self.app._driver is None or not text:
            return
        restore = self._restore()
        text = f"{_SYNC_START}{text}{restore}{_SYNC_END}" if self.app._sync_available else f"{text}{restore}"
        if frame and not self._stopping and self._wants_query():
            text += self._query(restore)
        self._send(text)

    def _wants_query(self) -> bool:
        """Every frame, unless the terminal seems never to answer: then once in ``SILENT_QUERY_S``."""
        now = self._clock()
        if self._paced(now) or not self._in_flight:
            return True
        return now - self._in_flight[-1][1] >= SILENT_QUERY_S

    def _restore(self) -> str:
        """Puts the cursor back where Textual left it."""
        x, y = self.app._previous_cursor_position
        return f"\x1b[{y + 1};{x + 1}H"

    def _query(self, restore: str) -> str:
        """A cursor position query tagged with the next column, recorded as in flight."""
        tag = self._next_tag % max(1, min(QUERY_TAGS, self.app.size.width))
        self._next_tag = tag + 1
        now = self._clock()
        self._in_flight.append((tag, now))
        if self._first_query is None:
            self._first_query = now
        return f"\x1b[1;{tag + 1}H\x1b[6n{restore}"

    def _send(self, text: str) -> None:
        driver = self.app._driver
        if driver is None:
            return
        self.bytes_written += len(text)
        driver.write(text)
        driver.flush()


@dataclass(frozen=True)
class FrameRecord:
    """One frame record read back from a dump: the cells the widget targeted, and where."""

    number: int
    ns: int
    x0: int
    y0: int
    cols: int
    rows: int
    direct: bool
    top: npt.NDArray[np.uint8]
    bottom: npt.NDArray[np.uint8]


class FrameDump:
    """Appends each drawn frame's target cells to a file: a record header, then top and bottom RGB.

    Header (little endian, 32 bytes): b"TCFR", frame number, monotonic ns, x0, y0, cols, rows, direct
    flag, padding; then rows*cols*3 bytes of top colours and as many of bottom. With direct output
    the widget also writes `FRAME_MARK` + number + BEL to the terminal after that frame's bytes.
    """

    HEADER = struct.Struct("<4sIqhhhhh6x")

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - closed in close()

    @classmethod
    def from_env(cls) -> FrameDump | None:
        path = os.environ.get(DEBUG_FRAMES_ENV)
        return cls(path) if path else None

    def record(self, cells: CellImage, x0: int, y0: int, direct: bool) -> int:
        """Write one frame record; returns its number."""
        number = self.count
        self.count += 1
        if self._file is not None:
            header = self.HEADER.pack(b"TCFR", number, time.monotonic_ns(), x0, y0, cells.cols, cells.rows,
                                      int(direct))
            self._file.write(header + cells.top.tobytes() + cells.bottom.tobytes())
            self._file.flush()
        return number

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> list[FrameRecord]:
        """Every complete record of a dump (a record still being written is left out)."""
        header = cls.HEADER
        raw = Path(path).read_bytes() if os.path.exists(path) else b""
        records = []
        pos = 0
        while pos + header.size <= len(raw):
            magic, number, ns, x0, y0, cols, rows, direct = header.unpack_from(raw, pos)
            if magic != b"TCFR":
                raise ValueError(f"{path}: not a frame dump record at byte {pos}")
            n = rows * cols * 3
            end = pos + header.size + 2 * n
            if end > len(raw):
                break
            top = np.frombuffer(raw, np.uint8, n, pos + header.size).reshape(rows, cols, 3)
            bottom = np.frombuffer(raw, np.uint8, n, pos + header.size + n).reshape(rows, cols, 3)
            records.append(FrameRecord(number, ns, x0, y0, cols, rows, bool(direct), top, bottom))
            pos = end
        return records

    @staticmethod
    def mark(number: int) -> str:
        return FRAME_MARK.decode() + f"{number}\a"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
