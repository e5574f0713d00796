"""A pass-through video track that remembers the newest frame, for a local self-view.

The sender consumes the source as usual; the UI asks for ``latest_frame()`` at its own pace, and
the RGB conversion happens only then, once per new frame, so nothing is queued and a hidden
self-view costs nothing.

The conversion runs on the UI's thread while the encoder scales the same frame on the loop's, so
it goes through the tap's own ``VideoReformatter``: ``frame.to_ndarray()`` uses a scaler cached
on the frame, and two threads in one swscale context deadlocked or crashed the client (a 4K file
as the camera, self-view on). It also scales big frames down: a tile needs no 4K picture.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from av import VideoFrame
from av.video.reformatter import VideoReformatter

#: The self-view's pictures are at most this wide (a tile is a fraction of a terminal).
MAX_WIDTH = 640


class FrameTap(MediaStreamTrack):
    """Passes ``source``'s frames on unchanged and keeps the newest for ``latest_frame()``."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.source = source
        self._frame: VideoFrame | None = None
        self._seq = 0
        self._converted: tuple[int, npt.NDArray[np.uint8]] | None = None
        self._lock = threading.Lock()
        self._reformatter = VideoReformatter()  # the UI thread's alone

    async def recv(self) -> VideoFrame:
        frame = await self.source.recv()
        assert isinstance(frame, VideoFrame)
        with self._lock:
            self._frame = frame
            self._seq += 1
        return frame

    @property
    def ended_reason(self) -> str | None:
        """Why the source ended by itself, if it says."""
        return getattr(self.source, "ended_reason", None)

    def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """(sequence, RGB array) of the newest frame; safe to call from another thread."""
        with self._lock:
            frame, seq = self._frame, self._seq
        if frame is None:
            return None
        converted = self._converted
        if converted is None or converted[0] != seq:
            width, height = frame.width, frame.height
            if width > MAX_WIDTH:
                width, height = MAX_WIDTH, max(2, round(height * MAX_WIDTH / width / 2) * 2)
            rgb_frame = self._reformatter.reformat(frame, width=width, height=height, format="rgb24")
            rgb: npt.NDArray[np.uint8] = rgb_frame.to_ndarray()  # type: ignore[assignment]
            converted = self._converted = (seq, rgb)
        return converted

    def stop(self) -> None:
        self.source.stop()
        super().stop()
