"""A sink that plays nothing: it keeps remote audio tracks drained when there is no speaker.

An unconsumed aiortc track buffers frames without bound, so every received track needs a reader.
"""

from __future__ import annotations

from aiortc import MediaStreamTrack
from av import AudioFrame
from av.frame import Frame
from av.packet import Packet

from ._tasks import TrackTasks

__all__ = ["AudioDrain"]


class AudioDrain:
    """Consumes and counts audio frames from any number of tracks; same interface as ``Speaker``."""

    def __init__(self) -> None:
        self.frames_received = 0
        self.samples_received = 0
        self.frames_by_track: dict[str, int] = {}
        self._tasks = TrackTasks(self._on_frame, "audio drain")

    def start(self) -> None:
        """Nothing to open; present so callers can treat every sink alike."""

    def add_track(self, track: MediaStreamTrack) -> None:
        """Start draining ``track`` (needs a running loop)."""
        self.frames_by_track.setdefault(track.id, 0)
        self._tasks.add(track)

    def remove_track(self, track: MediaStreamTrack) -> None:
        """Stop draining ``track`` and forget its count (a call restart brings new tracks each time)."""
        self._tasks.remove(track)
        self.frames_by_track.pop(track.id, None)

    async def stop(self) -> None:
        """Stop draining every track (idempotent)."""
        await self._tasks.close()

    def _on_frame(self, track: MediaStreamTrack, frame: Frame | Packet) -> None:
        self.frames_received += 1
        self.frames_by_track[track.id] = self.frames_by_track.get(track.id, 0) + 1
        if isinstance(frame, AudioFrame):
            self.samples_received += frame.samples
