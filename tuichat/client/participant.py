"""A participant as the client sees it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tuichat.protocol.messages import ParticipantInfo, StreamInfo

if TYPE_CHECKING:
    from tuichat.client.room import Room


@dataclass(eq=False)
class Participant:
    """Someone in the room. ``Room.participants`` holds live ones, updated as the server says;
    room events carry a ``snapshot`` as the event left the participant (an event read later, from
    ``Room.events()`` or by an async callback, would otherwise show flags of later events)."""

    id: str
    name: str
    stream: StreamInfo | None = None
    is_self: bool = False
    _room: Room | None = field(default=None, repr=False)

    @property
    def publishing(self) -> bool:
        return self.stream is not None and (self.stream.audio or self.stream.video)

    @property
    def audio_muted(self) -> bool:
        return self.stream is not None and self.stream.audio_muted

    @property
    def video_muted(self) -> bool:
        return self.stream is not None and self.stream.video_muted

    def snapshot(self) -> Participant:
        """A copy that later updates leave alone; it can still be sent a message."""
        return replace(self)

    def update(self, info: ParticipantInfo) -> None:
        self.name = info.name
        self.stream = info.stream

    async def send_message(self, text: str) -> None:
        """Send ``text`` privately to this participant."""
        if self._room is None:
            raise RuntimeError("this participant is not in a room")
        await self._room.send_message(text, to=self)
