"""A joined room: the participant list kept in step with the server, history, chat and events."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Callable
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
from tuichat.protocol.names import name_key

if TYPE_CHECKING:
    from tuichat.client.session import Session

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 1024


class RoomEvents:
    """An async iterator over a room's events, registered when made (see ``Room.events``). The room
    holds it weakly: an iterator its consumer dropped stops filling."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[RoomUpdate | None] = asyncio.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._closed = False

    def __aiter__(self) -> RoomEvents:
        return self

    async def __anext__(self) -> RoomUpdate:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        update = await self._queue.get()
        if update is None:
            self._closed = True
            raise StopAsyncIteration
        return update

    async def aclose(self) -> None:
        """Stop: what was queued is dropped, nothing more comes, and a consumer waiting in
        ``async for`` (in another task) ends its loop."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def _put(self, update: RoomUpdate | None) -> None:
        if self._closed:
            return
        if self._queue.full():
            if update is not None:
                log.warning("room event iterator is falling behind; dropping its oldest event")
            self._queue.get_nowait()
        self._queue.put_nowait(update)


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
        self._leave_handlers: list[Callable[[], None]] = []
        self._iterators: weakref.WeakSet[RoomEvents] = weakref.WeakSet()
        #: Left or failed: no more events will come.
        self._ended = False
        #: Why the room failed (the last FAILED event), if it did.
        self.failure: Failure | None = None
        #: Done at the first STATE, or when the room ends before one: what ``Session.join`` awaits
        #: after a drop, while the session reconnects and joins again.
        self._settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: What came after STATE before anyone could listen (None once applied; see ``_hand_over``).
        self._held: list[Event] | None = []
        self._hand_over_due = False

    def __repr__(self) -> str:
        return f"<Room {self.name!r} {len(self.participants)} participants>"

    def on(self, event: RoomEvent, callback: Callback) -> Callable[[], None]:
        """Call ``callback(update: RoomUpdate)`` on ``event``; returns an unsubscribe function.

        Events that came with STATE, before ``join()`` returned, are not lost: they are applied
        soon after the first ``on``, ``events`` or ``on_signal`` (once the registering code reaches
        its next ``await``), or a second after the join when nobody registers."""
        self._hand_over_soon()
        return self._emitter.on(event, callback)

    def on_signal(self, callback: Callable[[Answer | Streams], None]) -> Callable[[], None]:
        """Media signalling (ANSWER, STREAMS) goes to ``callback`` (a Call); returns an unsubscribe function."""
        self._hand_over_soon()
        self._signal_handlers.append(callback)
        return lambda: self._signal_handlers.remove(callback) if callback in self._signal_handlers else None

    def events(self) -> RoomEvents:
        """Every event from this call on, until the room is left: ``async for update in
        room.events()``. Events are queued from the call, not from the first read, so none is missed
        in between. Bounded: a consumer more than EVENT_QUEUE_SIZE events behind loses the oldest
        ones (and a warning is logged). ``aclose()`` stops it early."""
        self._hand_over_soon()
        iterator = RoomEvents()
        if self._ended:
            iterator._put(None)
        else:
            self._iterators.add(iterator)
        return iterator

    def others(self) -> list[Participant]:
        return [p for p in self.participants.values() if not p.is_self]

    def participant_named(self, name: str) -> Participant | None:
        key = name_key(name)  # the server's sameness of names: "José" composed or not, fullwidth or not
        return next((p for p in self.participants.values() if name_key(p.name) == key), None)

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
        self._left_by_us()
        self.session._forget(self)
        await self.session.command(Leave(id=0))

    # --- called by the session ---------------------------------------------------------------

    def _emit(self, update: RoomUpdate) -> None:
        self._emitter.emit(update.event, update)
        for iterator in list(self._iterators):
            iterator._put(update)

    async def _wait_settled(self) -> None:
        await asyncio.shield(self._settled)

    def _on_leave(self, callback: Callable[[], None]) -> Callable[[], None]:
        """``callback()`` when we leave the room (``leave()``, the session's ``disconnect()``): a Call
        on it ends too (review: it went on saying CONNECTED and PUBLISHING, the server having
        dropped its media). Not on failure: FAILED says that, with its reason."""
        self._leave_handlers.append(callback)
        return lambda: self._leave_handlers.remove(callback) if callback in self._leave_handlers else None

    def _left_by_us(self) -> None:
        self.joined = False
        self._close_iterators()
        handlers, self._leave_handlers = self._leave_handlers, []
        for handler in handlers:
            try:
                handler()
            except Exception:
                log.exception("a leave handler failed")

    def _fail(self, code: str, reason: str) -> None:
        self.joined = False
        self.failure = Failure(code, reason)
        self._emit(RoomUpdate(RoomEvent.FAILED, failure=Failure(code, reason), reason=reason))
        self._close_iterators()

    def _close_iterators(self) -> None:
        self._ended = True
        if not self._settled.done():
            self._settled.set_result(None)
        for iterator in list(self._iterators):
            iterator._put(None)
        self._iterators.clear()

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

    def _hand_over_soon(self) -> None:
        if self._held is not None and not self._hand_over_due:
            self._hand_over_due = True
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self) -> None:
        """Apply, and emit, what came between STATE and the first listener, in order.

        The server sends STATE, the join's ACK and whatever happened next in one burst; the
        session read them all before ``join()`` could return the room, so nobody had registered
        yet: a private message sent as someone joined was lost without a trace (review). Held
        unapplied, the room reads as STATE left it until then: what a caller takes from the room
        after ``join()`` and the events it then gets add up.
        """
        held, self._held = self._held, None
        for event in held or ():
            if self._ended:
                return
            self._handle(event)

    def _handle(self, event: Event) -> None:
        if self._held is not None and self.joined:  # after STATE, before join() handed the room over
            if len(self._held) < EVENT_QUEUE_SIZE:
                self._held.append(event)
                return
            self._hand_over()  # bounded, as every queue here: a flood is applied now, to whoever listens
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
                if not self._settled.done():
                    self._settled.set_result(None)
                everyone = tuple(p.snapshot() for p in self.participants.values())
                self._emit(RoomUpdate(RoomEvent.STATE, participants=everyone,
                                      history=tuple(self.history)))
            case Joined():
                participant = self._participant(event.participant)
                self.participants[participant.id] = participant
                self._emit(RoomUpdate(RoomEvent.JOINED, participant=participant.snapshot()))
            case Left():
                gone = self.participants.pop(event.participant.id, None) or self._participant(event.participant)
                self._emit(RoomUpdate(RoomEvent.LEFT, participant=gone.snapshot(), reason=event.reason))
            case Published() | Unpublished() | Updated():
                participant = self._participant(event.participant)
                self.participants[participant.id] = participant
                kind = {Published: RoomEvent.PUBLISHED, Unpublished: RoomEvent.UNPUBLISHED,
                        Updated: RoomEvent.UPDATED}[type(event)]
                self._emit(RoomUpdate(kind, participant=participant.snapshot()))
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
