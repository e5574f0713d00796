"""Terminal palettes (xterm's 16 and 256 colours) and vectorised nearest-colour quantisation."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from .modes import ColorMode

__all__ = ["CUBE_LEVELS", "CUBE_LUT", "GRAY_LEVELS", "MONO_INDICES", "PALETTE_16", "PALETTE_256", "ansi16_sgr",
           "quantize"]

#: xterm's default RGB values for the 16 ANSI colours (0–7 normal, 8–15 bright). Real terminals
#: differ (each theme has its own); these are what `38;5;n` means in xterm and in pyte.
PALETTE_16: npt.NDArray[np.uint8] = np.array(
    [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0),
        (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
        (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0),
        (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ],
    dtype=np.uint8,
)  # fmt: skip

#: Channel levels of the 6×6×6 cube (indices 16–231, index = 16 + 36r + 6g + b).
CUBE_LEVELS: npt.NDArray[np.uint8] = np.array([0, 95, 135, 175, 215, 255], dtype=np.uint8)
#: Levels of the 24-step gray ramp (indices 232–255).
GRAY_LEVELS: npt.NDArray[np.uint8] = (8 + 10 * np.arange(24)).astype(np.uint8)


def _build_palette_256() -> npt.NDArray[np.uint8]:
    """The full xterm 256-colour table: the 16 ANSI colours, the cube, the gray ramp."""
    r, g, b = np.meshgrid(CUBE_LEVELS, CUBE_LEVELS, CUBE_LEVELS, indexing="ij")
    cube = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)
    gray = np.repeat(GRAY_LEVELS[:, None], 3, axis=1)
    return np.concatenate([PALETTE_16, cube, gray]).astype(np.uint8)


PALETTE_256: npt.NDArray[np.uint8] = _build_palette_256()

#: The grays MONO uses, darkest first: the 16 ANSI colours' black, bright black, white and bright
#: white. Mono is the 16-colour interface's video (NO_COLOR, TERM=dumb, ``--colors mono``): the
#: 256-colour gray ramp would send codes the rest of the screen avoids. Ordered dithering between
#: neighbouring grays makes up for having four.
MONO_INDICES: npt.NDArray[np.int16] = np.array([0, 8, 7, 15], dtype=np.int16)

for _table in (PALETTE_16, CUBE_LEVELS, GRAY_LEVELS, PALETTE_256, MONO_INDICES):
    _table.setflags(write=False)


def _nearest_level_lut(levels: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """For each byte value 0–255, the position of the nearest level (ties go to the lower one)."""
    values = np.arange(256)[:, None]
    return np.abs(values - levels[None, :].astype(np.int64)).argmin(axis=1)


# Per-channel lookup tables: all 256-colour and mono quantisation is gathers and arithmetic.
#: Each channel value 0–255 → its nearest cube level (0–5).
CUBE_LUT = _nearest_level_lut(CUBE_LEVELS)


def _mono_tables() -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], npt.NDArray[np.float32]]:
    """For each luma 0–255: the gray at or below it, the gray above it, and how far it lies between."""
    levels = PALETTE_16[MONO_INDICES][:, 0].astype(np.int32)
    luma = np.arange(256)
    lower = np.searchsorted(levels, luma, side="right") - 1
    upper = np.minimum(lower + 1, len(levels) - 1)
    span = np.maximum(levels[upper] - levels[lower], 1)
    fraction = np.where(upper > lower, (luma - levels[lower]) / span, 0.0).astype(np.float32)
    return MONO_INDICES[lower], MONO_INDICES[upper], fraction


_MONO_LOWER, _MONO_UPPER, _MONO_FRACTION = _mono_tables()
#: A 4×4 Bayer matrix as thresholds in (0, 1): a pixel takes the upper gray where its fraction
#: between the two passes the threshold at its place, so an area averages to its true luma.
_BAYER_4 = ((np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) + 0.5) / 16).astype(np.float32)


def ansi16_sgr(index: npt.NDArray[np.integer], *, fg: bool) -> npt.NDArray[np.int64]:
    """The SGR parameter of each 16-colour index: 0–7 → 30–37 (fg) / 40–47 (bg); 8–15, the bright
    colours, → aixterm's 90–97 / 100–107 (shorter than ``38;5;n``, and what 16-colour terminals know)."""
    index = np.asarray(index, dtype=np.int64)
    return np.where(index < 8, 30, 82) + (0 if fg else 10) + index


