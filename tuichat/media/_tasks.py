"""One asyncio task per consumed track, kept, cancelled on close and logged when it crashes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

log = logging.getLogger(__name__)


class FrameFailures:
    """Counts the frames a receive loop failed to handle, logging only the first with its traceback.

    A loop that stopped at a bad frame would leave aiortc's unbounded track queue to grow for good,
    and one that logged every failure would flood the log at the frame rate: so it counts.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0

    def record(self) -> None:
        """Call from an ``except`` block: the first failure is logged with its traceback."""
        self.count += 1
        if self.count == 1:
            log.exception("%s: handling a frame failed; the frame is dropped, later failures are counted", self.what)

    def summary(self) -> None:
        """Log how many frames failed in all, if more than the one already logged."""
        if self.count > 1:
            log.warning("%s: %d frames failed and were dropped", self.what, self.count)


class TrackTasks:
    """Reads each added track in its own task and passes every frame to ``on_frame(track, frame)``.

    Owning the tasks here means none is fire-and-forget: ``remove`` and ``close`` cancel and await
    them. Owning the loop means the draining never stops early: a frame ``on_frame`` fails on is
    dropped and counted (``frame_errors``), and only the track's end or cancellation ends a task.
    ``on_end(track)`` runs when a track ends by itself; after ``remove`` or ``close`` the caller
    cleans up (a track removed and added again must not lose its new state to the old task).
    """

    def __init__(
        self,
        on_frame: Callable[[MediaStreamTrack, Frame | Packet], None],
        name: str,
        *,
        on_end: Callable[[MediaStreamTrack], None] | None = None,
    ) -> None:
        self._on_frame = on_frame
        self._on_end = on_end
        self._name = name
        self._tasks: dict[MediaStreamTrack, asyncio.Task[None]] = {}
        #: Frames dropped because ``on_frame`` raised, over every track.
        self.frame_errors = 0

    def __contains__(self, track: object) -> bool:
        return track in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, track: MediaStreamTrack) -> None:
        """Start consuming ``track`` (needs a running loop); adding it twice is a no-op."""
        if track in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(track), name=f"{self._name} {track.id}")
        self._tasks[track] = task

    def remove(self, track: MediaStreamTrack) -> None:
        """Stop consuming ``track``: its task is cancelled and finishes on the next loop turn."""
        task = self._tasks.pop(track, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def close(self) -> None:
        """Cancel every task and wait until they have finished (idempotent)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, track: MediaStreamTrack) -> None:
        failures = FrameFailures(f"{self._name}: track {track.id}")
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                try:
                    self._on_frame(track, frame)
                except Exception:
                    self.frame_errors += 1
                    failures.record()
        except asyncio.CancelledError:
            raise
        except Exception:  # recv() itself broke: the track is unusable, not one frame
            log.exception("%s: reading track %s failed", self._name, track.id)
        finally:
            failures.summary()
            if self._tasks.get(track) is asyncio.current_task():  # it ended by itself
                del self._tasks[track]
                if self._on_end is not None:
                    try:
                        self._on_end(track)
                    except Exception:
                        log.exception("%s: cleaning up after track %s failed", self._name, track.id)
