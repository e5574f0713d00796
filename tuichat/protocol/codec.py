"""JSON encoding and decoding with errors precise enough to show the sender."""

from __future__ import annotations

from typing import Any

import msgspec

from tuichat.errors import ProtocolError
from tuichat.protocol.limits import MESSAGE_MAX_BYTES
from tuichat.protocol.messages import (
    COMMAND_TYPES,
    Command,
    ErrorCode,
    ServerMessage,
)

_encoder = msgspec.json.Encoder()
_server_decoder = msgspec.json.Decoder(ServerMessage)


class BadMessage(ProtocolError):
    """A frame that is not a valid command; ``command_id`` is set when it could still be read."""

    def __init__(self, code: ErrorCode, reason: str, command_id: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.command_id = command_id


def encode(message: msgspec.Struct) -> str:
    return _encoder.encode(message).decode()


def encode_bytes(message: msgspec.Struct) -> bytes:
    """UTF-8 JSON, for a text frame sent as is (and counted in bytes)."""
    return _encoder.encode(message)


def decode_command(data: str | bytes) -> Command:
    """Parse one client frame, or raise BadMessage saying what is wrong and, if readable, its id."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MESSAGE_MAX_BYTES:
        raise BadMessage(ErrorCode.TOO_LARGE, f"message is {size} bytes; the limit is {MESSAGE_MAX_BYTES}")
    try:
        raw: Any = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"expected a JSON object, got {type(raw).__name__}")
    command_id = raw.get("id")
    if not isinstance(command_id, int) or isinstance(command_id, bool) or not 0 <= command_id <= 2**53:
        command_id = None
    kind = raw.get("type")
    if kind not in COMMAND_TYPES:
        known = ", ".join(COMMAND_TYPES)
        shown = repr(kind)[:40] if kind is not None else "missing"
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"unknown message type {shown}; expected one of {known}", command_id)
    try:
        return msgspec.convert(raw, Command)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"invalid {kind!r} message: {exc}", command_id) from None


def decode_server_message(data: str | bytes) -> ServerMessage:
    """Parse one server frame; a client treats a failure here as a protocol violation."""
    try:
        return _server_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"unreadable message from server: {exc}") from None
