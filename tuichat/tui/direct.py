"""Writing video cells straight to the terminal, alongside Textual's own screen updates.

Textual's compositor re-sends whole dirty rows with a full SGR per segment, which costs megabytes a
second for video. The video widget instead owns its image rectangle: it writes a `DeltaEncoder`'s
bytes through the app's driver and shows only blank cells there to the compositor. Three things make
that safe, all here:

- **Serialisation.** Textual writes from the UI thread only (`App._display` → `driver.write`, one
  string per update, queued to its writer thread). We write from the UI thread too, each frame as one
  string, so our bytes can never land inside one of Textual's updates.
- **Knowing when Textual painted over us.** `DisplayWatch` wraps the app's `_display` (the one place
  Textual writes screen updates) and tells listeners which screen rows each update repainted. The
  widget forgets those cells in its encoder and redraws them straight after, in the same UI-thread
  turn, so the blank cells the compositor wrote are replaced before the next update.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from textual._compositor import ChopsUpdate
from textual.geometry import Region

if TYPE_CHECKING:
    from textual.app import App
    from textual.widget import Widget

    from tuichat.render import CellImage

__all__ = [
    "DEBUG_FRAMES_ENV",
    "DIRECT_ENV",
    "FRAME_MARK",
    "MAX_QUEUED_WRITES",
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
        watch: DisplayWatch | None = getattr(app, cls._ATTRIBUTE, None)
        if watch is None:
            watch = cls(app)
            setattr(app, cls._ATTRIBUTE, watch)
        return watch

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
    """Writes text through the app's driver from the UI thread, the way Textual does."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.bytes_written = 0

    def busy(self) -> bool:
        """True when the output queue is backed up (a slow terminal link): skip a frame."""
        thread = getattr(self.app._driver, "_writer_thread", None)
        queue = getattr(thread, "_queue", None)
        try:
            return queue is not None and queue.qsize() > MAX_QUEUED_WRITES
        except Exception:
            return False

    def write(self, text: str) -> None:
        """One string per frame: synchronised output where the terminal has it, cursor put back."""
        app = self.app
        driver = app._driver
        if driver is None or not text:
            return
        x, y = app._previous_cursor_position
        restore = f"\x1b[{y + 1};{x + 1}H"
        text = f"{_SYNC_START}{text}{restore}{_SYNC_END}" if app._sync_available else f"{text}{restore}"
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
        raw = open(path, "rb").read() if os.path.exists(path) else b""  # noqa: SIM115
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
