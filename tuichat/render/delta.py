"""Bring a terminal's half-block cells within a colour tolerance of each new frame, in few bytes.

`DeltaEncoder` remembers what every cell of its area shows (the colours the terminal paints, not
what was asked for) and, per frame, re-sends only the cells whose top or bottom colour is more
than `threshold` levels away from the frame in some channel. After each `encode()` every cell
is within `threshold` of the frame, exactly: that is the contract, and the tests check it
through an independent terminal emulator (pyte).

Inside that contract the bytes are spent carefully, because on camera footage almost every cell
drifts a little every frame and an SGR colour code costs ten times the glyph:

- the colour sent for a cell is any point of the box `frame ± threshold`, so it is chosen to be
  (a) the colour the terminal's pen already has (no SGR at all), (b) shared by the next cells of
  the row (one SGR for a run), (c) a xterm-256 palette colour when one fits (`38;5;n` is half
  the length of `38;2;r;g;b`), and (d) otherwise the cell's predicted colour a few frames ahead
  (a per-cell level-and-trend filter), so that a cell on a slow pan or a noisy edge stays valid
  for longer before it has to be re-sent;
- a cell whose top and bottom fit one colour is a space on that background (1 byte, not the
  3 of '▀', and no foreground needed);
- the cursor moves by the cheapest of CUP (`ESC[r;cH`), CUF (`ESC[nC`) or, for a gap of a few
  cells that the current pen already fits, by simply writing those cells again;
- fg and bg go in one SGR, only the one that changed is sent, and nothing is reset mid-frame.

Only CUP, CUF, SGR (38;2 / 48;2 / 38;5 / 48;5, or 30–37/90–97/40–47/100–107 in 16 colours,
and a final `ESC[0m`), '▀' (U+2580) and the space are written. Palette codes 16–255 are assumed
to have xterm's standard values (every common terminal keeps the cube and the gray ramp; themes
only change 0–15, which truecolor output never uses).

Pure numpy and the standard library: no Textual, no Rich.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .cells import HALF_BLOCK, CellImage
from .modes import ColorMode
from .palette import _CUBE_LUT, CUBE_LEVELS, PALETTE_256, quantize

__all__ = ["DeltaEncoder", "DeltaStats"]

_CSI = "\x1b["
_RESET = "\x1b[0m"
_SPACE = " "

# A pen colour: (r, g, b, code) where code is the SGR parameter text without the 38/48 lead
# ("2;r;g;b" or "5;n"), or for 16 colours the full parameter ("31", "97").
_Pen = tuple[int, int, int, str]

# What a forgotten cell is taken to show: no colour is within any threshold of it.
_UNKNOWN = -1024

# How many following cells a new pen colour is fitted to (the "run" lookahead).
_LOOKAHEAD = 12
# The level + trend filter behind "predicted colour": gains and the horizon in frames.
_ALPHA = 0.5
_BETA = 0.2
_HORIZON = 1.5


class DeltaStats:
    """Counters of the last `encode()`, for benchmarks and tests."""

    __slots__ = ("bytes", "cells", "cursor_moves", "fills", "sgr", "spaces")

    def __init__(self) -> None:
        self.cells = 0  # cells that were out of tolerance and re-sent
        self.fills = 0  # cells written instead of a cursor move (they fitted the pen)
        self.spaces = 0  # cells written as a space on the background colour
        self.sgr = 0  # SGR sequences written
        self.cursor_moves = 0
        self.bytes = 0

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)}" for name in self.__slots__)
        return f"DeltaStats({fields})"


def _palette_pen(index: int, mode: ColorMode) -> _Pen:
    """The pen for a palette index in a palette mode (16-colour codes are whole parameters)."""
    r, g, b = (int(v) for v in PALETTE_256[index])
    if mode is ColorMode.COLOR16:
        return r, g, b, str(index + 30 if index < 8 else index + 82)
    return r, g, b, f"5;{index}"


def _code(pen: _Pen, fg: bool, mode: ColorMode) -> str:
    if mode is ColorMode.COLOR16:
        return pen[3] if fg else str(int(pen[3]) + 10)
    return ("38;" if fg else "48;") + pen[3]


def _cup(row: int, col: int) -> str:
    """CUP to 1-based (row, col); the column is omitted when it is 1."""
    return f"{_CSI}{row}H" if col == 1 else f"{_CSI}{row};{col}H"


def _cuf(n: int) -> str:
    return f"{_CSI}C" if n == 1 else f"{_CSI}{n}C"


class _LazyPens:
    """Pens per out-of-tolerance cell, built into tuples only for the cells that use them."""

    __slots__ = ("code", "ok", "rgb")

    def __init__(self, rgb: list[list[int]], code: list[int], ok: list[bool] | None = None) -> None:
        self.rgb, self.code, self.ok = rgb, code, ok

    def __getitem__(self, i: int) -> _Pen | None:
        if self.ok is not None and not self.ok[i]:
            return None
        r, g, b = self.rgb[i]
        c = self.code[i]
        return (r, g, b, f"5;{c}" if c >= 0 else f"2;{r};{g};{b}")


# Either lazily built truecolor pens or a plain list (palette modes).
_Pens = _LazyPens | list[_Pen] | list[_Pen | None]


class DeltaEncoder:
    """Keeps a terminal area's cell colours within `threshold` of each frame with few bytes.

    `encode(cells)` returns the bytes to write; the area is `cols`×`rows` cells at the 0-based
    screen position (x0, y0). The first frame, and the first after `invalidate()` or `resize()`,
    is a full redraw. In palette modes a cell is re-sent when its palette colour changes (by
    more than `threshold`, which only merges near-identical gray-ramp and cube entries).
    `palette_codes=False` keeps truecolor output to `38;2`/`48;2` only.
    """

    def __init__(
        self,
        cols: int,
        rows: int,
        *,
        x0: int = 0,
        y0: int = 0,
        threshold: int = 8,
        mode: ColorMode = ColorMode.TRUECOLOR,
        palette_codes: bool = True,
        spaces: bool = True,
    ) -> None:
        if not 0 <= threshold <= 255:
            raise ValueError(f"threshold must be in 0..255, got {threshold}")
        self.threshold = threshold
        self.mode = mode
        self.palette_codes = palette_codes
        self.spaces = spaces
        # New pens sit within threshold - slack of the cell: 2 costs 1% on the camera clip and keeps
        # sub-threshold noise from expiring freshly sent cells at once.
        self.slack = 2
        self.reuse_slack = 2
        self.stats = DeltaStats()
        self.cols = self.rows = self.x0 = self.y0 = 0
        self._shown_top = self._shown_bottom = np.zeros((0, 0, 3), dtype=np.int16)
        self._level = self._trend = np.zeros((0, 0, 3), dtype=np.float32)
        self._valid = False
        self.resize(cols, rows, x0, y0)

    # ------------------------------------------------------------------------------ state

    def resize(self, cols: int, rows: int, x0: int | None = None, y0: int | None = None) -> None:
        """A new area size or position: forget the screen, so the next frame is a full redraw."""
        if cols <= 0 or rows <= 0:
            raise ValueError(f"area must be positive, got {cols}x{rows}")
        x0 = self.x0 if x0 is None else x0
        y0 = self.y0 if y0 is None else y0
        if x0 < 0 or y0 < 0:
            raise ValueError(f"origin must be non-negative, got ({x0}, {y0})")
        self.cols, self.rows, self.x0, self.y0 = cols, rows, x0, y0
        self._shown_top = np.zeros((rows, cols, 3), dtype=np.int16)
        self._shown_bottom = np.zeros((rows, cols, 3), dtype=np.int16)
        # Level and trend per half-cell (top rows then bottom rows) and channel.
        self._level = np.zeros((2, rows, cols, 3), dtype=np.float32)
        self._trend = np.zeros((2, rows, cols, 3), dtype=np.float32)
        self._valid = False

    def invalidate(self) -> None:
        """Forget what the terminal shows (after an overlay, a clear, a resize): next is a full redraw."""
        self._valid = False

    def forget(self, x: int, y: int, width: int, height: int) -> None:
        """Another writer painted this block of the area (0-based area cells): re-send it next time.

        Cheaper than `invalidate()` when only a few rows were overwritten (an overlay went away,
        a toolkit repainted a row): the rest of the area keeps its known state.
        """
        if not self._valid:
            return
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.cols, x + width), min(self.rows, y + height)
        if x0 < x1 and y0 < y1:
            # Far outside any tolerance, so these cells count as out of date until re-sent.
            self._shown_top[y0:y1, x0:x1] = _UNKNOWN
            self._shown_bottom[y0:y1, x0:x1] = _UNKNOWN

    def shown(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None:
        """(top, bottom) (rows, cols, 3) colours the terminal displays now, or None if unknown."""
        if not self._valid:
            return None
        return self._shown_top.astype(np.uint8), self._shown_bottom.astype(np.uint8)

    # ----------------------------------------------------------------------------- encode

    def encode_rgb(
        self, top: npt.NDArray[np.uint8], bottom: npt.NDArray[np.uint8], *, sgr_known: bool = False
    ) -> bytes:
        """`encode` for raw (rows, cols, 3) target colours, quantised for this encoder's mode."""
        tc, ti = quantize(np.asarray(top, dtype=np.uint8), self.mode)
        bc, bi = quantize(np.asarray(bottom, dtype=np.uint8), self.mode)
        return self.encode(CellImage(tc, bc, ti, bi, self.mode), sgr_known=sgr_known)

    def encode(self, cells: CellImage, *, sgr_known: bool = False) -> bytes:
        """The bytes that bring the area within `threshold` of `cells`, ending with `ESC[0m`."""
        data = self.encode_text(cells, sgr_known=sgr_known).encode("utf-8")
        self.stats.bytes = len(data)
        return data

    def encode_text(self, cells: CellImage, *, sgr_known: bool = False) -> str:
        """`encode` as text, for writers that take str (Textual's driver); `stats.bytes` counts chars.

        The SGR state at the start is taken as unknown (another writer may have changed it);
        `sgr_known=True` says the terminal still has the default colours our last `ESC[0m` left,
        which only matters for palette-free output and is accepted for symmetry.
        """
        del sgr_known  # after ESC[0m the pen is the terminal's default: unknown RGB either way
        if (cells.rows, cells.cols) != (self.rows, self.cols):
            raise ValueError(f"frame is {cells.cols}x{cells.rows} cells, area is {self.cols}x{self.rows}")
        if cells.mode is not self.mode:
            raise ValueError(f"frame is in {cells.mode.value} colours, encoder in {self.mode.value}")
        top = cells.top.astype(np.int16)
        bottom = cells.bottom.astype(np.int16)
        th = self.threshold
        truecolor = self.mode is ColorMode.TRUECOLOR
        if truecolor:
            pred_top, pred_bottom = self._predict(top, bottom)
        else:
            pred_top, pred_bottom = top, bottom
        if self._valid:
            over_top = np.abs(self._shown_top - top).max(axis=2) > th
            over_bottom = np.abs(self._shown_bottom - bottom).max(axis=2) > th
            need = over_top | over_bottom
        else:
            need = np.ones((self.rows, self.cols), dtype=bool)
        stats = self.stats = DeltaStats()
        out: list[str] = []
        if need.any():
            self._assemble(out, need, top, bottom, pred_top, pred_bottom, cells, stats)
        self._valid = True
        out.append(_RESET)
        text = "".join(out)
        stats.bytes = len(text)
        return text

    def _predict(
        self, top: npt.NDArray[np.int16], bottom: npt.NDArray[np.int16]
    ) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
        """Update the per-half-cell level and trend (Holt's filter) and return where each is heading.

        A re-sent cell is drawn towards that point (within its box), so a steady drift (a pan over a
        gradient) keeps it valid up to twice as long and sensor noise is averaged out of it.
        """
        x = np.stack((top, bottom)).astype(np.float32)
        if not self._valid:
            self._level[...] = x
            self._trend[...] = 0.0
        else:
            level = _ALPHA * x + (1.0 - _ALPHA) * (self._level + self._trend)
            self._trend = _BETA * (level - self._level) + (1.0 - _BETA) * self._trend
            self._level = level
        pred = np.rint(self._level + _HORIZON * self._trend).astype(np.int16)
        return pred[0], pred[1]

    def _fresh_pens(
        self,
        need: npt.NDArray[np.bool_],
        top: npt.NDArray[np.int16],
        bottom: npt.NDArray[np.int16],
        pred_top: npt.NDArray[np.int16],
        pred_bottom: npt.NDArray[np.int16],
        cells: CellImage,
        tol: int,
    ) -> tuple[_Pens, _Pens, _Pens]:
        """For each out-of-tolerance cell (row-major): the pen to use if fg, bg or a space needs one.

        Truecolor, vectorised: the box `target ± tol`, narrowed by the boxes of the following
        out-of-tolerance cells of the row while the intersection stays non-empty (so a run shares
        one SGR), and in it the point nearest the predicted colour, snapped to a xterm-256 colour
        when one lies in the box. Palette modes: the cell's own index.
        """
        flat = np.flatnonzero(need)
        n = flat.size
        if self.mode is not ColorMode.TRUECOLOR:
            ti = cells.top_index.reshape(-1)[flat].tolist()
            bi = cells.bottom_index.reshape(-1)[flat].tolist()
            fgs = [_palette_pen(i, self.mode) for i in ti]
            bgs = [_palette_pen(i, self.mode) for i in bi]
            spaces: list[_Pen | None] = []
            for fpen, bpen in zip(fgs, bgs, strict=True):
                if _fits(bpen, list(fpen[:3]), tol):
                    spaces.append(bpen)
                elif _fits(fpen, list(bpen[:3]), tol):
                    spaces.append(fpen)
                else:
                    spaces.append(None)
            return fgs, bgs, spaces
        t = top.reshape(-1, 3)[flat].astype(np.int32)
        b = bottom.reshape(-1, 3)[flat].astype(np.int32)
        # adjacent[i]: cell i+1 is the next cell of the same row.
        adjacent = np.zeros(n, dtype=bool)
        if n > 1:
            adjacent[:-1] = (flat[1:] == flat[:-1] + 1) & (flat[1:] % self.cols != 0)
        space_lo = np.maximum(t, b) - tol
        space_hi = np.minimum(t, b) + tol
        space_ok = np.all(space_lo <= space_hi, axis=1)
        boxes: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = [
            (t - tol, t + tol),
            (b - tol, b + tol),
            (space_lo, space_hi),
        ]
        wants = (
            pred_top.reshape(-1, 3)[flat].astype(np.int32),
            pred_bottom.reshape(-1, 3)[flat].astype(np.int32),
            (pred_top.reshape(-1, 3)[flat].astype(np.int32) + pred_bottom.reshape(-1, 3)[flat]) // 2,
        )
        results: list[_LazyPens] = []
        for (lo0, hi0), want in zip(boxes, wants, strict=True):
            lo, hi = lo0.copy(), hi0.copy()
            alive = adjacent.copy()
            for j in range(1, _LOOKAHEAD + 1):
                if j >= n or not alive[: n - j].any():
                    break
                cand_lo = np.maximum(lo[: n - j], lo0[j:])
                cand_hi = np.minimum(hi[: n - j], hi0[j:])
                ok = alive[: n - j] & (cand_lo <= cand_hi).all(axis=1)
                lo[: n - j][ok] = cand_lo[ok]
                hi[: n - j][ok] = cand_hi[ok]
                nxt = np.zeros(n, dtype=bool)
                nxt[: n - j - 1] = ok[: n - j - 1] & adjacent[j : n - 1]
                alive = nxt
            np.clip(lo, 0, 255, out=lo)
            np.clip(hi, 0, 255, out=hi)
            pen = np.clip(want, lo, hi)
            code = np.full(n, -1, dtype=np.int32)
            if self.palette_codes:
                # Nearest gray-ramp step to the pen's mean, if inside the box in all channels.
                k = np.clip(np.rint((pen.mean(axis=1) - 8) / 10), 0, 23).astype(np.int32)
                level = 8 + 10 * k
                gray_ok = (level >= lo.max(axis=1)) & (level <= hi.min(axis=1))
                # Else the nearest cube level per channel, if each is inside the box.
                cube = _CUBE_LUT[pen]
                cube_rgb = CUBE_LEVELS[cube].astype(np.int32)
                cube_ok = ((cube_rgb >= lo) & (cube_rgb <= hi)).all(axis=1) & ~gray_ok
                pen = np.where(gray_ok[:, None], level[:, None], pen)
                pen = np.where(cube_ok[:, None], cube_rgb, pen)
                code = np.where(gray_ok, 232 + k, code)
                code = np.where(cube_ok, 16 + 36 * cube[:, 0] + 6 * cube[:, 1] + cube[:, 2], code)
            results.append(_LazyPens(pen.tolist(), code.tolist()))
        space_fits: list[bool] = np.asarray(space_ok).tolist()
        return results[0], results[1], _LazyPens(results[2].rgb, results[2].code, ok=space_fits)

    def _assemble(
        self,
        out: list[str],
        need: npt.NDArray[np.bool_],
        top: npt.NDArray[np.int16],
        bottom: npt.NDArray[np.int16],
        pred_top: npt.NDArray[np.int16],
        pred_bottom: npt.NDArray[np.int16],
        cells: CellImage,
        stats: DeltaStats,
    ) -> None:
        """Walk the out-of-tolerance cells in row order, writing cursor moves, SGRs and glyphs."""
        mode = self.mode
        # Reusing the pen on a cell it fits only just would leave it at the edge of its box.
        th = max(0, self.threshold - self.reuse_slack) if mode is ColorMode.TRUECOLOR else self.threshold
        # New pens are placed inside a narrower box, so noise does not expire them at once.
        inner = max(0, th - self.slack) if mode is ColorMode.TRUECOLOR else th
        use_spaces = self.spaces
        cols, x0, y0 = self.cols, self.x0, self.y0
        shown_top, shown_bottom = self._shown_top, self._shown_bottom
        fresh_fg, fresh_bg, fresh_space = self._fresh_pens(need, top, bottom, pred_top, pred_bottom, cells, inner)
        flat = np.flatnonzero(need)
        rows_l = (flat // cols).tolist()
        cols_l = (flat % cols).tolist()
        tt_l = top.reshape(-1, 3)[flat].tolist()
        tb_l = bottom.reshape(-1, 3)[flat].tolist()
        # Rows of top and bottom as lists, made on first need (the whole frame costs milliseconds).
        row_lists: dict[int, tuple[list[list[int]], list[list[int]]]] = {}
        # What each written cell shows, applied to the shown arrays in one go at the end.
        new_top: list[tuple[int, int, int]] = []
        new_bottom: list[tuple[int, int, int]] = []
        fg: _Pen | None = None
        bg: _Pen | None = None
        cur_row, cur_col = -1, -1  # cursor position in area cells; -1: unknown
        n_sgr = n_moves = n_fills = n_spaces = 0

        for i, (row, col) in enumerate(zip(rows_l, cols_l, strict=True)):
            # ---- move the cursor to (row, col)
            if cur_row == row and col >= cur_col:
                gap = col - cur_col
                if gap:
                    filled = False
                    if gap <= 4 and bg is not None:
                        lists = row_lists.get(row)
                        if lists is None:
                            lists = row_lists[row] = (top[row].tolist(), bottom[row].tolist())
                        rt, rb = lists
                        filling = self._fill(cur_col, col, rt, rb, fg, bg, th, use_spaces)
                        if filling is not None:
                            out.append(filling[0])
                            for c, pen in enumerate(filling[1], cur_col):
                                shown_top[row, c] = pen[:3]
                                shown_bottom[row, c] = bg[:3]
                            n_fills += gap
                            filled = True
                    if not filled:
                        out.append(f"{_CSI}C" if gap == 1 else f"{_CSI}{gap}C")
                        n_moves += 1
            else:
                out.append(_cup(y0 + row + 1, x0 + col + 1))
                n_moves += 1
            # ---- choose the glyph and pen for this cell
            t, b = tt_l[i], tb_l[i]
            fg_fits = fg is not None and (
                abs(fg[0] - t[0]) <= th and abs(fg[1] - t[1]) <= th and abs(fg[2] - t[2]) <= th
            )
            bg_fits_b = bg is not None and (
                abs(bg[0] - b[0]) <= th and abs(bg[1] - b[1]) <= th and abs(bg[2] - b[2]) <= th
            )
            if (
                use_spaces
                and bg_fits_b
                and bg is not None
                and abs(bg[0] - t[0]) <= th
                and abs(bg[1] - t[1]) <= th
                and abs(bg[2] - t[2]) <= th
            ):
                out.append(_SPACE)
                new_top.append(bg[:3])
                new_bottom.append(bg[:3])
                n_spaces += 1
            elif fg_fits and bg_fits_b:
                assert fg is not None and bg is not None
                out.append(HALF_BLOCK)
                new_top.append(fg[:3])
                new_bottom.append(bg[:3])
            else:
                codes = []
                new_fg = None if fg_fits else fresh_fg[i]
                new_bg = None if bg_fits_b else fresh_bg[i]
                if new_fg is not None:
                    codes.append(_code(new_fg, True, mode))
                if new_bg is not None:
                    codes.append(_code(new_bg, False, mode))
                block_cost = 5 + len(codes) + sum(map(len, codes))
                space_pen = fresh_space[i] if use_spaces else None
                space_code = _code(space_pen, False, mode) if space_pen is not None else ""
                if space_pen is not None and 4 + len(space_code) < block_cost:
                    bg = space_pen
                    out.append(f"{_CSI}{space_code}m{_SPACE}")
                    new_top.append(bg[:3])
                    new_bottom.append(bg[:3])
                    n_spaces += 1
                else:
                    if new_fg is not None:
                        fg = new_fg
                    if new_bg is not None:
                        bg = new_bg
                    assert fg is not None and bg is not None
                    out.append(f"{_CSI}{';'.join(codes)}m{HALF_BLOCK}")
                    new_top.append(fg[:3])
                    new_bottom.append(bg[:3])
                n_sgr += 1
            cur_row, cur_col = row, col + 1
            if cur_col >= cols:  # at the area's right edge the terminal may be wrap-pending
                cur_row = cur_col = -1
        if flat.size:
            shown_top.reshape(-1, 3)[flat] = new_top
            shown_bottom.reshape(-1, 3)[flat] = new_bottom
        stats.cells, stats.fills, stats.spaces = int(flat.size), n_fills, n_spaces
        stats.sgr, stats.cursor_moves = n_sgr, n_moves

    def _fill(
        self,
        start: int,
        stop: int,
        rt: list[list[int]],
        rb: list[list[int]],
        fg: _Pen | None,
        bg: _Pen,
        th: int,
        use_spaces: bool,
    ) -> tuple[str, list[_Pen]] | None:
        """The skipped cells [start, stop) written with the current pen, if no longer than a CUF.

        Only cells the pen keeps within tolerance qualify, so this refreshes them for free. Returns
        the glyphs and the pen each cell's top now shows; None if the gap is better jumped over.
        """
        budget = 3 if stop - start == 1 else 4
        glyphs = []
        shows = []
        cost = 0
        for col in range(start, stop):
            t, b = rt[col], rb[col]
            if not _fits(bg, b, th):
                return None
            if use_spaces and _fits(bg, t, th):
                glyphs.append(_SPACE)
                shows.append(bg)
                cost += 1
            elif fg is not None and _fits(fg, t, th):
                glyphs.append(HALF_BLOCK)
                shows.append(fg)
                cost += 3
            else:
                return None
            if cost > budget:
                return None
        return "".join(glyphs), shows


def _fits(pen: _Pen, target: list[int], th: int) -> bool:
    """Whether the pen's colour is within `th` of `target` in every channel."""
    return abs(pen[0] - target[0]) <= th and abs(pen[1] - target[1]) <= th and abs(pen[2] - target[2]) <= th
