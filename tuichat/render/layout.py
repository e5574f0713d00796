"""Where a video frame goes inside a cell area: the largest centred box that keeps its aspect."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Placement", "fit"]


@dataclass(frozen=True, slots=True)
class Placement:
    """A rectangle of terminal cells, relative to the area it was fitted into."""

    x: int
    y: int
    cols: int
    rows: int

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width, height) in half-block pixels: each cell is one pixel wide and two tall."""
        return self.cols, 2 * self.rows


def fit(src_width: int, src_height: int, cols: int, rows: int) -> Placement:
    """Letterbox or pillarbox a `src_width`×`src_height` frame into `cols`×`rows` cells.

    A half-block cell is 1×2 pixels, so the area is `cols`×`2*rows` pixels; the frame is scaled by
    `min(cols/src_width, 2*rows/src_height)` (never stretched), rounded to whole cells, at least 1×1,
    and centred (odd leftovers go right/bottom).
    """
    if src_width <= 0 or src_height <= 0:
        raise ValueError(f"source size must be positive, got {src_width}x{src_height}")
    if cols <= 0 or rows <= 0:
        raise ValueError(f"cell area must be positive, got {cols}x{rows}")
    scale = min(cols / src_width, 2 * rows / src_height)
    # Round half up (not banker's rounding); the scale keeps both within the area already, the
    # min() only guards against float noise.
    out_cols = min(cols, max(1, int(src_width * scale + 0.5)))
    out_rows = min(rows, max(1, int(src_height * scale / 2 + 0.5)))
    return Placement((cols - out_cols) // 2, (rows - out_rows) // 2, out_cols, out_rows)
