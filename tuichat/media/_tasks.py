"""One asyncio task per consumed track, kept, cancelled on close and logged when it crashes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiortc import MediaStreamTrack

log = logging.getLogger(__name__)


class TrackTasks:
    """Runs ``consume(track)`` in its own task for each added track.

    Owning the tasks here means none is fire-and-forget: ``remove`` and ``close`` cancel and await
    them, and an unexpected exception is logged with its traceback instead of vanishing.
    """

    def __init__(self, consume: Callable[[MediaStreamTrack], Awaitable[None]], name: str) -> None:
        self._consume = consume
        self._name = name
        self._tasks: dict[MediaStreamTrack, asyncio.Task[None]] = {}

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
        try:
            await self._consume(track)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: consuming track %s failed", self._name, track.id)
        finally:
            if self._tasks.get(track) is asyncio.current_task():
                del self._tasks[track]
