"""A pass-through video track that remembers the newest frame, for a local self-view.

The sender consumes the source as usual; the UI asks for ``latest_frame()`` at its own pace, and
the RGB conversion happens only then, once per new frame, so nothing is queued and a hidden
self-view costs nothing.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from av import VideoFrame


class FrameTap(MediaStreamTrack):
    kind = "video"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.source = source
        self._frame: VideoFrame | None = None
        self._seq = 0
        self._converted: tuple[int, npt.NDArray[np.uint8]] | None = None
        self._lock = threading.Lock()

    async def recv(self) -> VideoFrame:
        frame = await self.source.recv()
        assert isinstance(frame, VideoFrame)
        with self._lock:
            self._frame = frame
            self._seq += 1
        return frame

    def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """(sequence, RGB array) of the newest frame; safe to call from another thread."""
        with self._lock:
            frame, seq = self._frame, self._seq
        if frame is None:
            return None
        converted = self._converted
        if converted is None or converted[0] != seq:
            rgb: npt.NDArray[np.uint8] = frame.to_ndarray(format="rgb24")  # type: ignore[assignment]
            converted = self._converted = (seq, rgb)
        return converted

    def stop(self) -> None:
        self.source.stop()
        super().stop()
