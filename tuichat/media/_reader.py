"""Waiting for a source's reader thread, for the sources whose ``stop()`` does not.

A camera read or a pipe read can block for seconds, so ``stop()`` only asks the thread to end; the
thread releases the device (closes the file) on its own way out. Where that matters (quitting,
reopening the same device) these wait for it.
"""

from __future__ import annotations

import asyncio
import threading


class ReaderThread:
    """Mixed into a track that keeps its reader thread in ``_thread`` (None until started)."""

    _thread: threading.Thread | None

    def join(self, timeout: float | None = None) -> bool:
        """Block until the reader thread has let go of the device; False if not within ``timeout``.

        Blocks: from the loop, ``await wait_closed()`` instead.
        """
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait, in a worker thread, until the device is released (after ``stop()``)."""
        return await asyncio.to_thread(self.join, timeout)
