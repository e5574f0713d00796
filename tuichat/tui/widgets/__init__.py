"""The app's widgets, one per module, each owning its CSS, keys and messages."""

from tuichat.tui.widgets.chat import MessageLog
from tuichat.tui.widgets.composer import Composer
from tuichat.tui.widgets.invite import InviteLine
from tuichat.tui.widgets.keys import KeyBar
from tuichat.tui.widgets.roster import ParticipantList
from tuichat.tui.widgets.status import StatusLine
from tuichat.tui.widgets.video import FrameSource, VideoGrid

__all__ = [
    "Composer",
    "FrameSource",
    "InviteLine",
    "KeyBar",
    "MessageLog",
    "ParticipantList",
    "StatusLine",
    "VideoGrid",
]
