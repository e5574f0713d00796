"""The room protocol's messages, defined once for server, client and tests.

Every message is a JSON object with a ``type`` tag. Commands go from a client to the server and
carry an ``id``; the server answers each with ``ack`` (carrying the same id) or ``error``. Events
are pushed by the server. The wire form is the struct's fields, with ``from`` for the sender.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

CommandId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class ErrorCode(enum.StrEnum):
    """Machine-readable reasons a command or frame was refused."""

    BAD_MESSAGE = "bad_message"
    TOO_LARGE = "too_large"
    INVALID_NAME = "invalid_name"
    INVALID_ROOM = "invalid_room"
    INVALID_TEXT = "invalid_text"
    NAME_TAKEN = "name_taken"
    ROOM_FULL = "room_full"
    NOT_IN_ROOM = "not_in_room"
    ALREADY_IN_ROOM = "already_in_room"
    UNKNOWN_PARTICIPANT = "unknown_participant"
    RATE_LIMITED = "rate_limited"
    MEDIA_FAILED = "media_failed"
    SERVER_ERROR = "server_error"


class _Message(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    """Base of all messages: tagged by ``type``; unknown fields are errors, not silently dropped."""


# --- shared payloads -------------------------------------------------------------------------

class StreamInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a participant publishes and whether each medium is live (not muted)."""

    audio: bool = False
    video: bool = False
    audio_muted: bool = False
    video_muted: bool = False


class ParticipantInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A participant as the server sees it; ``id`` is assigned by the server."""

    id: str
    name: str
    stream: StreamInfo | None = None


class Sender(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    name: str


class ChatMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A chat line; ``id`` and ``ts`` (Unix seconds) come from the server, ``to`` marks a private one."""

    id: int
    ts: float
    sender: Sender = msgspec.field(name="from")
    text: str
    to: str | None = None


# --- commands (client to server) -------------------------------------------------------------

class Join(_Message, tag="join"):
    """Enter ``room`` as ``name``; ``resume`` is the token from an earlier STATE, to replace a stale self."""

    id: CommandId
    room: str
    name: str
    resume: str | None = None


class Leave(_Message, tag="leave"):
    id: CommandId


class Say(_Message, tag="message"):
    """Chat to the room, or privately to the participant whose id is ``to``."""

    id: CommandId
    text: str
    to: str | None = None


class Publish(_Message, tag="publish"):
    """Announce the media this client sends (the media layer negotiates the tracks themselves)."""

    id: CommandId
    audio: bool = True
    video: bool = True


class Unpublish(_Message, tag="unpublish"):
    id: CommandId


class Mute(_Message, tag="mute"):
    """Change mute state; a field left out keeps its value."""

    id: CommandId
    audio: bool | None = None
    video: bool | None = None


Command = Join | Leave | Say | Publish | Unpublish | Mute

# --- replies and events (server to client) ---------------------------------------------------


class Ack(_Message, tag="ack"):
    id: CommandId


class Error(_Message, tag="error"):
    """A refused command (``id`` set) or an unreadable frame (``id`` None)."""

    code: ErrorCode
    reason: str
    id: CommandId | None = None


class State(_Message, tag="state"):
    """Sent to a joiner: who is there, the recent history, and the token to resume after a drop."""

    room: str
    you: ParticipantInfo
    participants: list[ParticipantInfo]
    history: list[ChatMessage]
    resume: str


class Joined(_Message, tag="joined"):
    participant: ParticipantInfo


class Left(_Message, tag="left"):
    participant: ParticipantInfo
    reason: str = "left"


class MessageEvent(_Message, tag="message"):
    message: ChatMessage


class Published(_Message, tag="published"):
    participant: ParticipantInfo


class Unpublished(_Message, tag="unpublished"):
    participant: ParticipantInfo


class Updated(_Message, tag="updated"):
    """A participant's mute state changed."""

    participant: ParticipantInfo


ServerMessage = Ack | Error | State | Joined | Left | MessageEvent | Published | Unpublished | Updated
Event = State | Joined | Left | MessageEvent | Published | Unpublished | Updated

COMMAND_TYPES: tuple[str, ...] = tuple(t.__struct_config__.tag for t in Command.__args__)  # type: ignore[attr-defined]
