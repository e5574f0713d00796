"""Keeps the newest picture of a remote video track, for a renderer that draws at its own pace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from numpy.typing import NDArray

from ._tasks import FrameFailures
from .rate import FrameRate

__all__ = ["LatestFrameSink"]

log = logging.getLogger(__name__)


class LatestFrameSink:
    """Consumes one video track in a task and keeps only its newest frame as an RGB array.

    Reading the track as fast as it delivers keeps aiortc's queues empty; the renderer takes
    ``latest`` whenever it redraws, so a slow screen drops frames instead of adding delay. A frame
    that fails (its conversion or a callback raising) is dropped and counted in ``frame_errors``;
    the reading stops only when the track ends or ``stop()`` is called, since aiortc's queue
    behind an unread track grows without bound.
    """

    def __init__(
        self,
        track: MediaStreamTrack,
        on_frame: Callable[[NDArray[np.uint8]], None] | None = None,
        on_resize: Callable[[int, int], None] | None = None,
        on_ended: Callable[[], None] | None = None,
    ) -> None:
        self.track = track
        self.on_frame, self.on_resize, self.on_ended = on_frame, on_resize, on_ended
        self.latest: NDArray[np.uint8] | None = None
        self.frames_received = 0
        self.size: tuple[int, int] | None = None
        self.ended = False
        self._rate = FrameRate()
        self._failures = FrameFailures(f"video track {track.id}")
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def frame_errors(self) -> int:
        """Frames dropped because converting them or a callback raised."""
        return self._failures.count

    @property
    def fps(self) -> float:
        """Frames per second over the last two seconds (0.0 until two frames arrived)."""
        return self._rate.fps

    def start(self) -> None:
        """Start consuming the track (needs a running loop; idempotent)."""
        if self._task is None:
            self._changed = asyncio.Condition()
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"latest frame {self.track.id}")

    async def stop(self) -> None:
        """Stop consuming (the track itself is left alone); idempotent."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_frames(self, n: int, timeout: float = 5.0) -> None:
        """Wait until ``n`` frames in all have arrived; ``TimeoutError`` if not in time or the track ends."""
        if self._changed is None:
            raise RuntimeError("start() the sink first")
        cond = self._changed
        async with asyncio.timeout(timeout), cond:
            await cond.wait_for(lambda: self.frames_received >= n or self.ended)
        if self.frames_received < n:
            raise TimeoutError(f"the track ended after {self.frames_received} of {n} frames")

    async def _run(self) -> None:
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    break
                if isinstance(frame, VideoFrame):
                    try:
                        self._accept(frame)
                    except Exception:
                        self._failures.record()
                    await self._notify()
        except Exception:  # recv() itself broke: the track is unusable, not one frame
            log.exception("reading video track %s failed", self.track.id)
        finally:
            self._failures.summary()
            self.ended = True
            await self._notify()
        # Reached only when the track ended (or failed), not when stop() cancelled us.
        if self.on_ended is not None:
            try:
                self.on_ended()
            except Exception:
                log.exception("on_ended callback failed")

    def _accept(self, frame: VideoFrame) -> None:
        rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        size = (frame.width, frame.height)
        resized = size != self.size
        self.size = size
        self.latest = rgb
        self.frames_received += 1
        self._rate.tick()
        if resized and self.on_resize is not None:
            self.on_resize(*size)
        if self.on_frame is not None:
            self.on_frame(rgb)

    async def _notify(self) -> None:
        cond = self._changed
        if cond is not None:
            async with cond:
                cond.notify_all()
