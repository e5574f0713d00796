"""A joined room: the participant list kept in step with the server, history, chat and events."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from tuichat.client.events import Callback, Emitter, Failure, Message, RoomEvent, RoomUpdate
from tuichat.client.participant import Participant
from tuichat.protocol.limits import DEFAULT_MEDIA_SLOTS, HISTORY_LENGTH
from tuichat.protocol.messages import (
    Answer,
    ChatMessage,
    Event,
    Joined,
    Leave,
    Left,
    MessageEvent,
    Mute,
    ParticipantInfo,
    Publish,
    Published,
    Say,
    State,
    Streams,
    Unpublish,
    Unpublished,
    Updated,
)

if TYPE_CHECKING:
    from tuichat.client.session import Session

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 1024


class Room:
    """Made by ``Session.join``. The server is the authority: this mirrors what it says."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.name = name
        self.me: Participant | None = None
        self.participants: dict[str, Participant] = {}
        self.history: deque[Message] = deque(maxlen=HISTORY_LENGTH)
        self.joined = False
        self.resume_token: str | None = None
        #: Where the server says people reach it (for invite links); None if it did not say.
        self.public_url: str | None = None
        #: Receive slots a call's offer must have (from STATE).
        self.media_slots = DEFAULT_MEDIA_SLOTS
        self._emitter: Emitter[RoomEvent] = Emitter()
        self._signal_handlers: list[Callable[[Answer | Streams], None]] = []
        self._iterators: set[asyncio.Queue[RoomUpdate | None]] = set()

    def __repr__(self) -> str:
        return f"<Room {self.name!r} {len(self.participants)} participants>"

    def on(self, event: RoomEvent, callback: Callback) -> Callable[[], None]:
        """Call ``callback(update: RoomUpdate)`` on ``event``; returns an unsubscribe function."""
        return self._emitter.on(event, callback)

    def on_signal(self, callback: Callable[[Answer | Streams], None]) -> Callable[[], None]:
        """Media signalling (ANSWER, STREAMS) goes to ``callback`` (a Call); returns an unsubscribe function."""
        self._signal_handlers.append(callback)
        return lambda: self._signal_handlers.remove(callback) if callback in self._signal_handlers else None

    async def events(self) -> AsyncIterator[RoomUpdate]:
        """Iterate over every event from now on, until the room is left. Bounded: a consumer that
        falls more than EVENT_QUEUE_SIZE events behind loses the oldest ones (and a warning is logged)."""
        queue: asyncio.Queue[RoomUpdate | None] = asyncio.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._iterators.add(queue)
        try:
            while (update := await queue.get()) is not None:
                yield update
        finally:
            self._iterators.discard(queue)

    def others(self) -> list[Participant]:
        return [p for p in self.participants.values() if not p.is_self]

    def participant_named(self, name: str) -> Participant | None:
        folded = name.casefold()
        return next((p for p in self.participants.values() if p.name.casefold() == folded), None)

    async def send_message(self, text: str, *, to: Participant | None = None) -> None:
        """Send chat to everyone, or privately to ``to``; raises CommandFailed when refused."""
        await self.session.command(Say(id=0, text=text, to=to.id if to else None))

    async def publish(self, *, audio: bool, video: bool) -> None:
        await self.session.command(Publish(id=0, audio=audio, video=video))

    async def unpublish(self) -> None:
        await self.session.command(Unpublish(id=0))

    async def mute(self, *, audio: bool | None = None, video: bool | None = None) -> None:
        await self.session.command(Mute(id=0, audio=audio, video=video))

    async def leave(self) -> None:
        """Leave the room (idempotent); the session stays connected."""
        if not self.joined:
            return
        self.joined = False
        self.session._forget(self)
        try:
            await self.session.command(Leave(id=0))
        finally:
            self._close_iterators()

    # --- called by the session ---------------------------------------------------------------

    def _emit(self, update: RoomUpdate) -> None:
        self._emitter.emit(update.event, update)
        for queue in list(self._iterators):
            if queue.full():
                log.warning("room event iterator is falling behind; dropping its oldest event")
                queue.get_nowait()
            queue.put_nowait(update)

    def _fail(self, code: str, reason: str) -> None:
        self.joined = False
        self._emit(RoomUpdate(RoomEvent.FAILED, failure=Failure(code, reason), reason=reason))
        self._close_iterators()

    def _close_iterators(self) -> None:
        for queue in list(self._iterators):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def _participant(self, info: ParticipantInfo) -> Participant:
        participant = self.participants.get(info.id)
        if participant is None:
            participant = Participant(id=info.id, name=info.name, stream=info.stream, _room=self)
        else:
            participant.update(info)
        return participant

    def _message(self, chat: ChatMessage) -> Message:
        sender = self.participants.get(chat.sender.id) or Participant(id=chat.sender.id, name=chat.sender.name)
        recipient = self.participants.get(chat.to) if chat.to else None
        return Message(chat.id, chat.ts, sender, chat.text, chat.to is not None, recipient)

    def _handle(self, event: Event) -> None:
        match event:
            case State():
                self.resume_token = event.resume
                self.public_url = event.public_url if isinstance(event.public_url, str) else None
                self.media_slots = event.media_slots
                self.participants = {}
                for info in event.participants:
                    self.participants[info.id] = self._participant(info)
                self.me = self.participants.get(event.you.id) or self._participant(event.you)
                self.me.is_self = True
                self.participants[self.me.id] = self.me
                self.history = deque((self._message(m) for m in event.history), maxlen=HISTORY_LENGTH)
                self.joined = True
                self._emit(RoomUpdate(RoomEvent.STATE, participants=tuple(self.participants.values()),
                                      history=tuple(self.history)))
            case Joined():
                participant = self._participant(event.participant)
                self.participants[participant.id] = participant
                self._emit(RoomUpdate(RoomEvent.JOINED, participant=participant))
            case Left():
                gone = self.participants.pop(event.participant.id, None) or self._participant(event.participant)
                self._emit(RoomUpdate(RoomEvent.LEFT, participant=gone, reason=event.reason))
            case Published() | Unpublished() | Updated():
                participant = self._participant(event.participant)
                self.participants[participant.id] = participant
                kind = {Published: RoomEvent.PUBLISHED, Unpublished: RoomEvent.UNPUBLISHED,
                        Updated: RoomEvent.UPDATED}[type(event)]
                self._emit(RoomUpdate(kind, participant=participant))
            case Answer() | Streams():
                for handler in list(self._signal_handlers):
                    try:
                        handler(event)
                    except Exception:
                        log.exception("signal handler failed for %s", type(event).__name__)
            case MessageEvent():
                message = self._message(event.message)
                if not message.private:
                    self.history.append(message)
                self._emit(RoomUpdate(RoomEvent.MESSAGE, message=message))
