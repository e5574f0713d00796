"""The room protocol's messages, defined once for server, client and tests.

Every message is a JSON object with a ``type`` tag. Commands go from a client to the server and
carry an ``id``; the server answers each with ``ack`` (carrying the same id) or ``error``. Events
are pushed by the server. The wire form is the struct's fields, with ``from`` for the sender.

Media signalling (one RTCPeerConnection per client, terminated by the server, never renegotiated):

* The client's ``offer`` has fixed m-lines in this order: its own ``sendonly`` video, its own
  ``sendonly`` audio, then ``State.media_slots`` pairs of ``recvonly`` video + ``recvonly`` audio.
  Slot ``k`` (0-based) is the k-th recvonly pair: m-lines ``2 + 2k`` (video) and ``3 + 2k`` (audio),
  i.e. the transceivers the client created at those positions (their mids, in offer order).
* The server replies ``answer`` (then the ack), or ``error`` with code ``media_failed``.
* ``streams`` tells a client which participant feeds which slot; it is re-sent, complete, whenever
  that client's assignment changes. A participant missing from it has no slot (their view clears).
* ``view`` asks for the pixel box (and frame rate) the client can show; the server scales each
  picture to fit inside it, keeping the aspect ratio, with even dimensions. The server also caps the
  video bit rate from the box and frame rate (1.5 bits per pixel per frame, 48–250 kbps).
  ``preview: true`` (optional, default false) asks for low-bandwidth preview: the server then sends
  at most ``PREVIEW_MAX_WIDTH``×``PREVIEW_MAX_HEIGHT`` at ``PREVIEW_MAX_FPS``, video and audio
  together under ``PREVIEW_MAX_KBPS`` on the wire (Opus at a low rate). Like the box, it holds for
  ``participant`` or, without one, for everyone without their own ``view``; a new ``view`` for the
  same target replaces it (so ``preview`` left out switches preview off). It takes effect within
  about a second, without renegotiation. Servers that predate the field reject it as unknown.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from tuichat.protocol.limits import (
    DEFAULT_MEDIA_SLOTS,
    REASON_MAX_LENGTH,
    SDP_MAX_LENGTH,
    VIEW_MAX_FPS,
    VIEW_MAX_HEIGHT,
    VIEW_MAX_WIDTH,
    VIEW_MIN_FPS,
    VIEW_MIN_HEIGHT,
    VIEW_MIN_WIDTH,
)

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
    """Base of commands: tagged by ``type``; unknown fields are errors, not silently dropped."""


class _Event(msgspec.Struct, tag_field="type", kw_only=True):
    """Base of what the server sends: a client ignores fields it does not know (the tolerant
    reader), so a newer server can add one without cutting older clients off."""


# --- shared payloads -------------------------------------------------------------------------

class StreamInfo(msgspec.Struct, kw_only=True):
    """What a participant publishes and whether each medium is live (not muted)."""

    audio: bool = False
    video: bool = False
    audio_muted: bool = False
    video_muted: bool = False


class ParticipantInfo(msgspec.Struct, kw_only=True):
    """A participant as the server sees it; ``id`` is assigned by the server."""

    id: str
    name: str
    stream: StreamInfo | None = None


class Sender(msgspec.Struct, kw_only=True):
    id: str
    name: str


class ChatMessage(msgspec.Struct, kw_only=True):
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
    #: As STATE gave it (``secrets.token_urlsafe``): anything else is a bad message, not a server error.
    resume: Annotated[str, msgspec.Meta(max_length=64, pattern="^[A-Za-z0-9_-]+$")] | None = None


class Leave(_Message, tag="leave"):
    id: CommandId


class Say(_Message, tag="message"):
    """Chat to the room, or privately to the participant whose id is ``to``."""

    id: CommandId
    text: str
    to: str | None = None


class Publish(_Message, tag="publish"):
    """Announce the media this client sends (the media layer negotiates the tracks themselves);
    neither (both false) is the same as ``unpublish``."""

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


class Offer(_Message, tag="offer"):
    """An SDP offer with the fixed transceiver layout described in the module docstring."""

    id: CommandId
    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=SDP_MAX_LENGTH)]


class View(_Message, tag="view"):
    """The pixel box (terminal cells × 2 rows) and frame rate wanted for ``participant`` (None: all);
    ``preview``: low-bandwidth preview of them (see the module docstring). Left out of the JSON
    unless set, so a view without preview is exactly what servers before the field accept."""

    id: CommandId
    width: Annotated[int, msgspec.Meta(ge=VIEW_MIN_WIDTH, le=VIEW_MAX_WIDTH)]
    height: Annotated[int, msgspec.Meta(ge=VIEW_MIN_HEIGHT, le=VIEW_MAX_HEIGHT)]
    fps: Annotated[int, msgspec.Meta(ge=VIEW_MIN_FPS, le=VIEW_MAX_FPS)]
    participant: str | None = None
    preview: bool | msgspec.UnsetType = msgspec.UNSET


Command = Join | Leave | Say | Publish | Unpublish | Mute | Offer | View

# --- replies and events (server to client) ---------------------------------------------------


class Ack(_Event, tag="ack"):
    id: CommandId


class Error(_Event, tag="error"):
    """A refused command (``id`` set) or an unreadable frame (``id`` None)."""

    code: ErrorCode
    reason: str
    id: CommandId | None = None

    def __post_init__(self) -> None:
        # Reasons quote the input they refuse (a field name, an id): a 60 KB field name made a
        # 60 KB reply, which a client that never reads could pile up by the hundred.
        if len(self.reason) > REASON_MAX_LENGTH:
            self.reason = self.reason[: REASON_MAX_LENGTH - 1] + "…"


class State(_Event, tag="state"):
    """Sent to a joiner: who is there, the recent history, and the token to resume after a drop."""

    room: str
    you: ParticipantInfo
    participants: list[ParticipantInfo]
    history: list[ChatMessage]
    resume: str
    #: Receive slots the client's offer must have: ``max_participants - 1``.
    media_slots: int = DEFAULT_MEDIA_SLOTS
    #: The server's address for invite links (``https://host:port``, maybe with a path prefix):
    #: ``serve --public-url``, else what the client connected to. Left out of the wire form when unset.
    public_url: str | msgspec.UnsetType = msgspec.UNSET


class Joined(_Event, tag="joined"):
    participant: ParticipantInfo


class Left(_Event, tag="left"):
    participant: ParticipantInfo
    reason: str = "left"


class MessageEvent(_Event, tag="message"):
    message: ChatMessage


class Published(_Event, tag="published"):
    participant: ParticipantInfo


class Unpublished(_Event, tag="unpublished"):
    """A participant stopped sending; like every event, it carries them as they are now (no stream)."""

    participant: ParticipantInfo


class Updated(_Event, tag="updated"):
    """A participant's mute state changed."""

    participant: ParticipantInfo


class Answer(_Event, tag="answer"):
    """The server's SDP answer to the client's ``offer``; sent just before that command's ack."""

    sdp: str


class SlotAssignment(msgspec.Struct, kw_only=True):
    """Participant ``participant`` (an id) is sent on receive slot ``slot``."""

    participant: str
    slot: int


class Streams(_Event, tag="streams"):
    """This client's complete slot assignment; replaces the previous one."""

    assignments: list[SlotAssignment]


ServerMessage = (
    Ack | Error | State | Joined | Left | MessageEvent | Published | Unpublished | Updated | Answer | Streams
)
Event = State | Joined | Left | MessageEvent | Published | Unpublished | Updated | Answer | Streams

COMMAND_TYPES: tuple[str, ...] = tuple(t.__struct_config__.tag for t in Command.__args__)  # type: ignore[attr-defined]
