"""The invite line: the exact command a second person types to join this room."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from tuichat.tui.safe_text import printable


def invite_command(address: str, room: str) -> str:
    return f"tuichat connect {address} THEIR_NAME {room}"


class InviteLine(Widget):
    DEFAULT_CSS = """
    InviteLine {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, address: str, room: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.command = invite_command(address, room)

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("invite: ", style="dim")
        line.append(printable(self.command), style="bold")
        line.append("   (F7 copies it)", style="dim")
        return line
