"""Timestamps for frames that arrive when they arrive (cameras, decoded files)."""

from __future__ import annotations

import asyncio
import math
import time

from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE  # RTP's 90 kHz video clock
from av import VideoFrame

__all__ = ["VIDEO_CLOCK_RATE", "VIDEO_TIME_BASE", "Pacer", "WallClockPts"]


class WallClockPts:
    """Stamps each frame with the time since the first one, at 90 kHz, never repeating a pts
    (encoders reject a frame whose pts does not move forward)."""

    def __init__(self) -> None:
        self._t0: float | None = None
        self._last = -1

    def stamp(self, frame: VideoFrame, at: float | None = None) -> VideoFrame:
        """Set ``frame``'s pts from ``at`` (a ``time.monotonic()`` reading; now if None), such as
        when a camera captured it, so the time it waited to be read does not count."""
        now = time.monotonic() if at is None else at
        if self._t0 is None:
            self._t0 = now
        self._last = max(round((now - self._t0) * VIDEO_CLOCK_RATE), self._last + 1)
        frame.pts = self._last
        frame.time_base = VIDEO_TIME_BASE
        return frame


#: How far behind its schedule a paced source may fall before it skips ahead rather than bursts.
MAX_LAG_S = 0.25


class Pacer:
    """Hands out slot numbers at ``rate`` a second in real time, for sources that make their own
    frames (the test pattern, the tone). After a stall longer than ``max_lag`` it skips the missed
    slots instead of producing them in a burst, so the receiver sees a gap, not a flood."""

    def __init__(self, rate: float, *, max_lag: float = MAX_LAG_S) -> None:
        self.rate = rate
        self.max_lag = max_lag
        self.slot = 0
        self._t0: float | None = None

    async def next_slot(self) -> int:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
            return self.slot
        self.slot += 1
        due = self._t0 + self.slot / self.rate
        if now - due > self.max_lag:
            self.slot = math.ceil((now - self._t0) * self.rate)
            due = self._t0 + self.slot / self.rate
        if due > now:
            await asyncio.sleep(due - now)
        return self.slot
