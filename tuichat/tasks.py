"""Background tasks that are kept, cancelled on close and logged when they crash.

A bare ``create_task`` can be garbage-collected mid-run, and its exception surfaces only as
"Task exception was never retrieved" at exit, long after the fact and without the context.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


def log_unexpected_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: a task's exception goes to the log with its traceback."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("task %r failed", task.get_name(), exc_info=error)


class BackgroundTasks:
    """A set of tasks owned by one object; ``close`` cancels and awaits what is still running."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        log_unexpected_failure(task)

    async def close(self) -> None:
        """Cancel every task but the caller's own and wait for them to finish (idempotent)."""
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
