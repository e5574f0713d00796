"""Remote faces as half-block cells, drawn with the Line API.

One tile per visible participant: a label line, then the frame fitted into the rest with its aspect
ratio kept (letterboxed, never stretched). With one tile it fills the area; with more, a grid; a
focused participant fills it alone. Frames are pulled from each tile's source on a timer at the
display rate, so a fast sender can never queue work here: only the newest frame is ever drawn, and
only the rows whose cells changed are refreshed.

Direct output (`direct=True`, the default on a real terminal): Textual's compositor re-sends whole
rows with a full SGR per segment, megabytes a second for video. So the widget owns its images'
rectangles instead: per tile a `DeltaEncoder` keeps the terminal within its threshold of each frame
(8 levels; 24 in the low-bandwidth preview) and its bytes go straight through the app's driver from
the UI thread (see `tuichat.tui.direct` for why that is safe); the Line API then serves cheap blank
cells there. Whenever something covers the widget (another screen, a toast) it hands back to normal
Line API repaints until uncovered, and whenever Textual repaints rows of the rectangle it redraws
them at once. Headless (tests, screenshots) it stays on the Line API path.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tuichat.protocol.limits import PREVIEW_MAX_FPS
from tuichat.render import HALF_BLOCK, CellImage, ColorMode, Placement, fit, row_runs, to_cells
from tuichat.render.delta import DeltaEncoder
from tuichat.tui.direct import DisplayWatch, FrameDump, Painted, TerminalWriter, covered, direct_wanted, painted_rows
from tuichat.tui.safe_text import printable

#: Styles built for (fg, bg) pairs; bounded, least recently used dropped.
STYLE_CACHE_SIZE = 8192
DEFAULT_ASPECT = (4, 3)
#: A tile's label says so when its person's microphone is off (as the people list does).
MUTED_MARK = "mic off"
#: Blank columns between tiles side by side.
TILE_GAP = 1
#: Direct output's tolerance per channel (levels): normal, and the low-bandwidth preview's.
THRESHOLD = 8
PREVIEW_THRESHOLD = 24
#: The low-bandwidth preview draws the picture no larger than this (cells), and never larger than
#: the frame's own pixels (a cell is 1×2 pixels: upscaling only adds cells to re-send), centred in
#: the tile; the bridge subscribes at this pixel size (64×36: 48×36 for 4:3, 64×36 for 16:9), so
#: a frame is drawn 1:1. With `PREVIEW_THRESHOLD` and `PREVIEW_FPS` that keeps the client's terminal
#: output under 20 KB/s (60×22 cells took about 24 KB/s for the picture alone).
PREVIEW_MAX_CELLS = (64, 18)
#: The preview's frame rate (the server sends at most this): the widget draws no faster.
PREVIEW_FPS = float(PREVIEW_MAX_FPS)
#: Sources are polled this many times per frame interval: polling at exactly the frame rate beats
#: against a jittery arrival rate and drops about every other frame. A draw still waits for
#: `MIN_INTERVAL` of a frame interval since the last, so a faster source cannot raise the draw rate.
POLL_PER_FRAME = 3
MIN_INTERVAL = 0.7
#: The drawn frame rate shown for a slow terminal is counted over this window.
DRAWN_WINDOW_S = 2.0
DRAWN_WINDOW_FRAMES = 64


class FrameSource(Protocol):
    """Where a tile gets pixels: the newest frame and a counter that changes with each new one."""

    def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]] | None: ...


@dataclass(eq=False)
class Tile:
    key: str
    name: str
    source: FrameSource | None = None
    status: str = ""
    #: Their microphone is off: the label says so (in video only, nothing else on screen does).
    muted: bool = False
    seq: int = -1
    frame_size: tuple[int, int] | None = None
    cells: CellImage | None = None
    image_lines: list[list[Segment]] = field(default_factory=list)
    # Set by layout: the tile's rectangle in the widget, and where the image sits inside it.
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    placement: Placement | None = None
    drawn_at: float = -1e9  # monotonic time of the last draw
    drawn_times: deque[float] = field(default_factory=lambda: deque(maxlen=DRAWN_WINDOW_FRAMES))
    # Direct output: what the terminal shows in the image rectangle (None: not drawing directly).
    encoder: DeltaEncoder | None = None


class StyleCache:
    """Rich Styles per colour pair: building one costs microseconds, video needs thousands a frame."""

    def __init__(self, size: int = STYLE_CACHE_SIZE) -> None:
        self.size = size
        self._styles: OrderedDict[tuple[object, object], Style] = OrderedDict()

    def get(self, fg: tuple[int, int, int] | int, bg: tuple[int, int, int] | int) -> Style:
        key = (fg, bg)
        style = self._styles.get(key)
        if style is None:
            style = Style(color=_color(fg), bgcolor=_color(bg))
            self._styles[key] = style
            if len(self._styles) > self.size:
                self._styles.popitem(last=False)
        else:
            self._styles.move_to_end(key)
        return style


def _same_frame(a: tuple[int, npt.NDArray[np.uint8]] | None, b: tuple[int, npt.NDArray[np.uint8]] | None) -> bool:
    """Two sources' newest frames are one and the same (e.g. two wrappers of one stream)."""
    return a is not None and b is not None and a[0] == b[0] and a[1] is b[1]


