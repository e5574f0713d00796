"""A synthetic camera whose pictures can be checked after a trip through a codec.

Layout (fractions of the frame, so it holds at any size):

* ``BAR_BAND`` (top 40 %): four vertical bars of equal width, left to right pure red, green, blue and
  white (``BARS`` gives name, RGB and x-range). Saturated colours survive VP8 and downscaling, so a
  receiver can tell that colour channels were not swapped or lost.
* Middle: dark gray (``BACKGROUND``) with a bouncing yellow circle, a sliding cyan square (motion for
  the encoder), the wall clock ``HH:MM:SS.s`` and an optional label (the bot's name).
* ``COUNTER_BAND`` (bottom 12 %): ``COUNTER_BLOCKS`` equal blocks across the full width: an always-white
  reference, the frame counter as ``COUNTER_BITS`` bits (most significant first, white = 1), and an
  always-black reference. The references let ``read_counter`` threshold adaptively, so it works after
  lossy compression and scaling down to 64×32 pixels. The counter wraps at ``COUNTER_MODULO``.

``TestPatternTrack.sent_at(n)`` tells when counter ``n`` was produced (``time.monotonic()``), so a
benchmark can measure glass-to-glass latency from a received picture alone.
"""

from __future__ import annotations

import math
import time
from typing import Any

import cv2
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from numpy.typing import NDArray

from ._clock import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, Pacer

__all__ = [
    "BACKGROUND",
    "BARS",
    "BAR_BAND",
    "COUNTER_BAND",
    "COUNTER_BITS",
    "COUNTER_BLOCKS",
    "COUNTER_MODULO",
    "TestPatternTrack",
    "read_counter",
    "render_test_pattern",
    "stamp_counter",
]

RGB = tuple[int, int, int]

BAR_BAND: tuple[float, float] = (0.0, 0.4)
BARS: list[tuple[str, RGB, tuple[float, float]]] = [
    ("red", (255, 0, 0), (0.0, 0.25)),
    ("green", (0, 255, 0), (0.25, 0.5)),
    ("blue", (0, 0, 255), (0.5, 0.75)),
    ("white", (255, 255, 255), (0.75, 1.0)),
]
BACKGROUND: RGB = (48, 48, 48)
COUNTER_BAND: tuple[float, float] = (0.88, 1.0)
COUNTER_BITS = 12
COUNTER_MODULO = 1 << COUNTER_BITS
COUNTER_BLOCKS = COUNTER_BITS + 2  # white reference, bits, black reference

CIRCLE_COLOUR: RGB = (255, 210, 0)
SQUARE_COLOUR: RGB = (0, 200, 255)
TEXT_COLOUR: RGB = (230, 230, 230)


# The reference blocks must differ by this much (0..255 luma) for a counter to be trusted.
MIN_REFERENCE_CONTRAST = 64.0


def _rows(band: tuple[float, float], height: int) -> tuple[int, int]:
    return round(band[0] * height), round(band[1] * height)


def _block_edges(width: int) -> list[tuple[int, int]]:
    return [
        (round(i * width / COUNTER_BLOCKS), round((i + 1) * width / COUNTER_BLOCKS))
        for i in range(COUNTER_BLOCKS)
    ]


def stamp_counter(rgb: NDArray[np.uint8], n: int) -> NDArray[np.uint8]:
    """Draw counter ``n`` (mod ``COUNTER_MODULO``) into the bottom band of ``rgb`` in place; returns it."""
    h, w = rgb.shape[:2]
    y0, y1 = _rows(COUNTER_BAND, h)
    n %= COUNTER_MODULO
    for i, (x0, x1) in enumerate(_block_edges(w)):
        if i == 0:
            on = True
        elif i == COUNTER_BLOCKS - 1:
            on = False
        else:
            on = bool(n >> (COUNTER_BITS - i) & 1)
        rgb[y0:y1, x0:x1] = 255 if on else 0
    return rgb


