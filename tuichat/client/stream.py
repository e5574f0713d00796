"""What a call publishes and what it plays, as objects with enum statuses a UI can follow.

``PublishedStream``: PENDING → PUBLISHING, or UNPUBLISHED / FAILED (with a reason).
``PlayedStream`` (one per remote participant with a receive slot): PENDING → PLAYING on the first
frame; STOPPED when the participant unpublishes, leaves or loses the slot (the view must clear), or
while the call reconnects (then PLAYING again); FAILED when the call's connection failed. A change
of picture size emits ``StreamEvent.RESIZED``. Callbacks get the stream object itself.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tuichat.client.events import Callback, Emitter
from tuichat.media.rate import FrameRate

__all__ = ["PlayStatus", "PlayedStream", "PublishStatus", "PublishedStream", "StreamEvent"]

log = logging.getLogger(__name__)


class PublishStatus(enum.Enum):
    PENDING = "PENDING"
    PUBLISHING = "PUBLISHING"
    UNPUBLISHED = "UNPUBLISHED"
    FAILED = "FAILED"


class PlayStatus(enum.Enum):
    PENDING = "PENDING"
    PLAYING = "PLAYING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class StreamEvent(enum.Enum):
    """Stream events that are not a status: the picture changed size (``PlayedStream.size``)."""

    RESIZED = "RESIZED"


class PublishedStream:
    """What this client sends. ``audio``/``video``: published media; the ``*_muted`` flags: switched off."""

    def __init__(self) -> None:
        self.status = PublishStatus.PENDING
        self.reason = ""
        self.audio = False
        self.video = False
        self.audio_muted = False
        self.video_muted = False
        #: The picture size our encoder sends now, and whether a thin uplink made it step down from
        #: the camera's (``tuichat.rtc.encoders.UplinkVp8Encoder``); updated every second.
        self.size: tuple[int, int] | None = None
        self.uplink_limited = False
        self._emitter: Emitter[PublishStatus] = Emitter()

    def __repr__(self) -> str:
        return f"<PublishedStream {self.status.name} audio={self.audio} video={self.video}>"

    def on(self, status: PublishStatus, callback: Callback) -> Callable[[], None]:
        """Call ``callback(stream)`` when the stream enters ``status``; returns an unsubscribe function."""
        return self._emitter.on(status, callback)

    def _set(self, status: PublishStatus, reason: str = "", *, changed: bool = False) -> bool:
        """``changed``: what is sent changed (audio, video), so say it even if the status did not."""
        if status is self.status and reason == self.reason and not changed:
            return False
        self.status, self.reason = status, reason
        log.info("published stream: %s %s", status.name, reason)
        self._emitter.emit(status, self)
        return True


class PlayedStream:
    """One remote participant's pictures: the newest frame as RGB, its size, frame rate and bit rate."""

    def __init__(self, participant_id: str, name: str, slot: int) -> None:
        self.participant_id = participant_id
        self.name = name
        self.slot = slot
        self.status = PlayStatus.PENDING
        self.reason = ""
        #: The newest picture, (height, width, 3) RGB; None until the first frame (and after STOPPED).
        self.latest: NDArray[np.uint8] | None = None
        self.size: tuple[int, int] | None = None
        self.frames_received = 0
        #: Received video bit rate (RTP payload), updated about once a second (None when unknown).
        self.kbps: float | None = None
        #: The same for this participant's audio.
        self.audio_kbps: float | None = None
        #: Called with each new picture (RGB) as it arrives, e.g. to schedule a redraw; must be quick.
        self.on_frame: Callable[[NDArray[np.uint8]], None] | None = None
        self._rate = FrameRate()
        self._emitter: Emitter[PlayStatus | StreamEvent] = Emitter()

    def __repr__(self) -> str:
        return f"<PlayedStream {self.name} ({self.participant_id}) slot {self.slot} {self.status.name} {self.size}>"

    def on(self, event: PlayStatus | StreamEvent, callback: Callback) -> Callable[[], None]:
        """Call ``callback(stream)`` on a status or ``StreamEvent.RESIZED``; returns an unsubscribe function."""
        return self._emitter.on(event, callback)

    @property
    def fps(self) -> float:
        """Frames per second over the last two seconds (0.0 until two frames arrived)."""
        return self._rate.fps

    # --- called by the Call ------------------------------------------------------------------------

    def _on_frame(self, rgb: NDArray[np.uint8]) -> None:
        if self.status not in (PlayStatus.PENDING, PlayStatus.PLAYING):
            return
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        resized = self.size is not None and size != self.size
        self.latest = rgb
        self.size = size
        self.frames_received += 1
        self._rate.tick()
        if self.status is PlayStatus.PENDING:
            self._set(PlayStatus.PLAYING)
        elif resized:
            self._emitter.emit(StreamEvent.RESIZED, self)
        if self.on_frame is not None:
            try:
                self.on_frame(rgb)
            except Exception:
                log.exception("on_frame callback of %s failed", self)

    def _set(self, status: PlayStatus, reason: str = "") -> bool:
        if status is self.status:
            return False
        self.status, self.reason = status, reason
        if status in (PlayStatus.STOPPED, PlayStatus.FAILED):
            self.latest = None
            self.size = None
            self._rate.clear()
            self.kbps = None
            self.audio_kbps = None
        log.info("played stream %s: %s %s", self.name, status.name, reason)
        self._emitter.emit(status, self)
        return True
