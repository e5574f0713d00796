"""A video file played as if it were a camera: looped, paced by its own timestamps."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any

import av
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from ..errors import DeviceUnavailable
from ._clock import MAX_LAG_S, WallClockPts
from ._handoff import LatestValue
from ._reader import ReaderThread

__all__ = ["FileVideoTrack"]

log = logging.getLogger(__name__)

# Frame interval assumed when a file gives no usable rate.
FALLBACK_INTERVAL_S = 1 / 25
#: This many video packets in a row that fail to decode end the source; fewer are skipped (a
#: damaged stretch of a file heals at its next keyframe).
MAX_BAD_PACKETS = 50
#: Said when a pipe's input cannot be read: MP4 keeps its index at the end, which needs seeking.
PIPE_HINT = "a pipe needs a streamable format such as MPEG-TS or Matroska"
# Pixel formats PyAV can wrap around an array without a copy (yuv ones only at even sizes).
_NUMPY_FORMATS = frozenset({"yuv420p", "yuvj420p", "rgb24", "bgr24", "rgba", "bgra", "gray"})


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc).rstrip(".").lower() or type(exc).__name__


def _is_pipe(path: str) -> bool:
    """Anything but a regular file (a FIFO, a terminal) cannot be rewound, so it is not looped."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # not a path: a URL FFmpeg opens itself, treated as a file
        return False


class _Undecodable(Exception):
    """The video cannot be decoded; the message says why, for ``ended_reason``."""


