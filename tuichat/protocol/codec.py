"""JSON encoding and decoding with errors precise enough to show the sender.

Decoding raises only ``BadMessage`` (commands) or ``ProtocolError`` (server messages), whatever the
input: a frame msgspec cannot read for a reason of its own (``RecursionError`` on arrays nested a
few thousand deep, well under the size limit) used to escape and end the connection.
"""

from __future__ import annotations

import functools
import json
import operator
from typing import Any

import msgspec

from tuichat.errors import ProtocolError
from tuichat.protocol.limits import MESSAGE_MAX_BYTES
from tuichat.protocol.messages import (
    COMMAND_TYPES,
    Command,
    CommandId,
    Error,
    ErrorCode,
    ServerMessage,
)


class _ErrorAsSent(msgspec.Struct, tag_field="type", tag="error", kw_only=True):
    """``Error`` as read off the wire: any ``code`` string, made an ``ErrorCode`` by ``_error_code``."""

    code: str
    reason: str
    id: CommandId | None = None


#: What a server sends, with ``Error`` read through ``_ErrorAsSent``; derived, so it never misses an event.
_SERVER_MESSAGE_AS_SENT: Any = functools.reduce(
    operator.or_, (_ErrorAsSent if kind is Error else kind for kind in ServerMessage.__args__)  # type: ignore[attr-defined]
)

_encoder = msgspec.json.Encoder()
_server_decoder = msgspec.json.Decoder(_SERVER_MESSAGE_AS_SENT)

_TOO_DEEP = "arrays or objects are nested too deeply"
_LONE_SURROGATE = "not valid text: a lone UTF-16 surrogate (half of a character, such as an emoji cut in two)"


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
    # surrogatepass: a str from a caller other than aiohttp may hold a lone surrogate; it is
    # refused below with its reason, not with a UnicodeEncodeError here.
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MESSAGE_MAX_BYTES:
        raise BadMessage(ErrorCode.TOO_LARGE, f"message is {size} bytes; the limit is {MESSAGE_MAX_BYTES}")
    try:
        return _decode_command(data)
    except BadMessage:
        raise
    except RecursionError:
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"not valid JSON: {_TOO_DEEP}") from None
    except Exception as exc:  # msgspec raises nothing else today; this keeps the promise of the docstring
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"unreadable message ({type(exc).__name__})") from exc


def _decode_command(data: str | bytes) -> Command:
    try:
        raw: Any = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeError) as exc:
        raise _unreadable(data, exc) from None
    if not isinstance(raw, dict):
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"expected a JSON object, got {type(raw).__name__}")
    command_id = _command_id(raw)
    kind = raw.get("type")
    if kind not in COMMAND_TYPES:
        known = ", ".join(COMMAND_TYPES)
        shown = repr(kind)[:40] if kind is not None else "missing"
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"unknown message type {shown}; expected one of {known}", command_id)
    try:
        return msgspec.convert(raw, Command)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        raise BadMessage(ErrorCode.BAD_MESSAGE, f"invalid {kind!r} message: {exc}", command_id) from None


def _command_id(raw: dict[Any, Any]) -> int | None:
    command_id = raw.get("id")
    if not isinstance(command_id, int) or isinstance(command_id, bool) or not 0 <= command_id <= 2**53:
        return None
    return command_id


def _unreadable(data: str | bytes, exc: Exception) -> BadMessage:
    """What msgspec refused, read again by Python's more lenient json for the id and a better reason.

    msgspec refuses a lone surrogate escape (``"\\ud83d"``: valid JSON syntax, what JavaScript's
    JSON.stringify writes for a string cut inside an emoji) as "Input data was truncated", before the
    id is read: the sender got a misleading reason and its command was never answered.
    """
    reason = "not valid JSON: " + (str(exc) if isinstance(exc, msgspec.DecodeError) else type(exc).__name__)
    try:
        raw: Any = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return BadMessage(ErrorCode.BAD_MESSAGE, reason)
    try:
        json.dumps(raw, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        reason = _LONE_SURROGATE
    except (ValueError, RecursionError):
        pass
    return BadMessage(ErrorCode.BAD_MESSAGE, reason, _command_id(raw) if isinstance(raw, dict) else None)


def decode_server_message(data: str | bytes) -> ServerMessage:
    """Parse one server frame; a client treats a failure here as a protocol violation."""
    try:
        message = _server_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"unreadable message from server: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"unreadable message from server: {_TOO_DEEP}") from None
    except Exception as exc:  # whatever else a decode raises must not end the client's read loop
        raise ProtocolError(f"unreadable message from server ({type(exc).__name__})") from exc
    if isinstance(message, _ErrorAsSent):
        return Error(code=_error_code(message.code), reason=message.reason, id=message.id)
    return message


def _error_code(code: str) -> ErrorCode:
    """A code added by a newer server reads as SERVER_ERROR (its reason, for people, is kept), as
    clients read every event tolerantly: the whole error was unreadable, so the refused command was
    never answered and a join was tried again for ever."""
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.SERVER_ERROR
