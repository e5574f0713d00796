"""The status line: session status, room, head count, and (with media) stream states."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class StatusPart:
    """A part of the status line in full and in short (empty: the part goes) for narrow terminals."""

    full: str = ""
    short: str = ""


# How a line too wide for the terminal gives way, one step at a time, least useful first: the
# session's status and the reason it is not up always stay, and the head count goes last (the
# README promises it where the people list is hidden).
_DEGRADE = ("playing", "room", "publish", "publish-gone", "playing-gone", "count")


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
    #: When the connection is tried again (``time.monotonic()``): the line counts down to it.
    retry_at: reactive[float | None] = reactive(None)
    room: reactive[str] = reactive("")
    joined: reactive[bool] = reactive(False)
    count: reactive[int] = reactive(0)
    #: Our microphone, camera, published stream and preview.
    publish: reactive[StatusPart] = reactive(StatusPart())
    #: What we play of others (names come from other people: made printable when drawn).
    playing: reactive[StatusPart] = reactive(StatusPart())

    @property
    def media(self) -> str:
        """The media parts in full, as the widest terminal shows them."""
        return " │ ".join(part for part in (self.publish.full, self.playing.full) if part)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._count_down)

    def _count_down(self) -> None:
        if self.retry_at is not None:
            self.refresh()

    def render(self) -> Text:
        width = self.content_size.width
        line = self._line(0)
        for steps in range(1, len(_DEGRADE) + 1):
            if not width or line.cell_len <= width:
                break
            line = self._line(steps)
        return line

    def _line(self, steps: int) -> Text:
        """The line after the first ``steps`` of ``_DEGRADE``."""
        given_up = set(_DEGRADE[:steps])
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("● ", style=STATUS_STYLES[self.status])
        line.append(self.status.name, style=STATUS_STYLES[self.status])
        if self.room:
            if "room" not in given_up or not self.joined:
                line.append("  room ", style="dim")
                line.append(printable(self.room), style="bold" if self.joined else "dim")
            if self.joined and "count" not in given_up:
                line.append(f"  {self.count} {'person' if self.count == 1 else 'people'}", style="")
        if self.reason and self.status is not SessionStatus.ESTABLISHED:
            # Why the session is not up comes before the media, which a narrow line gives up first.
            line.append("  │ ", style="dim")
            line.append(printable(self.reason), style="dim")
            if self.retry_at is not None:
                wait = math.ceil(self.retry_at - time.monotonic())
                line.append(f" (retrying in {wait} s)" if wait > 0 else " (retrying now)", style="dim")
        parts = []
        if "publish-gone" not in given_up:
            parts.append(self.publish.short if "publish" in given_up else self.publish.full)
        if "playing-gone" not in given_up:
            parts.append(self.playing.short if "playing" in given_up else self.playing.full)
        for part in parts:
            if part:
                line.append("  │ ", style="dim")
                line.append(printable(part))
        return line