def read_counter(rgb: NDArray[Any]) -> int | None:
    """Read the counter back from an RGB image of the whole frame (any size down to 64×32).

    Samples the centre half of each block, compares against the midpoint of the two reference blocks,
    and returns ``None`` when the references do not contrast (not a test pattern, or too damaged).
    """
    h, w = rgb.shape[:2]
    y0, y1 = COUNTER_BAND[0] * h, COUNTER_BAND[1] * h
    band_h = y1 - y0
    r0 = math.floor(y0 + band_h * 0.3)
    r1 = max(r0 + 1, math.ceil(y0 + band_h * 0.75))
    luma = rgb[r0:r1].astype(np.float32).mean(axis=2)
    levels = []
    for i in range(COUNTER_BLOCKS):
        bx0, bx1 = i * w / COUNTER_BLOCKS, (i + 1) * w / COUNTER_BLOCKS
        c0 = math.floor(bx0 + (bx1 - bx0) * 0.3)
        c1 = max(c0 + 1, math.ceil(bx0 + (bx1 - bx0) * 0.7))
        levels.append(float(luma[:, c0:c1].mean()))
    white, black = levels[0], levels[-1]
    if white - black < MIN_REFERENCE_CONTRAST:
        return None
    threshold = (white + black) / 2
    value = 0
    for level in levels[1:-1]:
        value = value << 1 | (level > threshold)
    return value


def _background(width: int, height: int) -> NDArray[np.uint8]:
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    y0, y1 = _rows(BAR_BAND, height)
    for _name, colour, (fx0, fx1) in BARS:
        img[y0:y1, round(fx0 * width) : round(fx1 * width)] = colour
    return img


def _triangle(t: float) -> float:
    """0 → 1 → 0 over one unit of ``t``: a bounce without a discontinuity."""
    t %= 1.0
    return 2 * t if t < 0.5 else 2 - 2 * t


def render_test_pattern(
    width: int,
    height: int,
    n: int,
    t: float,
    *,
    label: str = "",
    wall_time: float | None = None,
    background: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """Render frame ``n`` at ``t`` seconds after start as an RGB array (pure function of its inputs)."""
    img = background.copy() if background is not None else _background(width, height)
    top = _rows(BAR_BAND, height)[1]
    bottom = _rows(COUNTER_BAND, height)[0]
    mid_h = bottom - top
    scale = max(height / 480, 0.25)
    thickness = max(1, round(2 * scale))

    radius = max(2, round(mid_h * 0.12))
    cx = radius + round(_triangle(t / 4.0) * (width - 2 * radius - 1))
    cy = top + radius + round(_triangle(t / 1.7) * max(0, mid_h - 2 * radius - 1))
    cv2.circle(img, (cx, cy), radius, CIRCLE_COLOUR, -1, cv2.LINE_AA)

    side = max(2, round(mid_h * 0.18))
    sx = round(((t / 6.0) % 1.0) * (width + side)) - side
    sy = bottom - side - max(1, round(mid_h * 0.05))
    cv2.rectangle(img, (sx, sy), (sx + side, sy + side), SQUARE_COLOUR, -1)

    wall = time.time() if wall_time is None else wall_time
    clock = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 10) % 10}"
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(
        img,
        clock,
        (round(8 * scale), top + round(mid_h * 0.3)),
        font,
        scale,
        TEXT_COLOUR,
        thickness,
        cv2.LINE_AA,
    )
    if label:
        cv2.putText(
            img,
            label,
            (round(8 * scale), top + round(mid_h * 0.6)),
            font,
            scale,
            TEXT_COLOUR,
            thickness,
            cv2.LINE_AA,
        )
    return stamp_counter(img, n)


class TestPatternTrack(VideoStreamTrack):
    """A video track of test-pattern frames paced in real time; see the module docstring."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15, *, label: str = "") -> None:
        super().__init__()
        if width < 64 or height < 32 or fps <= 0:
            raise ValueError("a test pattern needs at least 64×32 pixels and a positive frame rate")
        self.width, self.height, self.fps, self.label = width, height, fps, label
        self.frame_count = 0
        self._background = _background(width, height)
        self._sent_at: dict[int, float] = {}  # keyed by counter value: never more than COUNTER_MODULO
        self._pacer = Pacer(fps)
        self._slot = 0

    def sent_at(self, n: int) -> float | None:
        """When (``time.monotonic()``) the frame stamped with counter ``n`` was most recently produced."""
        return self._sent_at.get(n % COUNTER_MODULO)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._slot = await self._pacer.next_slot()
        if self.readyState != "live":
            raise MediaStreamError
        n = self.frame_count % COUNTER_MODULO
        t = self._slot / self.fps
        img = render_test_pattern(
            self.width, self.height, n, t, label=self.label, background=self._background
        )
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = round(self._slot * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self._sent_at[n] = time.monotonic()
        self.frame_count += 1
        return frame
