"""Frames as half-block cells: each cell is '▀' with the top pixel as fg and the bottom as bg."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .modes import ColorMode
from .palette import quantize
from .resize import resize_area

__all__ = ["HALF_BLOCK", "RGB", "CellImage", "Run", "row_runs", "to_cells"]

#: UPPER HALF BLOCK: the foreground paints the top half of the cell, the background the bottom.
HALF_BLOCK = "\u2580"

RGB = tuple[int, int, int]
#: (foreground, background, number of consecutive cells) as returned by `row_runs`.
Run = tuple[RGB, RGB, int]


@dataclass(frozen=True, slots=True, eq=False)
class CellImage:
    """The colours of a block of half-block cells, already quantised for one colour mode.

    `top`/`bottom` are (rows, cols, 3) uint8: the RGB the terminal will paint (palette colours
    outside TRUECOLOR). `top_index`/`bottom_index` are (rows, cols) int16 palette indices for
    encoders (-1 in TRUECOLOR). The arrays are read-only so a frame shared between threads
    cannot change under a reader.
    """

    top: npt.NDArray[np.uint8]
    bottom: npt.NDArray[np.uint8]
    top_index: npt.NDArray[np.int16]
    bottom_index: npt.NDArray[np.int16]
    mode: ColorMode

    def __post_init__(self) -> None:
        rows, cols = self.top_index.shape
        if self.top.shape != (rows, cols, 3) or self.bottom.shape != (rows, cols, 3):
            raise ValueError(
                f"top/bottom must be ({rows}, {cols}, 3), got {self.top.shape}, {self.bottom.shape}"
            )
        if self.bottom_index.shape != (rows, cols):
            raise ValueError(f"bottom_index must be ({rows}, {cols}), got {self.bottom_index.shape}")
        for array in (self.top, self.bottom, self.top_index, self.bottom_index):
            array.setflags(write=False)

    @property
    def rows(self) -> int:
        """Height in cells."""
        return int(self.top_index.shape[0])

    @property
    def cols(self) -> int:
        """Width in cells."""
        return int(self.top_index.shape[1])


def to_cells(frame: npt.NDArray[np.uint8], cols: int, rows: int, mode: ColorMode) -> CellImage:
    """Resize an (H, W, 3) RGB frame to `cols`×`2*rows` pixels and quantise it into cells.

    The frame is stretched to exactly that size: keep the aspect ratio by passing a `fit()`
    placement's `cols` and `rows`.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    pixels = resize_area(frame, cols, 2 * rows)
    colours, index = quantize(pixels, mode)
    return CellImage(
        top=colours[0::2],
        bottom=colours[1::2],
        top_index=index[0::2],
        bottom_index=index[1::2],
        mode=mode,
    )


def row_runs(cells: CellImage, row: int) -> list[Run]:
    """Merge consecutive cells of one row that share both colours into (fg, bg, length) runs.

    A widget then builds one text segment (one style) per run instead of per cell. Boundaries are
    found with numpy; Python only touches one item per run.
    """
    if not -cells.rows <= row < cells.rows:
        raise IndexError(f"row {row} out of range for {cells.rows} rows")
    top = cells.top[row]
    bottom = cells.bottom[row]
    changed = np.any(top[1:] != top[:-1], axis=1) | np.any(bottom[1:] != bottom[:-1], axis=1)
    starts = np.concatenate(([0], np.flatnonzero(changed) + 1))
    lengths = np.diff(np.append(starts, cells.cols)).tolist()
    fgs: list[RGB] = list(map(tuple, top[starts].tolist()))
    bgs: list[RGB] = list(map(tuple, bottom[starts].tolist()))
    return list(zip(fgs, bgs, lengths, strict=True))
