"""A video file played as if it were a camera: looped, paced by its own timestamps."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

import av
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from ..errors import DeviceUnavailable
from ._clock import MAX_LAG_S, WallClockPts
from ._handoff import LatestValue

__all__ = ["FileVideoTrack"]

log = logging.getLogger(__name__)

# Frame interval assumed when a file gives no usable rate.
FALLBACK_INTERVAL_S = 1 / 25


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc).rstrip(".").lower() or type(exc).__name__


class FileVideoTrack(VideoStreamTrack):
    """Decodes ``path`` with PyAV in a thread and offers only the newest frame.

    The file is opened (and checked for a video stream) in the constructor, so a bad path fails at
    once; decoding starts on the first ``recv()``. Frames get fresh 90 kHz timestamps from the
    wall clock, so looping never makes time go backwards.
    """

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = True) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.loop = loop
        self.loops_completed = 0
        self.frames_decoded = 0
        try:
            self._container: Any = av.open(self.path, mode="r")
        except (av.FFmpegError, OSError) as exc:
            raise DeviceUnavailable(f"cannot open video file {self.path}: {_reason(exc)}.") from exc
        if not self._container.streams.video:
            self._container.close()
            raise DeviceUnavailable(f"cannot open video file {self.path}: it has no video stream.")
        self._slot: LatestValue[VideoFrame] = LatestValue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pts = WallClockPts()
        #: Why the track ended by itself (a file that could not be decoded), for the user.
        self.ended_reason: str | None = None

    @property
    def frames_dropped(self) -> int:
        """Decoded frames replaced before anyone read them (the consumer was slower than the file)."""
        return self._slot.dropped

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._thread is None:
            self._slot.bind(asyncio.get_running_loop())
            self._thread = threading.Thread(target=self._decode, name=f"decode {self.path}", daemon=True)
            self._thread.start()
        frame = await self._slot.get()
        if frame is None or self.readyState != "live":
            raise MediaStreamError
        return self._pts.stamp(frame)

    def stop(self) -> None:
        """End the track and the decoder thread (it closes the file on its way out)."""
        super().stop()
        self._stopping.set()
        thread = self._thread
        if thread is None:
            self._container.close()
        elif thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._slot.close()

    def _decode(self) -> None:
        try:
            self._decode_passes()
        except Exception as exc:
            log.exception("decoding %s failed; the track ends", self.path)
            self.ended_reason = f"video file {self.path} could not be decoded: {_reason(exc)}"
        finally:
            self._container.close()
            self._slot.close()

    def _rewind(self) -> Any:
        """Back to the first frame; returns the video stream to decode. A still image (JPEG)
        decodes nothing after a seek: it is opened again instead, as any file of one frame."""
        if self.frames_decoded != self.loops_completed:  # more than one frame a pass
            self._container.seek(0)
            return self._container.streams.video[0]
        self._container.close()
        self._container = av.open(self.path, mode="r")
        return self._video_stream()

    def _video_stream(self) -> Any:
        """The container's video stream, set to decode on several threads (before its first frame)."""
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        return stream

    def _decode_passes(self) -> None:
        stream = self._video_stream()
        rate = stream.average_rate or stream.guessed_rate
        interval = float(1 / rate) if rate else FALLBACK_INTERVAL_S
        epoch = time.monotonic()  # when this pass's first frame is due
        while not self._stopping.is_set():
            first_t: float | None = None
            t = 0.0
            for frame in self._container.decode(stream):
                if frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                else:
                    t = (t + interval) if first_t is not None else 0.0
                if first_t is None:
                    first_t = t
                delay = epoch + (t - first_t) - time.monotonic()
                if delay < -MAX_LAG_S:
                    epoch -= delay
                elif delay > 0 and self._stopping.wait(delay):
                    return
                if self._stopping.is_set():
                    return
                self.frames_decoded += 1
                self._slot.put(frame)
            if first_t is None:
                raise RuntimeError("the file has no decodable video frames")
            if not self.loop:
                return
            self.loops_completed += 1
            epoch += (t - first_t) + interval
            stream = self._rewind()