def _redmean_sq(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Squared "redmean" distance between RGB arrays (compuphase's low-cost perceptual metric).

    Plain Euclidean RGB distance sends too many dark and saturated colours to the wrong palette
    entry; weighting channels by the mean red level is a cheap, well-known improvement.
    """
    rmean = (a[..., 0] + b[..., 0]) * 0.5
    d = a - b
    d *= d
    return (2.0 + rmean / 256.0) * d[..., 0] + 4.0 * d[..., 1] + (2.0 + (255.0 - rmean) / 256.0) * d[..., 2]


def _quantize_256(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Nearest of the cube (16–231) and the gray ramp (232–255), much as tmux picks.

    The candidates are the cube colour nearest per channel and the two ramp steps around the
    channel mean; the closest of the three by redmean wins. Exact per pixel, unlike a 5-bit RGB
    LUT, whose bins straddle palette entries (it would send 128,128,128 to cube 102).
    """
    cube = CUBE_LUT[px]  # (N, 3) levels 0..5
    best = (16 + 36 * cube[:, 0] + 6 * cube[:, 1] + cube[:, 2]).astype(np.int16)
    pf = px.astype(np.float32)
    best_d = _redmean_sq(pf, PALETTE_256[best].astype(np.float32))
    mean = px.astype(np.int16).sum(axis=1) // 3
    below = (232 + np.clip((mean - 8) // 10, 0, 22)).astype(np.int16)
    for gray in (below, below + 1):
        d = _redmean_sq(pf, PALETTE_256[gray].astype(np.float32))
        closer = d < best_d
        best = np.where(closer, gray, best)
        best_d = np.where(closer, d, best_d)
    return best


def _quantize_16_exact(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Nearest of the 16 ANSI colours by redmean distance, by brute force over all 16."""
    pf = px.astype(np.float32)[:, None, :]
    dist = _redmean_sq(pf, PALETTE_16.astype(np.float32)[None, :, :])
    return dist.argmin(axis=1).astype(np.int16)


@cache
def _lut_16() -> npt.NDArray[np.int16]:
    """A 32×32×32 table of `_quantize_16_exact` at each 5-bit bin's centre, built on first use.

    Brute force costs ~4.5 ms per 160×90 frame; the table makes it one gather (~0.2 ms). The
    16 colours are far apart, so 8-level bins lose nothing visible (each colour still maps to itself).
    """
    centres = (np.arange(32, dtype=np.uint8) << 3) + 4
    r, g, b = np.meshgrid(centres, centres, centres, indexing="ij")
    lut = _quantize_16_exact(np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1))
    lut.setflags(write=False)
    return lut


def _quantize_16(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Nearest ANSI colour through the 5-bit lookup table."""
    q = (px >> 3).astype(np.uint16)
    return _lut_16()[(q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]]


def _quantize_mono(px: npt.NDArray[np.uint8], shape: tuple[int, ...]) -> npt.NDArray[np.int16]:
    """The pixel's BT.601 luma (what webcams' YCbCr uses) dithered between the two grays around it.

    ``shape`` is the pixels' own: an image (rows, columns) is dithered by position; anything else
    gets the nearest gray.
    """
    p = px.astype(np.uint32)
    luma = (77 * p[:, 0] + 150 * p[:, 1] + 29 * p[:, 2] + 128) >> 8
    if len(shape) >= 2:
        rows, cols = shape[-2:]
        threshold = np.tile(_BAYER_4, ((rows + 3) // 4, (cols + 3) // 4))[:rows, :cols]
        threshold = np.broadcast_to(threshold, shape).reshape(-1)
    else:
        threshold = np.full(luma.shape, 0.5, dtype=np.float32)
    return np.where(_MONO_FRACTION[luma] > threshold, _MONO_UPPER[luma], _MONO_LOWER[luma])


def quantize(
    pixels: npt.NDArray[np.uint8], mode: ColorMode
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """Map (..., 3) uint8 RGB to what `mode` can show: (the colours shown, their palette indices).

    TRUECOLOR keeps the pixels (a copy) with index -1; the other modes return the palette RGB of
    the chosen index, so the colours describe exactly what the terminal will paint.
    """
    if pixels.dtype != np.uint8 or pixels.ndim < 1 or pixels.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) uint8 pixels, got {pixels.dtype} {pixels.shape}")
    shape = pixels.shape[:-1]
    if mode is ColorMode.TRUECOLOR:
        return pixels.copy(), np.full(shape, -1, dtype=np.int16)
    flat = np.ascontiguousarray(pixels).reshape(-1, 3)
    if mode is ColorMode.COLOR256:
        index = _quantize_256(flat)
    elif mode is ColorMode.COLOR16:
        index = _quantize_16(flat)
    elif mode is ColorMode.MONO:
        index = _quantize_mono(flat, shape)
    else:  # pragma: no cover - exhaustive over the enum
        raise ValueError(f"unsupported colour mode {mode!r}")
    index = index.reshape(shape)
    return PALETTE_256[index], index
