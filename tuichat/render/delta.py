"""Bring a terminal's half-block cells within a colour tolerance of each new frame, in few bytes.

`DeltaEncoder` remembers what every cell of its area shows (the colours the terminal paints, not
what was asked for) and, per frame, re-sends only the cells whose top or bottom colour is more
than `threshold` levels away from the frame in some channel. After each `encode()` every cell
is within `threshold` of the frame, exactly: that is the contract, and the tests check it
through an independent terminal emulator (pyte).

Inside that contract the bytes are spent carefully. On camera footage a few hundred cells move
every frame and an SGR colour code (`38;2;R;G;B`, ~14 bytes) costs five times a glyph, so the
encoder's work is to write as few colour codes as it can:

- each re-sent cell accepts, per half, a box of colours `target ± width`: the full tolerance for a
  cell that moved (it will likely move again soon), the tolerance less `slack` for one that only
  drifted past it (so sub-threshold noise does not expire it again at once);
- each cell is drawn with one of four glyphs: '▀' (fg over bg), '▄' (bg over fg), a space (bg
  only) or '█' (fg only). In row order a greedy pass picks, per cell, the glyph that needs the
  fewest new colour codes given the pens in use: a cell whose top matches the current bg and
  bottom the current fg is '▄' with no code at all. The fg and bg streams so fall into runs whose
  boxes intersect; each run gets one pen (the point of the intersection nearest its cells' mean,
  snapped to a xterm-256 colour when one fits: `38;5;n` is half the length of `38;2;r;g;b`), so
  an SGR is written only where a run starts, with only the code that changed;
- the cursor moves by CUF along a row and CUP otherwise; nothing is reset mid-frame.

Only CUP, CUF, SGR (38;2 / 48;2 / 38;5 / 48;5, or 30–37/90–97/40–47/100–107 in 16 colours,
and a final `ESC[0m`), the four glyphs and the space are written. Palette codes 16–255 are
assumed to have xterm's standard values (every common terminal keeps the cube and the gray ramp;
themes only change 0–15, which truecolor output never uses).

The glyph choice is a sequential decision (each cell depends on the pens the previous ones left),
done in a tight Python loop over the re-sent cells only (~1.5 µs per cell); everything else is
numpy. Pure numpy and the standard library: no Textual, no Rich.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .cells import HALF_BLOCK, CellImage
from .modes import ColorMode
from .palette import CUBE_LEVELS, CUBE_LUT, PALETTE_256, ansi16_sgr, quantize

__all__ = ["FULL_BLOCK", "LOWER_HALF_BLOCK", "DeltaEncoder", "DeltaStats"]

#: LOWER HALF BLOCK: the foreground paints the bottom half, the background the top.
LOWER_HALF_BLOCK = "\u2584"
#: FULL BLOCK: the foreground paints the whole cell.
FULL_BLOCK = "\u2588"

_CSI = "\x1b["
_RESET = "\x1b[0m"

# Glyph states of a cell, and their glyphs: which pen paints which half.
_UPPER, _SPACE, _LOWER, _FULL = 0, 1, 2, 3  # fg/bg = top/bottom, -/both, bottom/top, both/-
_GLYPHS = np.array([HALF_BLOCK, " ", LOWER_HALF_BLOCK, FULL_BLOCK], dtype=object)

# What a forgotten cell is taken to show: no colour is within any threshold of it.
_UNKNOWN = -1024
# A re-sent cell that only drifted accepts pens within threshold − slack of it, so sub-threshold
# noise does not expire it again at once (measured on the webcam clip: 4 is best of 2–6).
_SLACK = 4
# A cell whose shown colour is off by more than threshold + this counts as moving: it accepts the
# full tolerance, which lets more neighbours share a pen (it will likely move again anyway).
_MOTION = 2
# About what a colour code costs in bytes ("38;2;R;G;B" and a separator): the glyph choice weighs
# codes against glyph bytes (1 for a space, 3 for the blocks).
_CODE_COST = 14
# A box bound no colour reaches: a free half accepts any pen.
_BIG = 1 << 20
# "0".."255": colour components as text without a str() per component.
_DEC = [str(i) for i in range(256)]


class DeltaStats:
    """Counters of the last `encode()`, for benchmarks and tests."""

    __slots__ = ("bytes", "cells", "cursor_moves", "flips", "sgr", "spaces")

    def __init__(self) -> None:
        self.cells = 0  # cells that were out of tolerance and re-sent
        self.spaces = 0  # cells written with one colour (a space or '█')
        self.flips = 0  # cells written as '▄' (or '█') to reuse the pens
        self.sgr = 0  # SGR sequences written
        self.cursor_moves = 0
        self.bytes = 0

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)}" for name in self.__slots__)
        return f"DeltaStats({fields})"


class DeltaEncoder:
    """Keeps a terminal area's cell colours within `threshold` of each frame with few bytes.

    `encode(cells)` returns the bytes to write; the area is `cols`×`rows` cells at the 0-based
    screen position (x0, y0). The first frame, and the first after `invalidate()` or `resize()`,
    is a full redraw. In palette modes a cell is re-sent when its palette colour changes (by
    more than `threshold`, which only merges near-identical gray-ramp and cube entries).
    `palette_codes=False` keeps truecolor output to `38;2`/`48;2` only; `spaces=False` draws
    every cell with two colours ('▀' or '▄').
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
        self.stats = DeltaStats()
        self.cols = self.rows = self.x0 = self.y0 = 0
        self._shown_top = self._shown_bottom = np.zeros((0, 0, 3), dtype=np.int16)
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

    def encode_rgb(self, top: npt.NDArray[np.uint8], bottom: npt.NDArray[np.uint8]) -> bytes:
        """`encode` for raw (rows, cols, 3) target colours, quantised for this encoder's mode."""
        tc, ti = quantize(np.asarray(top, dtype=np.uint8), self.mode)
        bc, bi = quantize(np.asarray(bottom, dtype=np.uint8), self.mode)
        return self.encode(CellImage(tc, bc, ti, bi, self.mode))

    def encode(self, cells: CellImage) -> bytes:
        """The bytes that bring the area within `threshold` of `cells`, ending with `ESC[0m`."""
        data = self.encode_text(cells).encode("utf-8")
        self.stats.bytes = len(data)
        return data

    def encode_text(self, cells: CellImage) -> str:
        """`encode` as text, for writers that take str (Textual's driver); `stats.bytes` counts chars.

        The SGR state at the start is taken as unknown: another writer may have changed it.
        """
        if (cells.rows, cells.cols) != (self.rows, self.cols):
            raise ValueError(f"frame is {cells.cols}x{cells.rows} cells, area is {self.cols}x{self.rows}")
        if cells.mode is not self.mode:
            raise ValueError(f"frame is in {cells.mode.value} colours, encoder in {self.mode.value}")
        top = cells.top.astype(np.int16)
        bottom = cells.bottom.astype(np.int16)
        if self._valid:
            dev = np.maximum(
                np.abs(self._shown_top - top).max(axis=2), np.abs(self._shown_bottom - bottom).max(axis=2)
            )
        else:
            dev = None
        stats = self.stats = DeltaStats()
        text = self._assemble(dev, top, bottom, cells, stats)
        self._valid = True
        text += _RESET
        stats.bytes = len(text)
        return text

    def _assemble(
        self,
        dev: npt.NDArray[np.int16] | None,
        top: npt.NDArray[np.int16],
        bottom: npt.NDArray[np.int16],
        cells: CellImage,
        stats: DeltaStats,
    ) -> str:
        """The text for the out-of-tolerance cells (`dev` > threshold; all of them when `dev` is None).

        Per cell: its colour boxes, a glyph (`_choose_glyphs`, which also cuts the fg and bg
        streams into runs), then in numpy one pen per run, the SGR where a run starts and the
        cursor moves.
        """
        th = self.threshold
        truecolor = self.mode is ColorMode.TRUECOLOR
        cols = self.cols
        flat = np.flatnonzero(dev > th) if dev is not None else np.arange(self.rows * cols)
        n = flat.size
        if n == 0:
            return ""
        t = top.reshape(-1, 3)[flat].astype(np.int32)
        b = bottom.reshape(-1, 3)[flat].astype(np.int32)
        # ---- the colours each half accepts: a box around its target. Palette modes send the exact
        # palette colour (a point box), so runs are runs of one palette entry.
        if truecolor:
            still = max(0, th - _SLACK)
            if dev is None:
                w: npt.NDArray[np.int32] | int = still
            else:
                w = np.where(dev.reshape(-1)[flat] > th + _MOTION, th, still).astype(np.int32)[:, None]
        else:
            w = 0
        t_lo, t_hi, b_lo, b_hi = t - w, t + w, b - w, b + w
        s_lo, s_hi = np.maximum(t_lo, b_lo), np.minimum(t_hi, b_hi)
        single = np.all(s_lo <= s_hi, axis=1) if self.spaces else np.zeros(n, dtype=bool)
        state, fg_start, bg_start = _choose_glyphs(t_lo, t_hi, b_lo, b_hi, s_lo, s_hi, single)
        # ---- per cell, per pen: the box it needs (free: any pen) and the colour it would like
        free_lo = np.full_like(t_lo, -_BIG)
        free_hi = np.full_like(t_hi, _BIG)
        pick = [state == s for s in (_UPPER, _SPACE, _LOWER, _FULL)]
        pick3 = [p[:, None] for p in pick]
        fg_lo = np.select(pick3, [t_lo, free_lo, b_lo, s_lo])
        fg_hi = np.select(pick3, [t_hi, free_hi, b_hi, s_hi])
        bg_lo = np.select(pick3, [b_lo, s_lo, t_lo, free_lo])
        bg_hi = np.select(pick3, [b_hi, s_hi, t_hi, free_hi])
        mid = (t + b) // 2
        fg_want = np.select(pick3, [t, mid, b, mid])
        bg_want = np.select(pick3, [b, mid, t, mid])
        if truecolor:
            fg_index = bg_index = None
        else:
            ti = cells.top_index.reshape(-1)[flat].astype(np.int32)
            bi = cells.bottom_index.reshape(-1)[flat].astype(np.int32)
            fg_index = np.select(pick, [ti, ti, bi, ti])
            bg_index = np.select(pick, [bi, bi, ti, bi])
        fg_pen, fg_code = self._pens(fg_start, fg_lo, fg_hi, fg_want, state != _SPACE, fg_index, True)
        bg_pen, bg_code = self._pens(bg_start, bg_lo, bg_hi, bg_want, state != _FULL, bg_index, False)
        # ---- what each cell shows now
        upper_like = ((state == _UPPER) | (state == _FULL))[:, None]
        self._shown_top.reshape(-1, 3)[flat] = np.where(upper_like, fg_pen, bg_pen)
        lower_like = ((state == _LOWER) | (state == _FULL))[:, None]
        self._shown_bottom.reshape(-1, 3)[flat] = np.where(lower_like, fg_pen, bg_pen)
        rows = flat // cols
        col = flat - rows * cols
        # ---- cursor moves: none when the cell follows the previous one (and that one was not at the
        # right edge, where the terminal may be wrap-pending); CUF along a row, else CUP.
        move = np.ones(n, dtype=bool)
        cuf = np.zeros(n, dtype=bool)
        if n > 1:
            same_row = rows[1:] == rows[:-1]
            prev_col = col[:-1]
            move[1:] = ~(same_row & (col[1:] == prev_col + 1) & (prev_col + 1 < cols))
            cuf[1:] = same_row & (prev_col + 1 < cols) & move[1:]
        pieces = np.empty((n, 3), dtype=object)
        pieces[:, 0] = ""
        cup_at = np.flatnonzero(move & ~cuf)
        if cup_at.size:
            r1 = (rows[cup_at] + self.y0 + 1).tolist()
            c1 = (col[cup_at] + self.x0 + 1).tolist()
            pieces[cup_at, 0] = [f"{_CSI}{r}H" if c == 1 else f"{_CSI}{r};{c}H" for r, c in zip(r1, c1, strict=True)]
        cuf_at = np.flatnonzero(cuf)
        if cuf_at.size:
            gaps = (col[cuf_at] - col[cuf_at - 1] - 1).tolist()
            pieces[cuf_at, 0] = [f"{_CSI}{g}C" if g > 1 else f"{_CSI}C" for g in gaps]
        # ---- SGRs where a run starts with a pen the terminal does not have yet
        sgr_at = np.flatnonzero((fg_code != "") | (bg_code != ""))
        sgr = np.full(n, "", dtype=object)
        if sgr_at.size:
            sgr[sgr_at] = [
                f"{_CSI}{f};{g}m" if f and g else f"{_CSI}{f or g}m"
                for f, g in zip(fg_code[sgr_at].tolist(), bg_code[sgr_at].tolist(), strict=True)
            ]
        pieces[:, 1] = sgr
        pieces[:, 2] = _GLYPHS[state]
        stats.cells = n
        stats.spaces = int(((state == _SPACE) | (state == _FULL)).sum())
        stats.flips = int(((state == _LOWER) | (state == _FULL)).sum())
        stats.sgr, stats.cursor_moves = int(sgr_at.size), int(move.sum())
        return "".join(pieces.ravel().tolist())

    def _pens(
        self,
        start: npt.NDArray[np.bool_],
        lo: npt.NDArray[np.int32],
        hi: npt.NDArray[np.int32],
        want: npt.NDArray[np.int32],
        constrained: npt.NDArray[np.bool_],
        index: npt.NDArray[np.int32] | None,
        fg: bool,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.object_]]:
        """Per cell: the RGB its pen has, and the SGR parameter text where the pen must be set ("" if not).

        A run (from one `start` to the next) gets the point of its cells' common box nearest
        their mean wish, snapped to a xterm-256 colour when one lies in the box. Cells before the
        first start, and runs of free cells, set no pen. In palette modes boxes are single palette
        colours and the code is that colour's index. A code equal to the last one written is dropped.
        """
        n = lo.shape[0]
        starts = np.flatnonzero(start)
        if starts.size == 0 or starts[0] != 0:
            starts = np.concatenate(([0], starts))  # a leading stretch of free cells
        run_lo = np.maximum.reduceat(lo, starts, axis=0)
        run_hi = np.minimum.reduceat(hi, starts, axis=0)
        free = run_lo[:, 0] <= -_BIG  # every cell of the run takes any pen: none needed
        weight = constrained.astype(np.int32)
        count = np.add.reduceat(weight, starts)
        total = np.add.reduceat(want * weight[:, None], starts, axis=0)
        lo_c = np.clip(run_lo, 0, 255)
        hi_c = np.clip(run_hi, 0, 255)
        pen = np.clip(total // np.maximum(count, 1)[:, None], lo_c, hi_c)
        m = starts.size
        lead = "38;" if fg else "48;"
        if index is not None:  # palette modes: the box is the palette colour itself
            first = np.minimum(np.minimum.reduceat(np.where(constrained, np.arange(n), n), starts), n - 1)
            idx = np.clip(index[first], 0, 255)
            pen = PALETTE_256[idx].astype(np.int32)
            if self.mode in (ColorMode.COLOR16, ColorMode.MONO):  # mono: the grays of the 16
                code = np.array([str(c) for c in ansi16_sgr(idx, fg=fg).tolist()], dtype=object)
            else:
                code = np.array([lead + "5;" + _DEC[c] for c in idx.tolist()], dtype=object)
        else:
            pal = np.full(m, -1, dtype=np.int32)
            if self.palette_codes:
                # Nearest gray-ramp step to the pen's mean, if inside the box in all channels.
                k = np.clip(np.rint((pen.mean(axis=1) - 8) / 10), 0, 23).astype(np.int32)
                level = 8 + 10 * k
                gray_ok = (level >= lo_c.max(axis=1)) & (level <= hi_c.min(axis=1))
                # Else the nearest cube level per channel, if each is inside the box.
                cube = CUBE_LUT[pen]
                cube_rgb = CUBE_LEVELS[cube].astype(np.int32)
                cube_ok = ((cube_rgb >= lo_c) & (cube_rgb <= hi_c)).all(axis=1) & ~gray_ok
                pen = np.where(gray_ok[:, None], level[:, None], pen)
                pen = np.where(cube_ok[:, None], cube_rgb, pen)
                pal = np.where(gray_ok, 232 + k, pal)
                pal = np.where(cube_ok, 16 + 36 * cube[:, 0] + 6 * cube[:, 1] + cube[:, 2], pal)
            dec = _DEC
            code = np.array(
                [
                    f"{lead}5;{dec[p]}" if p >= 0 else f"{lead}2;{dec[r]};{dec[g]};{dec[bb]}"
                    for p, (r, g, bb) in zip(pal.tolist(), pen.tolist(), strict=True)
                ],
                dtype=object,
            )
        code[free] = ""
        # A run whose pen repeats the last one written (free runs in between change nothing) needs no code.
        set_at = np.flatnonzero(~free)
        if set_at.size > 1:
            repeat = code[set_at[1:]] == code[set_at[:-1]]
            code[set_at[1:][repeat]] = ""
        # Per cell: the pen the terminal has there (the last pen set at or before it).
        run_of = np.cumsum(_mask(n, starts)) - 1
        last_set = np.maximum.accumulate(np.where(free, -1, np.arange(m)))
        cell_pen = pen[np.maximum(last_set, 0)][run_of]
        cell_code = np.full(n, "", dtype=object)
        cell_code[starts] = code
        # Cells before any pen was set show garbage in that pen; they are free in it, so it is unused.
        return cell_pen, cell_code


def _mask(n: int, where: npt.NDArray[np.intp]) -> npt.NDArray[np.int32]:
    m = np.zeros(n, dtype=np.int32)
    m[where] = 1
    return m


Box = tuple[tuple[int, int, int], tuple[int, int, int]]


def _meet(box: Box | None, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> Box | None:
    """The intersection of a run's box with a cell's, or None if they do not meet."""
    if box is None:
        return None
    (a0, a1, a2), (b0, b1, b2) = box
    r0 = a0 if a0 > lo[0] else lo[0]
    r1 = b0 if b0 < hi[0] else hi[0]
    if r0 > r1:
        return None
    g0 = a1 if a1 > lo[1] else lo[1]
    g1 = b1 if b1 < hi[1] else hi[1]
    if g0 > g1:
        return None
    c0 = a2 if a2 > lo[2] else lo[2]
    c1 = b2 if b2 < hi[2] else hi[2]
    if c0 > c1:
        return None
    return (r0, g0, c0), (r1, g1, c1)


def _choose_glyphs(
    t_lo: npt.NDArray[np.int32],
    t_hi: npt.NDArray[np.int32],
    b_lo: npt.NDArray[np.int32],
    b_hi: npt.NDArray[np.int32],
    s_lo: npt.NDArray[np.int32],
    s_hi: npt.NDArray[np.int32],
    single: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Greedy, in write order: each cell's glyph, and where new fg and bg runs start.

    The fg and bg runs carry the intersection of their cells' boxes. A cell takes the glyph that
    costs least given them (a code per pen whose box misses the run's, plus the glyph's bytes):
    '▀' with top→fg and bottom→bg, else '▄' (swapped), else, when one colour fits both halves
    (`single`, box S), a space (S→bg) or '█' (S→fg). Ties keep the earlier option.
    """
    n = t_lo.shape[0]
    tl = list(map(tuple, t_lo.tolist()))
    th = list(map(tuple, t_hi.tolist()))
    bl = list(map(tuple, b_lo.tolist()))
    bh = list(map(tuple, b_hi.tolist()))
    sl = list(map(tuple, s_lo.tolist()))
    sh = list(map(tuple, s_hi.tolist()))
    one = single.tolist()
    state = bytearray(n)
    fg_new = bytearray(n)
    bg_new = bytearray(n)
    cost = _CODE_COST
    fg_run: Box | None = None
    bg_run: Box | None = None
    for i in range(n):
        top_box = (tl[i], th[i])
        bottom_box = (bl[i], bh[i])
        f_top = _meet(fg_run, tl[i], th[i])
        g_bottom = _meet(bg_run, bl[i], bh[i])
        best = 3 + (0 if f_top else cost) + (0 if g_bottom else cost)
        choice = _UPPER
        if best > 3:
            f_bottom = _meet(fg_run, bl[i], bh[i])
            g_top = _meet(bg_run, tl[i], th[i])
            c = 3 + (0 if f_bottom else cost) + (0 if g_top else cost)
            if c < best:
                best, choice = c, _LOWER
        if one[i] and best > 1:
            g_single = _meet(bg_run, sl[i], sh[i])
            c = 1 + (0 if g_single else cost)
            if c < best:
                best, choice = c, _SPACE
            if best > 3:
                f_single = _meet(fg_run, sl[i], sh[i])
                if 3 + (0 if f_single else cost) < best:
                    choice = _FULL
        state[i] = choice
        if choice == _UPPER:
            fg_new[i], bg_new[i] = f_top is None, g_bottom is None
            fg_run, bg_run = f_top or top_box, g_bottom or bottom_box
        elif choice == _LOWER:
            fg_new[i], bg_new[i] = f_bottom is None, g_top is None
            fg_run, bg_run = f_bottom or bottom_box, g_top or top_box
        elif choice == _SPACE:
            bg_new[i] = g_single is None
            bg_run = g_single or (sl[i], sh[i])
        else:
            fg_new[i] = f_single is None
            fg_run = f_single or (sl[i], sh[i])
    return (
        np.frombuffer(bytes(state), dtype=np.uint8),
        np.frombuffer(bytes(fg_new), dtype=np.bool_),
        np.frombuffer(bytes(bg_new), dtype=np.bool_),
    )
