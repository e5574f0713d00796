"""Frames to half-block terminal cells: scaling, letterboxing, palettes, ANSI. Numpy only.

Nothing here imports Textual, Rich or a media library, so it is tested and benchmarked alone.
"""

from .ansi import encode_ansi
from .cells import HALF_BLOCK, RGB, CellImage, Run, row_runs, to_cells
from .layout import Placement, fit
from .modes import ColorMode, detect_color_mode
from .palette import CUBE_LEVELS, GRAY_LEVELS, MONO_INDICES, PALETTE_16, PALETTE_256, quantize
from .resize import resize_area

__all__ = [
    "CUBE_LEVELS",
    "GRAY_LEVELS",
    "HALF_BLOCK",
    "MONO_INDICES",
    "PALETTE_16",
    "PALETTE_256",
    "RGB",
    "CellImage",
    "ColorMode",
    "Placement",
    "Run",
    "detect_color_mode",
    "encode_ansi",
    "fit",
    "quantize",
    "resize_area",
    "row_runs",
    "to_cells",
]
