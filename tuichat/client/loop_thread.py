"""An asyncio loop on its own thread: network and media work stay off the UI's loop.

Textual's output writer can block its loop on a slow terminal link; a call's signalling and media
must keep running regardless, so the client lives here and talks to the UI through messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "tuichat-client") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Cancel whatever is left so nothing is destroyed while pending.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on this thread's loop; await the result with ``asyncio.wrap_future``."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """From another loop: run ``coroutine`` here and await its result there."""
        return await asyncio.wrap_future(self.submit(coroutine))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and join the thread (idempotent)."""
        if self._started and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
