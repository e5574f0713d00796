"""The room server. It never imports the client or the TUI."""

from tuichat.server.app import WS_PATH, RoomServer, ServerLimits, serve_forever
from tuichat.server.room import Member, Registry, Room

__all__ = ["WS_PATH", "Member", "Registry", "Room", "RoomServer", "ServerLimits", "serve_forever"]
