"""Rooms and their rules, with no sockets: the server's authority on who is where.

A ``Member`` is a participant seen from the server. It receives events through ``deliver``, a
non-blocking callable the connection layer supplies (it queues, or drops a slow client), so that
one client can never stall a broadcast to the others.

Media follows the room through ``RoomHooks``: the registry calls them after it has told the room,
so the media layer (aiortc) stays out of here and ``Registry`` can be tested alone.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tuichat.errors import CommandFailed
from tuichat.protocol.limits import DEFAULT_MAX_PARTICIPANTS, HISTORY_LENGTH, TEXT_MAX_LENGTH
from tuichat.protocol.messages import (
    ChatMessage,
    ErrorCode,
    Joined,
    Left,
    MessageEvent,
    ParticipantInfo,
    Published,
    Sender,
    ServerMessage,
    State,
    StreamInfo,
    Unpublished,
    Updated,
)
from tuichat.protocol.names import name_key, name_problem, room_problem, text_problem

log = logging.getLogger(__name__)

Deliver = Callable[[ServerMessage], None]

_member_ids = itertools.count(1)


@dataclass(eq=False)
class Member:
    """One participant in one room."""

    name: str
    deliver: Deliver
    id: str = field(default_factory=lambda: f"p{next(_member_ids)}")
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    stream: StreamInfo | None = None
    room: Room | None = None
    #: Called when the server removes this member on its own (replaced by a resumed connection).
    evict: Callable[[str], None] | None = None

    def info(self) -> ParticipantInfo:
        return ParticipantInfo(id=self.id, name=self.name, stream=self.stream)


class Room:
    """A named room: its members in join order and its recent chat history."""

    def __init__(self, name: str, *, max_participants: int, history_length: int) -> None:
        self.name = name
        self.max_participants = max_participants
        self.members: dict[str, Member] = {}
        self.history: deque[ChatMessage] = deque(maxlen=history_length)
        self._message_ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self.members.values()))

    def member_named(self, name: str) -> Member | None:
        key = name_key(name)
        return next((m for m in self.members.values() if name_key(m.name) == key), None)

    def broadcast(self, event: ServerMessage, *, exclude: Member | None = None) -> None:
        for member in self:
            if member is not exclude:
                member.deliver(event)

    def state_for(self, member: Member) -> State:
        return State(
            room=self.name,
            you=member.info(),
            participants=[m.info() for m in self],
            history=list(self.history),
            resume=member.resume_token,
            media_slots=self.max_participants - 1,
        )

    def say(self, sender: Member, text: str, to: str | None = None) -> ChatMessage:
        problem = text_problem(text, TEXT_MAX_LENGTH)
        if problem:
            raise CommandFailed(ErrorCode.INVALID_TEXT, problem)
        recipient = None
        if to is not None:
            recipient = self.members.get(to)
            if recipient is None:
                raise CommandFailed(ErrorCode.UNKNOWN_PARTICIPANT, f"nobody with id {to!r} is in room {self.name!r}")
        message = ChatMessage(
            id=next(self._message_ids),
            ts=time.time(),
            sender=Sender(id=sender.id, name=sender.name),
            text=text,
            to=to,
        )
        event = MessageEvent(message=message)
        if recipient is None:
            self.history.append(message)
            self.broadcast(event)
        else:
            recipient.deliver(event)
            if recipient is not sender:
                sender.deliver(event)
        return message


class RoomHooks(Protocol):
    """What the media layer wants to know; called after the room has been told. Must not raise."""

    def published(self, room: Room, member: Member) -> None: ...
    def unpublished(self, room: Room, member: Member) -> None: ...
    def left(self, room: Room, member: Member) -> None: ...


class Registry:
    """All rooms of one server. Rooms are made on first join and dropped when the last member leaves."""

    def __init__(
        self,
        *,
        max_participants: int = DEFAULT_MAX_PARTICIPANTS,
        history_length: int = HISTORY_LENGTH,
        hooks: RoomHooks | None = None,
    ) -> None:
        if max_participants < 1:
            raise ValueError("max_participants must be at least 1")
        self.max_participants = max_participants
        self.history_length = history_length
        self.rooms: dict[str, Room] = {}
        self.hooks = hooks

    def join(self, room_name: str, name: str, deliver: Deliver, *, resume: str | None = None) -> Member:
        """Add a participant, send STATE to them and JOINED to the others; refuse with CommandFailed."""
        problem = room_problem(room_name)
        if problem:
            raise CommandFailed(ErrorCode.INVALID_ROOM, problem)
        problem = name_problem(name)
        if problem:
            raise CommandFailed(ErrorCode.INVALID_NAME, problem)
        room = self.rooms.get(room_name)
        if room is not None:
            existing = room.member_named(name)
            if existing is not None:
                if resume is None or not secrets.compare_digest(resume.encode(), existing.resume_token.encode()):
                    raise CommandFailed(
                        ErrorCode.NAME_TAKEN, f"someone called {existing.name!r} is already in room {room_name!r}"
                    )
                # The same person reconnecting before the server noticed the old connection died.
                reason = "replaced by a new connection"
                self.leave(existing, reason=reason)
                if existing.evict is not None:
                    existing.evict(reason)
                room = self.rooms.get(room_name)
        if room is not None and len(room) >= room.max_participants:
            raise CommandFailed(
                ErrorCode.ROOM_FULL, f"room {room_name!r} is full ({room.max_participants} "
                f"{'participant' if room.max_participants == 1 else 'participants'})"
            )
        if room is None:
            room = self.rooms[room_name] = Room(
                room_name, max_participants=self.max_participants, history_length=self.history_length
            )
        member = Member(name=name, deliver=deliver, room=room)
        # In the room before anyone hears of it: a JOINED that overflows the only other member's
        # outbox makes them leave, which must not drop the room under the newcomer.
        room.members[member.id] = member
        deliver(room.state_for(member))
        room.broadcast(Joined(participant=member.info()), exclude=member)
        log.info("%s (%s) joined room %s [%d present]", name, member.id, room_name, len(room))
        return member

    def leave(self, member: Member, *, reason: str = "left") -> None:
        """Remove a member (idempotent) and tell the others, with UNPUBLISHED first if they were publishing."""
        room = member.room
        if room is None or room.members.get(member.id) is not member:
            return
        del room.members[member.id]
        member.room = None
        if is_publishing(member.stream):
            member.stream = None
            room.broadcast(Unpublished(participant=member.info()))
        room.broadcast(Left(participant=member.info(), reason=reason))
        if self.hooks is not None:
            self._call_hook(self.hooks.left, room, member)
        log.info("%s (%s) left room %s: %s [%d present]", member.name, member.id, room.name, reason, len(room))
        # The broadcasts above can make the last other member leave too (a full outbox), and that
        # nested leave has dropped the room already.
        if not room.members and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            log.info("room %s is empty and was dropped", room.name)

    def publish(self, member: Member, *, audio: bool, video: bool) -> None:
        if not (audio or video):
            # Publishing nothing is stopping, as ``is_publishing`` reads a stream with neither
            # medium: announced as UNPUBLISHED (if they were publishing), so the room and every
            # client agree. A PUBLISHED with nothing made clients show someone sending nothing, and
            # the unpublish after it said nothing at all (the server saw nobody publishing).
            # Accepted rather than refused: "publish what I have" with nothing is a fair request.
            self.unpublish(member)
            return
        room = _room_of(member)
        muted = member.stream or StreamInfo()  # a mute sent before publishing holds (start muted)
        member.stream = StreamInfo(audio=audio, video=video, audio_muted=muted.audio_muted,
                                   video_muted=muted.video_muted)
        room.broadcast(Published(participant=member.info()))
        if self.hooks is not None:
            self._call_hook(self.hooks.published, room, member)

    def unpublish(self, member: Member) -> None:
        room = _room_of(member)
        if not is_publishing(member.stream):
            return  # never published (a mute alone records how to start): nothing to announce
        member.stream = None
        room.broadcast(Unpublished(participant=member.info()))
        if self.hooks is not None:
            self._call_hook(self.hooks.unpublished, room, member)

    @staticmethod
    def _call_hook(hook: Callable[[Room, Member], None], room: Room, member: Member) -> None:
        try:
            hook(room, member)
        except Exception:
            log.exception("room hook %s failed for %s", getattr(hook, "__name__", hook), member.id)

    @staticmethod
    def mute(member: Member, *, audio: bool | None, video: bool | None) -> None:
        room = _room_of(member)
        stream = member.stream or StreamInfo()
        member.stream = StreamInfo(
            audio=stream.audio,
            video=stream.video,
            audio_muted=stream.audio_muted if audio is None else audio,
            video_muted=stream.video_muted if video is None else video,
        )
        room.broadcast(Updated(participant=member.info()))


def is_publishing(stream: StreamInfo | None) -> bool:
    """Sends audio or video: a stream record with neither holds only mutes set before publishing."""
    return stream is not None and (stream.audio or stream.video)


def _room_of(member: Member) -> Room:
    if member.room is None:
        raise CommandFailed(ErrorCode.NOT_IN_ROOM, "join a room first")
    return member.room
