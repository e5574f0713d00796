"""What the client thread shows the UI: immutable snapshots of participants, messages and streams.

The bridge builds them on the client thread and posts them in Textual messages; widgets read them
on the UI thread. `StreamFrames` is the one live view, for speed: a stream's newest frame, two
attribute reads of references the client thread only ever replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tuichat.client import Participant
from tuichat.client.events import Message
from tuichat.client.stream import PlayedStream, PlayStatus, PublishStatus

__all__ = ["MessageView", "ParticipantView", "PublishView", "StreamFrames", "StreamView"]


@dataclass(frozen=True)
class ParticipantView:
    id: str
    name: str
    is_self: bool
    publishing: bool
    audio: bool
    video: bool
    audio_muted: bool
    video_muted: bool

    @classmethod
    def of(cls, participant: Participant) -> ParticipantView:
        stream = participant.stream
        return cls(participant.id, participant.name, participant.is_self, participant.publishing,
                   bool(stream and stream.audio), bool(stream and stream.video),
                   participant.audio_muted, participant.video_muted)


@dataclass(frozen=True)
class MessageView:
    id: int
    timestamp: float
    sender: str
    sender_is_self: bool
    text: str
    private: bool
    recipient: str | None

    @classmethod
    def of(cls, message: Message) -> MessageView:
        return cls(message.id, message.timestamp, message.sender.name, message.sender.is_self, message.text,
                   message.private, message.recipient.name if message.recipient else None)


class StreamFrames:
    """A played stream as the video widget's frame source: the newest frame and a changing counter."""

    def __init__(self, stream: PlayedStream) -> None:
        self.stream = stream

    def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]] | None:
        count = self.stream.frames_received
        frame = self.stream.latest
        return None if frame is None else (count, frame)


@dataclass(frozen=True)
class StreamView:
    participant_id: str
    name: str
    status: PlayStatus
    size: tuple[int, int] | None
    fps: float
    kbps: float | None
    reason: str
    frames: StreamFrames


@dataclass(frozen=True)
class PublishView:
    status: PublishStatus
    reason: str
    audio: bool
    video: bool
    audio_muted: bool
    video_muted: bool
    #: What the encoder sends now, and whether a thin uplink made it smaller than the camera.
    size: tuple[int, int] | None = None
    uplink_limited: bool = False
