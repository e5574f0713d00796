"""A full-redraw ANSI writer for cells: the honest baseline and what pyte tests read back."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .cells import HALF_BLOCK, CellImage
from .modes import ColorMode
from .palette import ansi16_sgr

__all__ = ["encode_ansi"]

_ESC = "\x1b["
_RESET = "\x1b[0m"


def _codes(cells: CellImage, fg: bool) -> list[list[str]]:
    """SGR parameter strings for every cell's foreground or background, one list per row."""
    mode = cells.mode
    if mode is ColorMode.TRUECOLOR:
        rgb = cells.top if fg else cells.bottom
        lead = "38;2;" if fg else "48;2;"
        return [[f"{lead}{r};{g};{b}" for r, g, b in line] for line in rgb.tolist()]
    index = cells.top_index if fg else cells.bottom_index
    if mode in (ColorMode.COLOR16, ColorMode.MONO):  # mono: the grays of the 16
        return [[str(n) for n in line] for line in ansi16_sgr(index, fg=fg).tolist()]
    lead = "38;5;" if fg else "48;5;"
    return [[f"{lead}{n}" for n in line] for line in index.tolist()]


def _changes(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Per row, True where a cell's colour differs from the cell before it (and at column 0)."""
    out = np.ones(keys.shape, dtype=bool)
    out[:, 1:] = keys[:, 1:] != keys[:, :-1]
    return out


def _keys(cells: CellImage, fg: bool) -> npt.NDArray[np.int64]:
    """One integer per cell identifying its colour, so changes are cheap to find."""
    if cells.mode is ColorMode.TRUECOLOR:
        rgb = (cells.top if fg else cells.bottom).astype(np.int64)
        return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return (cells.top_index if fg else cells.bottom_index).astype(np.int64)


def encode_ansi(cells: CellImage, x0: int = 0, y0: int = 0) -> bytes:
    """Draw every cell at (x0, y0) (0-based) with '▀', as UTF-8 bytes for a terminal.

    Each row starts with a cursor move and ends with a reset, so rows are independent; within a
    row an SGR is written only when the fg or bg differs from the previous cell, and a run of
    identical cells is one string of '▀'.
    """
    if x0 < 0 or y0 < 0:
        raise ValueError(f"origin must be non-negative, got ({x0}, {y0})")
    fg_change = _changes(_keys(cells, fg=True))
    bg_change = _changes(_keys(cells, fg=False))
    fg_codes = _codes(cells, fg=True)
    bg_codes = _codes(cells, fg=False)
    out: list[str] = []
    for row in range(cells.rows):
        out.append(f"{_ESC}{y0 + row + 1};{x0 + 1}H")
        fgc, bgc = fg_change[row], bg_change[row]
        starts = np.flatnonzero(fgc | bgc)
        lengths = np.diff(np.append(starts, cells.cols)).tolist()
        fg_line, bg_line = fg_codes[row], bg_codes[row]
        for col, n, f, b in zip(
            starts.tolist(), lengths, fgc[starts].tolist(), bgc[starts].tolist(), strict=True
        ):
            if f and b:
                out.append(f"{_ESC}{fg_line[col]};{bg_line[col]}m")
            elif f:
                out.append(f"{_ESC}{fg_line[col]}m")
            else:
                out.append(f"{_ESC}{bg_line[col]}m")
            out.append(HALF_BLOCK * n)
        out.append(_RESET)
    return "".join(out).encode("utf-8")
