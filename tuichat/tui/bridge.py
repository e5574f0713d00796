"""The call's client side on its own thread, reporting to the UI through Textual messages.

Messages go up (the bridge posts snapshots of session and room state), commands go down (the app
awaits ``bridge.run(...)``). Snapshots are immutable, so the UI never reads objects the client
thread is changing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from textual.message import Message as TextualMessage
from textual.message_pump import MessagePump

from tuichat.client import Participant, Room, RoomEvent, RoomUpdate, Session, SessionOptions, SessionStatus
from tuichat.client.events import Message
from tuichat.client.loop_thread import LoopThread
from tuichat.errors import CommandFailed, ConnectionFailed

log = logging.getLogger(__name__)
T = TypeVar("T")


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


class SessionChanged(TextualMessage):
    def __init__(self, status: SessionStatus, reason: str) -> None:
        super().__init__()
        self.status = status
        self.reason = reason


class RoomChanged(TextualMessage):
    """A room event, with the participant list as it stands after it."""

    def __init__(self, event: RoomEvent, participants: tuple[ParticipantView, ...], *,
                 participant: ParticipantView | None = None, message: MessageView | None = None,
                 history: tuple[MessageView, ...] = (), reason: str = "") -> None:
        super().__init__()
        self.event = event
        self.participants = participants
        self.participant = participant
        self.message = message
        self.history = history
        self.reason = reason


class CallBridge:
    """Owns the Session on a LoopThread; keeps trying to connect until it joins or is stopped."""

    def __init__(self, target: MessagePump, url: str, user: str, room: str,
                 options: SessionOptions | None = None) -> None:
        self.target = target
        self.url = url
        self.user = user
        self.room_name = room
        self.thread = LoopThread()
        self.session = Session(url, user, options)
        self.room: Room | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopped = False

    # --- UI side ------------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()
        self.thread.submit(self._start())

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await, from the UI loop, a coroutine run on the client thread."""
        return await self.thread.run(coroutine)

    async def send_message(self, text: str, to_name: str | None = None) -> None:
        await self.run(self._send(text, to_name))

    async def stop(self) -> None:
        """Leave the room cleanly and stop the thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            await asyncio.wait_for(self.run(self._shutdown()), 5.0)
        except (TimeoutError, RuntimeError, ConnectionFailed):
            log.warning("leaving the room took too long; closing anyway")
        self.thread.stop()

    # --- client thread side ---------------------------------------------------------------------

    def _post(self, message: TextualMessage) -> None:
        self.target.post_message(message)

    async def _start(self) -> None:
        for status in SessionStatus:
            self.session.on(status, lambda s: self._post(SessionChanged(s.status, s.reason)))
        self._main = asyncio.create_task(self._connect_and_join())

    async def _connect_and_join(self) -> None:
        delay = 0.5
        while not self._stopped:
            try:
                await self.session.connect()
                break
            except ConnectionFailed as exc:
                self._post(SessionChanged(SessionStatus.FAILED, f"{exc} (retrying in {delay:g} s)"))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        try:
            room = await self.session.join(self.room_name)
        except CommandFailed as exc:
            self._post(RoomChanged(RoomEvent.FAILED, (), reason=exc.reason))
            return
        except ConnectionFailed as exc:
            self._post(RoomChanged(RoomEvent.FAILED, (), reason=str(exc)))
            return
        self.room = room
        for event in RoomEvent:
            room.on(event, self._on_room_update)
        self._on_room_update(RoomUpdate(RoomEvent.STATE, participants=tuple(room.participants.values()),
                                        history=tuple(room.history)))

    def _snapshot(self) -> tuple[ParticipantView, ...]:
        if self.room is None:
            return ()
        return tuple(ParticipantView.of(p) for p in self.room.participants.values())

    def _on_room_update(self, update: RoomUpdate) -> None:
        self._post(RoomChanged(
            update.event, self._snapshot(),
            participant=ParticipantView.of(update.participant) if update.participant else None,
            message=MessageView.of(update.message) if update.message else None,
            history=tuple(MessageView.of(m) for m in update.history),
            reason=update.reason or (update.failure.reason if update.failure else ""),
        ))

    async def _send(self, text: str, to_name: str | None) -> None:
        if self.room is None or not self.room.joined:
            raise ConnectionFailed("not in the room yet")
        recipient = None
        if to_name is not None:
            recipient = self.room.participant_named(to_name)
            if recipient is None:
                raise CommandFailed("unknown_participant", f"nobody called {to_name!r} is in the room")
        await self.room.send_message(text, to=recipient)

    async def _shutdown(self) -> None:
        if self._main is not None:
            self._main.cancel()
        await self.session.disconnect()


