"""A local camera through OpenCV, read in a thread that keeps only the newest picture."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time

import cv2
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from numpy.typing import NDArray

from ..errors import DeviceUnavailable
from ._clock import WallClockPts
from ._handoff import LatestValue
from ._reader import ReaderThread

__all__ = ["CameraTrack"]

log = logging.getLogger(__name__)

# This many failed reads in a row mean the camera is gone (unplugged, taken by another program).
MAX_FAILED_READS = 30


def _describe(device: int | str) -> str:
    return f"at index {device}" if isinstance(device, int) else str(device)


class CameraTrack(ReaderThread, VideoStreamTrack):
    """Frames from ``cv2.VideoCapture(device)`` as ``VideoFrame``s.

    Opening a camera can block for seconds, so it happens in the reader thread, never on the loop.
    On Linux a device node that does not exist fails in the constructor, without touching OpenCV;
    any other failure to open is raised as ``DeviceUnavailable`` by ``await ready()`` (and ends the
    track, so ``recv()`` raises ``MediaStreamError``). ``stop()`` never waits for the thread (a
    read or an open can block for seconds): the thread releases the device on its way out, and
    ``await wait_closed()`` waits for that when it matters (reopening the same camera).
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        open_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.device = device
        #: How long ``ready()`` waits for the device to open before giving up on it.
        self.open_timeout = open_timeout
        self._requested = (width, height, fps)
        if sys.platform.startswith("linux"):
            node = f"/dev/video{device}" if isinstance(device, int) else device
            if not os.path.exists(node):
                if isinstance(device, int):
                    raise DeviceUnavailable(f"no camera at index {device} ({node} does not exist).")
                raise DeviceUnavailable(f"cannot open camera {device}: no such device.")
        self.frames_read = 0
        # BGR as OpenCV reads it, with the monotonic time it was read: converting and stamping
        # wait for recv(), so a picture replaced unread costs neither.
        self._slot: LatestValue[tuple[NDArray[np.uint8], float]] = LatestValue()
        self._stopping = threading.Event()
        self._settled = threading.Event()  # the device opened, failed to, or the track was stopped
        self._error: DeviceUnavailable | None = None
        self._thread: threading.Thread | None = None
        self._pts = WallClockPts()
        #: Why the track ended by itself (unplugged, a driver error), for the user.
        self.ended_reason: str | None = None
        with contextlib.suppress(RuntimeError):  # no loop yet: start on the first recv() or ready()
            self._start_thread(asyncio.get_running_loop())

    def _start_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._thread is None and not self._stopping.is_set():
            self._slot.bind(loop)
            self._thread = threading.Thread(target=self._run, name=f"camera {self.device}", daemon=True)
            self._thread.start()

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until the camera is open; raise ``DeviceUnavailable`` if it cannot be.

        On failure the track is stopped: a reader thread left trying to open the camera would
        turn it on later (its light too) with nobody reading it.
        """
        timeout = self.open_timeout if timeout is None else timeout
        self._start_thread(asyncio.get_running_loop())
        try:
            if not await asyncio.to_thread(self._settled.wait, timeout):
                raise DeviceUnavailable(f"camera {_describe(self.device)} did not open within {timeout:g} s.")
            if self._error is not None:
                raise self._error
            if self._stopping.is_set():
                raise DeviceUnavailable(f"camera {_describe(self.device)} was stopped before it opened.")
        except Exception:
            self.stop()
            raise

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._start_thread(asyncio.get_running_loop())
        item = await self._slot.get()
        if item is None or self.readyState != "live":
            raise MediaStreamError
        bgr, captured_at = item
        return self._pts.stamp(VideoFrame.from_ndarray(bgr, format="bgr24"), at=captured_at)

    def stop(self) -> None:
        """End the track at once; the reader thread releases the device when its read returns."""
        if self._stopping.is_set():
            return
        super().stop()
        self._stopping.set()
        self._settled.set()  # a ready() waiting in a worker thread stops waiting
        self._slot.close()

    def _run(self) -> None:
        cap: cv2.VideoCapture | None = None
        try:
            cap = cv2.VideoCapture(self.device)
            if not cap.isOpened():
                where = (
                    f"no camera at index {self.device}"
                    if isinstance(self.device, int)
                    else (f"cannot open camera {self.device}")
                )
                self._error = DeviceUnavailable(f"{where}: OpenCV could not open it.")
                return
            width, height, fps = self._requested
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
            self._settled.set()
            failures = 0
            while not self._stopping.is_set():
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    failures += 1
                    if failures >= MAX_FAILED_READS:
                        log.warning("camera %s stopped delivering frames; the track ends", self.device)
                        self.ended_reason = f"camera {self.device} stopped delivering pictures"
                        return
                    self._stopping.wait(0.03)
                    continue
                failures = 0
                self.frames_read += 1
                self._slot.put((np.asarray(bgr, dtype=np.uint8), time.monotonic()))
        except Exception as exc:
            log.exception("camera %s failed", self.device)
            self._error = DeviceUnavailable(f"cannot use camera {_describe(self.device)}: {exc}.")
            self.ended_reason = f"camera {self.device} failed: {exc}"
        finally:
            if cap is not None:
                cap.release()
            self._settled.set()
            self._slot.close()
