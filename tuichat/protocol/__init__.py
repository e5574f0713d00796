"""The room protocol: message types, limits and validation. No I/O happens here."""

from tuichat.protocol.codec import BadMessage, decode_command, decode_server_message, encode
from tuichat.protocol.limits import DEFAULT_PORT
from tuichat.protocol.messages import (
    Ack,
    ChatMessage,
    Command,
    Error,
    ErrorCode,
    Event,
    Join,
    Joined,
    Leave,
    Left,
    MessageEvent,
    Mute,
    ParticipantInfo,
    Publish,
    Published,
    Say,
    Sender,
    ServerMessage,
    State,
    StreamInfo,
    Unpublish,
    Unpublished,
    Updated,
)
from tuichat.protocol.names import name_problem, room_problem, text_problem

__all__ = [
    "DEFAULT_PORT", "Ack", "BadMessage", "ChatMessage", "Command", "Error", "ErrorCode", "Event", "Join",
    "Joined", "Leave", "Left", "MessageEvent", "Mute", "ParticipantInfo", "Publish", "Published", "Say",
    "Sender", "ServerMessage", "State", "StreamInfo", "Unpublish", "Unpublished", "Updated",
    "decode_command", "decode_server_message", "encode", "name_problem", "room_problem", "text_problem",
]
