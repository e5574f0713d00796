"""The status line: session status, room, head count, and (with media) stream states."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tuichat.client import SessionStatus
from tuichat.tui.safe_text import printable

STATUS_STYLES = {
    SessionStatus.NEW: "bright_black",
    SessionStatus.PENDING: "yellow",
    SessionStatus.ESTABLISHED: "green",
    SessionStatus.DISCONNECTED: "red",
    SessionStatus.FAILED: "bold red",
}


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    status: reactive[SessionStatus] = reactive(SessionStatus.NEW)
    reason: reactive[str] = reactive("")
    room: reactive[str] = reactive("")
    joined: reactive[bool] = reactive(False)
    count: reactive[int] = reactive(0)
    media: reactive[str] = reactive("")

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("● ", style=STATUS_STYLES[self.status])
        line.append(self.status.name, style=STATUS_STYLES[self.status])
        if self.room:
            line.append("  room ", style="dim")
            line.append(printable(self.room), style="bold" if self.joined else "dim")
            if self.joined:
                line.append(f"  {self.count} {'person' if self.count == 1 else 'people'}", style="")
        if self.media:
            line.append("  │ ", style="dim")
            line.append(self.media)
        if self.reason and self.status is not SessionStatus.ESTABLISHED:
            line.append("  │ ", style="dim")
            line.append(printable(self.reason), style="dim")
        return line