def _near(new: Placement | None, old: Placement | None) -> bool:
    """The picture would move by at most a cell each way: the preview keeps it where it is.

    A small change of the frame's size (a re-subscribed box rounded to even pixels, 120×90 then
    60×44) would otherwise flip the picture between sizes such as 59 and 60 columns, and every
    change of the picture's rectangle is a full redraw: the frame is scaled into the kept cells.
    """
    return (new is not None and old is not None and abs(new.cols - old.cols) <= 1
            and abs(new.rows - old.rows) <= 1 and abs(new.x - old.x) <= 1 and abs(new.y - old.y) <= 1)


def _color(value: tuple[int, int, int] | int) -> Color:
    if isinstance(value, int):
        return Color.from_ansi(value)
    return Color.from_rgb(*value)


def grid_shape(count: int, width: int, height: int, aspect: tuple[int, int] = DEFAULT_ASPECT) -> tuple[int, int]:
    """Columns and rows of tiles that give each face the most cells (cells are 1×2 pixels)."""
    best, best_area = (1, max(count, 1)), -1
    for columns in range(1, max(count, 1) + 1):
        rows = math.ceil(count / columns)
        tile_w, tile_h = tile_width(width, columns), height // rows - 1
        if tile_w < 1 or tile_h < 1:
            continue
        placement = fit(aspect[0], aspect[1], tile_w, tile_h)
        area = placement.cols * placement.rows
        if area > best_area:
            best, best_area = (columns, rows), area
    return best


def tile_width(width: int, columns: int) -> int:
    """Side by side, tiles keep a blank column between them: pictures ran into one strip of colour
    and labels into one line."""
    return (width - TILE_GAP * (columns - 1)) // columns