class FileVideoTrack(ReaderThread, VideoStreamTrack):
    """Decodes ``path`` with PyAV in a thread and offers only the newest frame.

    The file is opened (and checked for a video stream) in the constructor, so a bad path fails at
    once; decoding starts on the first ``recv()``. Frames get fresh 90 kHz timestamps from the
    wall clock, so looping never makes time go backwards. A packet that fails to decode is skipped;
    a still image is decoded once and offered again at the frame interval; a named pipe plays once,
    to its end. ``stop()`` never waits for the thread (it may be blocked reading a pipe): the thread
    closes the file on its way out, and ``await wait_closed()`` waits for that.
    """

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = True) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.loop = loop
        self.loops_completed = 0
        self.frames_decoded = 0
        #: Video packets skipped because they did not decode (a damaged stretch of the file).
        self.packets_skipped = 0
        #: A named pipe, or anything else that is not a regular file: played once, never looped.
        self.is_pipe = _is_pipe(self.path)
        try:
            self._container: Any = av.open(self.path, mode="r")
        except (av.FFmpegError, OSError) as exc:
            reason = self._hinted(_reason(exc)) if isinstance(exc, av.FFmpegError) else _reason(exc)
            raise DeviceUnavailable(f"cannot open video file {self.path}: {reason}.") from exc
        if not self._container.streams.video:
            self._container.close()
            raise DeviceUnavailable(f"cannot open video file {self.path}: it has no video stream.")
        self._seekable = True  # until a seek fails, or leads nowhere: then each pass reopens the file
        self._slot: LatestValue[VideoFrame] = LatestValue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pts = WallClockPts()
        # What the current pass has met, for the reason when it decodes nothing.
        self._pass_packets = 0
        self._pass_error: BaseException | None = None
        #: Why the track ended by itself (a file that could not be decoded, a pipe's end), for the user.
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
        """End the track at once; the decoder thread closes the file when its read returns."""
        if self._stopping.is_set():
            return
        super().stop()
        self._stopping.set()
        if self._thread is None:
            self._container.close()
        self._slot.close()

    def _hinted(self, reason: str) -> str:
        """``reason``, with what a pipe needs when a pipe gave no picture at all."""
        return f"{reason}; {PIPE_HINT}" if self.is_pipe and not self.frames_decoded else reason

    def _decode(self) -> None:
        try:
            self._play()
        except (_Undecodable, av.FFmpegError) as exc:  # the file's fault: no traceback needed
            reason = str(exc) if isinstance(exc, _Undecodable) else _reason(exc)
            self.ended_reason = f"video file {self.path} could not be decoded: {self._hinted(reason)}"
            log.warning("%s; the track ends", self.ended_reason)
        except Exception as exc:
            log.exception("decoding %s failed; the track ends", self.path)
            self.ended_reason = f"video file {self.path} could not be decoded: {_reason(exc)}"
        finally:
            self._container.close()
            self._slot.close()

    def _video_stream(self) -> Any:
        """The container's video stream, set to decode on several threads (before its first frame)."""
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        return stream

    def _reopen(self) -> Any:
        self._container.close()
        self._container = av.open(self.path, mode="r")
        return self._video_stream()

    def _rewind(self) -> tuple[Any, bool]:
        """Back to the first frame: (the video stream, whether the file was opened afresh).

        A seek where the format allows it; a fresh open where it does not (raw H.264 refuses to
        seek, a JPEG decodes nothing after one).
        """
        if self._seekable:
            try:
                self._container.seek(0)
                return self._container.streams.video[0], False
            except (av.FFmpegError, OSError) as exc:
                log.debug("%s cannot seek (%s); it is opened again for each pass", self.path, _reason(exc))
                self._seekable = False
        return self._reopen(), True

    def _frames(self, stream: Any) -> Iterator[VideoFrame]:
        """One pass over the file's video, decoded packet by packet: a packet the decoder refuses is
        skipped, unless ``MAX_BAD_PACKETS`` in a row are (the rest of the file is not worth trying)."""
        self._pass_packets, self._pass_error = 0, None
        bad_in_row = 0
        for packet in self._container.demux(stream):
            if self._stopping.is_set():
                return
            if packet.size:
                self._pass_packets += 1
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                self.packets_skipped += 1
                self._pass_error = exc
                bad_in_row += 1
                log.debug("%s: skipped a video packet that does not decode (%s)", self.path, _reason(exc))
                if bad_in_row >= MAX_BAD_PACKETS:
                    raise _Undecodable(f"{_reason(exc)} ({bad_in_row} video packets in a row)") from exc
                continue
            bad_in_row = 0
            for frame in frames:
                assert isinstance(frame, VideoFrame)
                yield frame

    def _nothing_decoded(self) -> str:
        """Why a pass from the file's start gave no picture."""
        if self._pass_error is not None:
            return f"{_reason(self._pass_error)} (no picture from its {self._pass_packets} video packets)"
        return "the file has no decodable video frames"

    def _play(self) -> None:
        stream = self._video_stream()
        rate = stream.average_rate or stream.guessed_rate
        interval = float(1 / rate) if rate else FALLBACK_INTERVAL_S
        epoch = time.monotonic()  # when this pass's first frame is due
        fresh = True  # this pass starts from an open, not a seek
        while not self._stopping.is_set():
            first_t: float | None = None
            t = 0.0
            last: VideoFrame | None = None
            count = 0
            for frame in self._frames(stream):
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
                last, count = frame, count + 1
            if self._stopping.is_set():
                return
            if first_t is None or last is None:
                if not fresh:  # the seek seemed to work but led nowhere: open the file again instead
                    self._seekable = False
                    stream, fresh = self._reopen(), True
                    continue
                raise _Undecodable(self._nothing_decoded())
            if self.is_pipe:
                self.ended_reason = f"video file {self.path}: the pipe ended"
                return
            if not self.loop:
                return
            self.loops_completed += 1
            epoch += (t - first_t) + interval
            if count == 1 and self.loops_completed == 1:
                self._repeat(last, epoch, interval)
                return
            stream, fresh = self._rewind()

    def _repeat(self, frame: VideoFrame, due: float, interval: float) -> None:
        """A file of one frame (a still image): offer it again at each interval without decoding
        (reopening and decoding it each time cost 38% of a core for a 12-megapixel JPEG). Each
        offer is a new frame over the same pixels, so a pts stamped on one never changes another."""
        if frame.format.name in _NUMPY_FORMATS and not (frame.format.name.startswith("yuv") and
                                                        (frame.width % 2 or frame.height % 2)):
            pixels, pixel_format = frame.to_ndarray(), frame.format.name
        else:
            pixels, pixel_format = frame.to_ndarray(format="rgb24"), "rgb24"
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            self._slot.put(VideoFrame.from_numpy_buffer(pixels, format=pixel_format))
            self.loops_completed += 1
            due = max(due + interval, time.monotonic() - MAX_LAG_S)
