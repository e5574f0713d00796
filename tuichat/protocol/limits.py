"""Every protocol limit in one place, so the server, the client and the docs agree."""

from __future__ import annotations

from typing import Final

DEFAULT_PORT: Final = 8765
#: Where the server takes WebSocket connections.
WS_PATH: Final = "/ws"
NAME_MAX_LENGTH: Final = 32
ROOM_MAX_LENGTH: Final = 32
TEXT_MAX_LENGTH: Final = 2000
#: A message over this size gets an error reply and the connection stays usable.
MESSAGE_MAX_BYTES: Final = 64 * 1024
#: A WebSocket frame over this size is a protocol violation: the connection is closed (code 1009).
FRAME_MAX_BYTES: Final = 1024 * 1024
#: An error's reason is cut to this many characters (it may quote the refused input).
REASON_MAX_LENGTH: Final = 200
#: Chat messages a room keeps and sends to a joiner in STATE.
HISTORY_LENGTH: Final = 50
DEFAULT_MAX_PARTICIPANTS: Final = 8
#: Token bucket per connection: sustained commands per second and burst size.
RATE_PER_SECOND: Final = 10.0
RATE_BURST: Final = 30
#: The server pings every HEARTBEAT_INTERVAL and drops a client whose pong has not come within half
#: of it (aiohttp's rule): 3 s, so a client on a machine under load (QA saw live clients miss a 1.5 s
#: deadline at load 20 on 2 cores) stays, and a vanished one leaves within 9 s.
HEARTBEAT_INTERVAL: Final = 6.0
#: Receive slots in a client's offer by default (``DEFAULT_MAX_PARTICIPANTS - 1``); STATE says the real count.
DEFAULT_MEDIA_SLOTS: Final = DEFAULT_MAX_PARTICIPANTS - 1
#: An SDP offer is at most this many characters (the message limit covers it too).
SDP_MAX_LENGTH: Final = 64 * 1024
#: Bounds of a ``view`` request: the pixel box a subscriber can show and the frame rate it wants.
VIEW_MIN_WIDTH: Final = 16
VIEW_MAX_WIDTH: Final = 1920
VIEW_MIN_HEIGHT: Final = 16
VIEW_MAX_HEIGHT: Final = 1080
VIEW_MIN_FPS: Final = 1
VIEW_MAX_FPS: Final = 30
#: What the server sends a subscriber until it asks for something else (width, height, fps).
DEFAULT_VIEW: Final = (320, 180, 15)
#: Low-bandwidth preview (``view`` with ``preview: true``): the largest box and frame rate the server
#: sends, and what one previewed participant costs at most on the wire (video + audio, all headers).
PREVIEW_MAX_WIDTH: Final = 160
PREVIEW_MAX_HEIGHT: Final = 90
PREVIEW_MAX_FPS: Final = 5
PREVIEW_MAX_KBPS: Final = 64
