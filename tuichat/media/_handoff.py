"""Bounded hand-offs between device threads and the asyncio loop.

A device thread must never block on the loop, and the loop must never wait on a lock held for long,
so both structures here are bounded and drop old data instead of growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T")


class LatestValue(Generic[T]):
    """A one-slot mailbox from a thread to the loop: a newer value replaces an unread one.

    Video wants the newest picture, not a backlog: a late frame is worth nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._has_value = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.dropped = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the loop that will ``get()``; must be called on that loop before the producer starts."""
        self._loop = loop
        self._event = asyncio.Event()
        with self._lock:
            if self._has_value or self._closed:
                self._event.set()

    def put(self, value: T) -> None:
        """Store ``value`` (from any thread), replacing an unread one."""
        with self._lock:
            if self._has_value:
                self.dropped += 1
            self._value = value
            self._has_value = True
        self._wake()

    def close(self) -> None:
        """Tell the consumer no more values will come (from any thread)."""
        with self._lock:
            self._closed = True
        self._wake()

    async def get(self) -> T | None:
        """Wait for the next value; ``None`` once closed and drained."""
        assert self._event is not None, "bind() the loop first"
        while True:
            with self._lock:
                if self._has_value:
                    value, self._value, self._has_value = self._value, None, False
                    return value
                if self._closed:
                    return None
                self._event.clear()
            await self._event.wait()

    def _wake(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            loop.call_soon_threadsafe(event.set)


class SampleFifo:
    """A bounded int16 sample ring shared by a writer and an audio callback.

    When full, the oldest samples are dropped (latency stays bounded); when empty, reads return
    silence. ``prefill`` samples must accumulate before playback (re)starts, so a jittery network
    does not turn into a crackle of tiny underruns.
    """

    def __init__(self, capacity: int, prefill: int = 0) -> None:
        if capacity <= 0 or not 0 <= prefill <= capacity:
            raise ValueError("need capacity > 0 and 0 <= prefill <= capacity")
        self.capacity = capacity
        self.prefill = prefill
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._start = 0
        self._fill = 0
        self._primed = prefill == 0
        self._lock = threading.Lock()
        self.dropped_samples = 0
        self.underruns = 0
        self.max_fill = 0
        self.closed = False

    def close(self) -> None:
        """No more writes will come: let whatever is buffered play out, even below ``prefill``."""
        with self._lock:
            self.closed = True
            self._primed = True

    @property
    def drained(self) -> bool:
        """Closed and empty: nothing left to play."""
        return self.closed and self._fill == 0

    def __len__(self) -> int:
        return self._fill

    def write(self, samples: NDArray[np.int16]) -> None:
        """Append samples, dropping the oldest ones if the ring would overflow."""
        samples = np.asarray(samples, dtype=np.int16).ravel()
        with self._lock:
            if len(samples) >= self.capacity:
                self.dropped_samples += self._fill + len(samples) - self.capacity
                self._buf[:] = samples[-self.capacity :]
                self._start, self._fill = 0, self.capacity
            else:
                overflow = self._fill + len(samples) - self.capacity
                if overflow > 0:
                    self._start = (self._start + overflow) % self.capacity
                    self._fill -= overflow
                    self.dropped_samples += overflow
                end = (self._start + self._fill) % self.capacity
                first = min(len(samples), self.capacity - end)
                self._buf[end : end + first] = samples[:first]
                self._buf[: len(samples) - first] = samples[first:]
                self._fill += len(samples)
            self.max_fill = max(self.max_fill, self._fill)
            if not self._primed and self._fill >= self.prefill:
                self._primed = True

    def read(self, n: int) -> NDArray[np.int16]:
        """Return exactly ``n`` samples, padded with silence if the ring runs short."""
        out = np.zeros(n, dtype=np.int16)
        with self._lock:
            if not self._primed:
                return out
            take = min(n, self._fill)
            first = min(take, self.capacity - self._start)
            out[:first] = self._buf[self._start : self._start + first]
            out[first:take] = self._buf[: take - first]
            self._start = (self._start + take) % self.capacity
            self._fill -= take
            if take < n and not self.closed:
                self.underruns += 1
                self._primed = self.prefill == 0
        return out
