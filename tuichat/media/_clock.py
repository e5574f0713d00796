"""Timestamps for frames that arrive when they arrive (cameras, decoded files)."""

from __future__ import annotations

import fractions
import time

from av import VideoFrame

#: RTP's video clock.
VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)


class WallClockPts:
    """Stamps each frame with the time since the first one, at 90 kHz, never repeating a pts
    (encoders reject a frame whose pts does not move forward)."""

    def __init__(self) -> None:
        self._t0: float | None = None
        self._last = -1

    def stamp(self, frame: VideoFrame) -> VideoFrame:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        self._last = max(round((now - self._t0) * VIDEO_CLOCK_RATE), self._last + 1)
        frame.pts = self._last
        frame.time_base = VIDEO_TIME_BASE
        return frame