class VideoGrid(Widget, can_focus=False):
    DEFAULT_CSS = """
    VideoGrid {
        height: 2fr;
        min-height: 6;
        border: round $primary-background-lighten-2;
        border-title-color: $text-muted;
        background: black;
    }
    """

    class ViewChanged(Message):
        """The pixel box each tile can show changed (resize, grid or focus change)."""

        def __init__(self, width: int, height: int, focused: str | None) -> None:
            super().__init__()
            self.width = width
            self.height = height
            self.focused = focused

    def __init__(self, *, color_mode: ColorMode = ColorMode.TRUECOLOR, fps: float = 15.0,
                 empty_text: str = "nobody is sharing video yet", direct: bool | None = None,
                 threshold: int = THRESHOLD, **kwargs: object) -> None:
        """``direct``: write images straight to the terminal (None: only on a real terminal driver).
        ``threshold``: the per-channel tolerance of direct output (levels)."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.direct_requested = direct
        self.threshold = threshold
        #: The low-bandwidth preview is on: the app asks for it with the preview's coarse tolerance.
        self.preview = threshold >= PREVIEW_THRESHOLD
        if self.preview:
            fps = min(fps, PREVIEW_FPS)
        #: Direct output is possible here (decided on mount); `direct_active`: in use right now.
        self.direct = False
        self.direct_active = False
        self.frames_drawn = 0
        self._writer: TerminalWriter | None = None
        self._dump = FrameDump.from_env()
        self.color_mode = color_mode
        self.fps = fps
        self.empty_text = empty_text
        self.tiles: dict[str, Tile] = {}
        self.focused_key: str | None = None
        self.border_title = "video"
        self._styles = StyleCache()
        self._strips: list[Strip | None] = []
        self._timer: Timer | None = None
        self._last_view: tuple[int, int, str | None, tuple[str, ...]] | None = None

    # --- what the app calls ----------------------------------------------------------------------

    def set_tile(self, key: str, name: str, source: FrameSource | None, status: str = "", *,
                 muted: bool = False) -> None:
        """Add or update a participant's tile; ``source=None`` shows the status instead of video;
        ``muted``: their microphone is off (marked in the label)."""
        tile = self.tiles.get(key)
        if tile is None:
            tile = self.tiles[key] = Tile(key, name, source, status, muted)
            self._relayout()
            return
        # The app calls this on every stats update: only a new tile changes the layout, so anything
        # else repaints just what changed (a relayout would redraw every image from scratch).
        if source is not tile.source and source is not None and tile.source is not None:
            # Video to video. The app's call snapshots (one a second) wrap the same stream in a new
            # source object: nothing to redraw then. Otherwise the new source's frame is drawn at
            # once, as a change of the picture shown (the image rows stay; repainting them would
            # force a full redraw of a directly drawn picture).
            same = _same_frame(tile.source.latest_frame(), source.latest_frame())
            tile.source = source
            if not same:
                tile.seq, tile.drawn_at = -1, -1e9
                self._tick()
            if (name, status, muted) != (tile.name, tile.status, tile.muted):
                self._invalidate_rows(tile.y, 1)
        elif source is not tile.source:
            tile.source, tile.seq, tile.cells, tile.image_lines, tile.drawn_at = source, -1, None, [], -1e9
            self._invalidate_rows(tile.y, tile.height)
            self._tick()
        elif (name, status, muted) != (tile.name, tile.status, tile.muted):
            self._invalidate_rows(tile.y, 1)
        tile.name, tile.status, tile.muted = name, status, muted

    def set_order(self, keys: list[str]) -> None:
        """Put the tiles in this order (keys not listed keep theirs, after): a tile that comes back
        must not land at the end of the grid, nor the self-view in the middle of it."""
        rank = {key: index for index, key in enumerate(keys)}
        ordered = sorted(self.tiles, key=lambda key: rank.get(key, len(rank)))
        if ordered != list(self.tiles):
            self.tiles = {key: self.tiles[key] for key in ordered}
            self._relayout()

    def remove_tile(self, key: str) -> None:
        if self.tiles.pop(key, None) is not None:
            if self.focused_key == key:
                self.focused_key = None
            self._relayout()

    def focus_next(self) -> str | None:
        """Cycle: grid → each participant full size → grid. Returns the focused key."""
        keys = list(self.tiles)
        if not keys:
            self.focused_key = None
        elif self.focused_key is None:
            self.focused_key = keys[0]
        else:
            index = keys.index(self.focused_key) if self.focused_key in keys else -1
            self.focused_key = keys[index + 1] if index + 1 < len(keys) else None
        self._relayout()
        return self.focused_key

    def set_threshold(self, threshold: int) -> None:
        """The direct output's tolerance (e.g. coarser in the low-bandwidth preview)."""
        self.threshold = threshold
        preview = threshold >= PREVIEW_THRESHOLD
        for tile in self.tiles.values():
            tile.encoder = None
        if preview != self.preview:
            self.preview = preview
            self._relayout()  # the preview draws a smaller picture
            return
        self._tick()

    def set_fps(self, fps: float) -> None:
        self.fps = fps
        if self._timer is not None:
            self._timer.stop()
            self._timer = self.set_interval(1 / (POLL_PER_FRAME * fps), self._tick)

    @property
    def shown_tiles(self) -> list[Tile]:
        if self.focused_key is not None and self.focused_key in self.tiles:
            return [self.tiles[self.focused_key]]
        return list(self.tiles.values())

    def view_box(self) -> tuple[int, int]:
        """The pixel size of the largest image a visible tile can show."""
        tiles = self.shown_tiles
        if not tiles:
            width, height = self.content_size
            return max(16, width), max(16, 2 * (height - 1))
        tile = tiles[0]
        return max(16, tile.width), max(16, 2 * (tile.height - 1))

    def terminal_fps(self) -> float | None:
        """The frames a second the terminal shows while it cannot take them all (a slow link), else None."""
        writer = self._writer
        if not self.direct_active or writer is None or not writer.link_slow(within=DRAWN_WINDOW_S):
            return None
        now = time.monotonic()
        counts = [sum(now - t < DRAWN_WINDOW_S for t in tile.drawn_times) for tile in self.shown_tiles]
        return max(counts, default=0) / DRAWN_WINDOW_S

    # --- Textual ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.direct = direct_wanted(self.app, self.direct_requested)
        if self.direct:
            self._writer = TerminalWriter.of(self.app)
            self._writer.probe()
            DisplayWatch.of(self.app).add(self._painted)
        self._timer = self.set_interval(1 / (POLL_PER_FRAME * self.fps), self._tick)

    def on_unmount(self) -> None:
        if self.direct:
            DisplayWatch.of(self.app).discard(self._painted)
        self.direct = self.direct_active = False
        if self._dump is not None:
            self._dump.close()

    def on_resize(self) -> None:
        self._relayout()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return container.height

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if y >= len(self._strips):
            return Strip.blank(width)
        strip = self._strips[y]
        if strip is None:
            strip = self._strips[y] = self._build_line(y, width)
        return strip

    # --- drawing ---------------------------------------------------------------------------------

    def _relayout(self) -> None:
        width, height = self.content_size
        self._strips = [None] * height
        tiles = self.shown_tiles
        for tile in self.tiles.values():
            tile.width = tile.height = 0
            tile.encoder = None  # its rectangle moves or goes: redraw from scratch when shown
        if tiles and width > 0 and height > 1:
            columns, rows = grid_shape(len(tiles), width, height)
            tile_w, tile_h = tile_width(width, columns), height // rows
            for index, tile in enumerate(tiles):
                row, column = divmod(index, columns)
                # Each row centred, the last one too when it is not full.
                in_row = min(columns, len(tiles) - row * columns)
                left = (width - in_row * tile_w - TILE_GAP * (in_row - 1)) // 2
                tile.x, tile.y = left + column * (tile_w + TILE_GAP), row * tile_h
                tile.width, tile.height = tile_w, tile_h
                tile.seq, tile.cells, tile.image_lines, tile.drawn_at = -1, None, [], -1e9
                tile.placement = self._placement(tile)
        self.refresh()
        # With someone focused the others are hidden and fetched small: a tile added or gone
        # changes who that is, though no box changes (a newcomer came at full size and rate).
        view = (*self.view_box(), self.focused_key, tuple(self.tiles) if self.focused_key else ())
        if view != self._last_view and width > 0:
            self._last_view = view
            self.post_message(self.ViewChanged(view[0], view[1], self.focused_key))
        self._tick()

    def _placement(self, tile: Tile) -> Placement | None:
        if tile.height < 2 or tile.width < 1:
            return None
        src_w, src_h = tile.frame_size or DEFAULT_ASPECT
        if not self.preview:
            return fit(src_w, src_h, tile.width, tile.height - 1)
        cols, rows = min(tile.width, PREVIEW_MAX_CELLS[0]), min(tile.height - 1, PREVIEW_MAX_CELLS[1])
        if tile.frame_size is not None:  # no more cells than the frame has pixels
            cols, rows = min(cols, src_w), min(rows, max(1, (src_h + 1) // 2))
        inner = fit(src_w, src_h, cols, rows)
        return Placement((tile.width - inner.cols) // 2, (tile.height - 1 - inner.rows) // 2, inner.cols, inner.rows)

    def _tick(self) -> None:
        self._update_direct()
        for tile in self.shown_tiles:
            if tile.source is None or tile.placement is None:
                continue
            now = time.monotonic()
            if now - tile.drawn_at < MIN_INTERVAL / self.fps:
                continue
            if self.direct_active and self._writer is not None and self._writer.busy():
                break  # the terminal is behind: leave the frames, take the latest when it has caught up
            latest = tile.source.latest_frame()
            if latest is None or latest[0] == tile.seq:
                continue
            tile.drawn_at = now
            seq, frame = latest
            tile.seq = seq
            size = (frame.shape[1], frame.shape[0])
            if size != tile.frame_size:
                tile.frame_size = size
                placement = self._placement(tile)
                if not (self.preview and _near(placement, tile.placement)):
                    tile.placement = placement
                    tile.cells, tile.image_lines = None, []
                    self._invalidate_rows(tile.y, tile.height)
                    if tile.placement is None:
                        continue
            placement = tile.placement
            assert placement is not None
            cells = to_cells(frame, placement.cols, placement.rows, self.color_mode)
            if self.direct_active:
                tile.cells = cells
                self._draw_direct(tile)
                continue
            changed = self._changed_rows(tile.cells, cells)
            tile.cells = cells
            if self._dump is not None:
                self._dump.record(cells, *self._image_origin(tile), direct=False)
            self.frames_drawn += 1
            if not tile.image_lines:
                tile.image_lines = [self._image_row(cells, row) for row in range(cells.rows)]
            else:
                for row in changed:
                    tile.image_lines[row] = self._image_row(cells, row)
            first = tile.y + 1 + placement.y
            for row in changed:
                self._invalidate_rows(first + row, 1)

    # --- direct output -----------------------------------------------------------------------------

    def _image_origin(self, tile: Tile) -> tuple[int, int]:
        """The screen cell of the tile's image's top-left corner."""
        region = self.content_region
        placement = tile.placement
        assert placement is not None
        return region.x + tile.x + placement.x, region.y + tile.y + 1 + placement.y

    def _image_rects(self) -> list[Region]:
        """Screen rectangles of the images drawn directly."""
        rects = []
        for tile in self.shown_tiles:
            placement = tile.placement
            if placement is not None and tile.source is not None:
                x0, y0 = self._image_origin(tile)
                rects.append(Region(x0, y0, placement.cols, placement.rows))
        return rects

    def _update_direct(self) -> None:
        """Take the image rectangles over, or hand them back while something covers the widget."""
        if not self.direct:
            return
        want = not covered(self, self._image_rects())
        if want == self.direct_active:
            return
        self.direct_active = want
        for tile in self.tiles.values():
            if tile.encoder is not None:
                tile.encoder.invalidate()
            if not want and tile.cells is not None:
                tile.image_lines = [self._image_row(tile.cells, row) for row in range(tile.cells.rows)]
        # Line API rows now serve the video (covered) or blank cells (direct): rebuild them, and when
        # handing back let Textual repaint; when taking over, draw everything at once.
        self._strips = [None] * len(self._strips)
        if not want:
            self.refresh()
        else:
            for tile in self.shown_tiles:
                tile.image_lines = []
                if tile.cells is not None:
                    self._draw_direct(tile, new_frame=False)

    def _draw_direct(self, tile: Tile, *, new_frame: bool = True) -> None:
        """Bring the terminal's image rectangle within the threshold of the tile's cells."""
        cells, writer = tile.cells, self._writer
        if cells is None or writer is None or tile.placement is None:
            return
        x0, y0 = self._image_origin(tile)
        encoder = tile.encoder
        if encoder is None or encoder.mode is not cells.mode or encoder.threshold != self.threshold:
            encoder = tile.encoder = DeltaEncoder(cells.cols, cells.rows, x0=x0, y0=y0, mode=cells.mode,
                                                  threshold=self.threshold)
        elif (encoder.cols, encoder.rows, encoder.x0, encoder.y0) != (cells.cols, cells.rows, x0, y0):
            encoder.resize(cells.cols, cells.rows, x0, y0)
        text = encoder.encode_text(cells)
        if new_frame:
            self.frames_drawn += 1
            tile.drawn_times.append(time.monotonic())
            if self._dump is not None:
                text += FrameDump.mark(self._dump.record(cells, x0, y0, direct=True))
        if text != "\x1b[0m":
            writer.write(text, frame=new_frame)

    def _painted(self, painted: Painted) -> None:
        """Textual just wrote a screen update: redraw any of our image rows it painted over."""
        if not self.direct_active or not self.is_mounted:
            return
        if covered(self, self._image_rects()):
            self._update_direct()
            return
        for tile in self.shown_tiles:
            encoder, placement = tile.encoder, tile.placement
            if encoder is None or placement is None or tile.cells is None:
                continue
            x0, y0 = self._image_origin(tile)
            if (encoder.x0, encoder.y0) != (x0, y0):  # the widget moved: redraw it all
                encoder.invalidate()
            else:
                rows = painted_rows(painted, Region(x0, y0, encoder.cols, encoder.rows))
                if not rows:
                    continue
                for row in rows:
                    encoder.forget(0, row, encoder.cols, 1)
            self._draw_direct(tile, new_frame=False)

    @staticmethod
    def _changed_rows(old: CellImage | None, new: CellImage) -> list[int]:
        if old is None or old.top.shape != new.top.shape:
            return list(range(new.rows))
        differs = np.any(old.top != new.top, axis=(1, 2)) | np.any(old.bottom != new.bottom, axis=(1, 2))
        return [int(row) for row in np.flatnonzero(differs)]

    def _image_row(self, cells: CellImage, row: int) -> list[Segment]:
        segments = []
        if cells.mode is ColorMode.TRUECOLOR:
            for fg, bg, count in row_runs(cells, row):
                segments.append(Segment(HALF_BLOCK * count, self._styles.get(fg, bg)))
        else:
            top, bottom = cells.top_index[row], cells.bottom_index[row]
            start = 0
            for column in range(1, cells.cols + 1):
                if column == cells.cols or top[column] != top[start] or bottom[column] != bottom[start]:
                    style = self._styles.get(int(top[start]), int(bottom[start]))
                    segments.append(Segment(HALF_BLOCK * (column - start), style))
                    start = column
        return segments

    def _invalidate_rows(self, y: int, count: int) -> None:
        for line in range(max(0, y), min(len(self._strips), y + count)):
            self._strips[line] = None
        if count > 0:
            self.refresh(Region(0, y, self.content_size.width, count))

    def _build_line(self, y: int, width: int) -> Strip:
        tiles = [t for t in self.shown_tiles if t.y <= y < t.y + t.height]
        black = self._styles.get((0, 0, 0), (0, 0, 0))
        if not tiles:
            if not self.tiles and y == self.content_size.height // 2:
                note = Text(self.empty_text, style="grey50 italic")
                note.align("center", width)
                return Strip(self._fixed_width(note, width), width)
            return Strip([Segment(" " * width, black)], width)
        segments: list[Segment] = []
        cursor = 0
        for tile in sorted(tiles, key=lambda t: t.x):
            if tile.x > cursor:
                segments.append(Segment(" " * (tile.x - cursor), black))
            segments.extend(self._tile_line(tile, y - tile.y))
            cursor = tile.x + tile.width
        if cursor < width:
            segments.append(Segment(" " * (width - cursor), black))
        return Strip(segments).crop_extend(0, width, None)

    def _fixed_width(self, text: Text, width: int) -> list[Segment]:
        """``text`` rendered to exactly ``width`` cells (Text is never parsed as markup)."""
        segments = list(text.render(self.app.console))
        return list(Strip(segments).crop_extend(0, width, None))

    def _tile_line(self, tile: Tile, line: int) -> list[Segment]:
        black = self._styles.get((0, 0, 0), (0, 0, 0))
        if line == 0:
            label = Text(no_wrap=True)
            label.append(" " + printable(tile.name), style="bold white on grey15")
            if tile.muted:
                label.append(f"  {MUTED_MARK}", style="bold red on grey15")
            if tile.status:
                label.append("  " + printable(tile.status), style="grey70 on grey15")
            # A blank cell at the end too: a label that filled its tile ran into the border or the
            # next tile ("carol  24×18 13 fps 34 kbps││"). Cut, it ends in '…': the stats go first.
            room = tile.width - 1
            if label.cell_len > room:
                label.truncate(max(0, room - 1))
                label.rstrip()
                label.append("…", style="grey70 on grey15")
            label.truncate(tile.width, pad=True)
            label.stylize("on grey15")
            return self._fixed_width(label, tile.width)
        placement = tile.placement
        image_row = line - 1 - (placement.y if placement else 0)
        if self.direct_active and placement is not None and tile.source is not None:
            return [Segment(" " * tile.width, black)]  # drawn directly, not by the compositor
        if placement is None or not tile.image_lines or not 0 <= image_row < len(tile.image_lines):
            if placement is not None and tile.source is None and line == tile.height // 2:
                note = Text(printable(tile.status or "no video"), style="grey50 italic")
                note.align("center", tile.width)
                return self._fixed_width(note, tile.width)
            return [Segment(" " * tile.width, black)]
        left = placement.x
        right = tile.width - placement.x - placement.cols
        return [Segment(" " * left, black), *tile.image_lines[image_row], Segment(" " * right, black)]
