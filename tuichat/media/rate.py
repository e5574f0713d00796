"""Frames per second over a sliding window, for status lines and tests."""

from __future__ import annotations

import collections
import time

#: The window the rate is measured over.
FPS_WINDOW_S = 2.0
#: Arrival times kept at most (bounded even at absurd frame rates).
MAX_ARRIVALS = 1000


class FrameRate:
    """Call ``tick()`` per frame; ``fps`` counts the arrivals of the last ``window`` seconds only,
    so a stream that stalls reads as slowing down, not as its lifetime average."""

    def __init__(self, window: float = FPS_WINDOW_S) -> None:
        self.window = window
        self._arrivals: collections.deque[float] = collections.deque(maxlen=MAX_ARRIVALS)

    def tick(self) -> None:
        self._arrivals.append(time.monotonic())

    def clear(self) -> None:
        self._arrivals.clear()

    @property
    def fps(self) -> float:
        """Frames per second over the last ``window`` seconds (0.0 until two frames arrived)."""
        now = time.monotonic()
        while self._arrivals and now - self._arrivals[0] > self.window:
            self._arrivals.popleft()
        if len(self._arrivals) < 2:
            return 0.0
        span = now - self._arrivals[0]
        return (len(self._arrivals) - 1) / span if span > 0 else 0.0
