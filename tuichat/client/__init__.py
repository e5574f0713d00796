"""The client library: Session, Room and Participant, in the seed system's Room API shape. No UI."""

from tuichat.client.address import display_address, websocket_url
from tuichat.client.events import Failure, Message, RoomEvent, RoomUpdate, SessionStatus
from tuichat.client.participant import Participant
from tuichat.client.room import Room
from tuichat.client.session import Session, SessionOptions

__all__ = [
    "Failure", "Message", "Participant", "Room", "RoomEvent", "RoomUpdate", "Session", "SessionOptions",
    "SessionStatus", "display_address", "websocket_url",
]
