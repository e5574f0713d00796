"""The status line: session status, room, head count, and (with media) stream states."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tuichat.client import SessionStatus
from tuichat.tui.safe_text import cut_to_cells, printable

STATUS_STYLES = {
    SessionStatus.NEW: "bright_black",
    SessionStatus.PENDING: "yellow",
    SessionStatus.ESTABLISHED: "green",
    SessionStatus.DISCONNECTED: "red",
    SessionStatus.FAILED: "bold red",
}

#: The mark before the state's name: a shape too, not only a colour (in mono, and for colour-blind
#: eyes, green ESTABLISHED and red DISCONNECTED were the same white dot).
STATUS_MARKS = {
    SessionStatus.NEW: "○",
    SessionStatus.PENDING: "◐",
    SessionStatus.ESTABLISHED: "●",
    SessionStatus.DISCONNECTED: "○",
    SessionStatus.FAILED: "✕",
}


#: A reason is cut (with '…') to no fewer cells than this before a room not yet joined goes.
MIN_REASON_CELLS = 16


@dataclass(frozen=True)
class StatusPart:
    """A part of the status line in full and in short (empty: the part goes) for narrow terminals.

    The publish part also says what our devices do (``devices``: "mic muted · cam on") and, shortest,
    only what is off (``off``: "mic off"): being muted is what a person most needs to see of
    themselves, and the people list that shows it is hidden in a narrow terminal (QA: at 63 columns
    nothing on screen said the mic was off).
    """

    full: str = ""
    short: str = ""
    devices: str = ""
    off: str = ""
    #: Forms of the playing part between ``full`` and ``short``, most complete first: without the
    #: stream's details but with what the person should know and can do about a choppy picture
    #: ("carol PLAYING · 7 of 15 fps shown: slow terminal link, F4 preview"), then with the remedy only.
    between: tuple[str, ...] = ()


def _joined(*items: str) -> str:
    return " · ".join(item for item in items if item)



# How a line too wide for the terminal gives way, one step at a time, least useful first: details
# of the media first (a thin uplink's size and cause held the room name out at 120 columns), then
# the room, our stream's state, why the picture is choppy, others' state, then our mute, and the
# head count last (the README promises it where the people list is hidden). The session's status
# and the reason it is not up always stay: a reason still too long is cut with '…', never the
# countdown after it. A slow terminal's cause and remedy went with the first step, so over SSH
# they were almost never seen (QA: at 160 columns, "carol PLAYING · 8 of 15 fps shown").
_DEGRADE = ("playing", "publish-details", "room", "publish", "publish-gone", "playing-note", "playing-hint",
            "playing-gone", "mute", "count")


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
        if not width or line.cell_len <= width:
            return line
        for steps in range(1, len(_DEGRADE) + 1):
            line = self._line(steps)
            if line.cell_len <= width:
                return line
        # Still too wide: cut the reason (with '…'; the countdown after it stays). Short of room even
        # so, a room not joined yet goes too; whatever still does not fit is cut at the end.
        last = len(_DEGRADE)
        if self.reason and self.status is not SessionStatus.ESTABLISHED:
            for keep_room, least in ((True, MIN_REASON_CELLS), (False, 1)):
                over = self._line(last, keep_room=keep_room).cell_len - width
                reason_cells = cell_len(printable(self.reason)) - over
                if reason_cells >= least:
                    return self._line(last, keep_room=keep_room, reason_cells=reason_cells)
        line = self._line(last, keep_room=False)
        line.truncate(width, overflow="ellipsis")
        return line

    def _line(self, steps: int, *, keep_room: bool = True, reason_cells: int | None = None) -> Text:
        """The line after the first ``steps`` of ``_DEGRADE``; the reason cut to ``reason_cells``."""
        given_up = set(_DEGRADE[:steps])
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{STATUS_MARKS[self.status]} ", style=STATUS_STYLES[self.status])
        line.append(self.status.name, style=STATUS_STYLES[self.status])
        if self.room:
            if "room" not in given_up or (not self.joined and keep_room):
                line.append("  room ", style="dim")
                line.append(printable(self.room), style="bold" if self.joined else "dim")
            if self.joined and "count" not in given_up:
                line.append(f"  {self.count} {'person' if self.count == 1 else 'people'}", style="")
        if self.reason and self.status is not SessionStatus.ESTABLISHED:
            # Why the session is not up comes before the media, which a narrow line gives up first.
            line.append("  │ ", style="dim")
            reason = printable(self.reason)
            line.append(reason if reason_cells is None else cut_to_cells(reason, reason_cells), style="dim")
            if self.retry_at is not None:
                wait = math.ceil(self.retry_at - time.monotonic())
                line.append(f" (retrying in {wait} s)" if wait > 0 else " (retrying now)", style="dim")
        for part in (self._publish_form(given_up), self._playing_form(given_up)):
            if part:
                line.append("  │ ", style="dim")
                line.append(printable(part))
        return line

    def _publish_form(self, given_up: set[str]) -> str:
        publish = self.publish
        if "publish-details" not in given_up:
            return publish.full
        if "publish" not in given_up:
            return _joined(publish.devices, publish.short)
        if "publish-gone" not in given_up:
            return _joined(publish.off, publish.short)
        return "" if "mute" in given_up else publish.off

    def _playing_form(self, given_up: set[str]) -> str:
        playing = self.playing
        if "playing-gone" in given_up:
            return ""
        if "playing" not in given_up:
            return playing.full
        dropped = sum(step in given_up for step in ("playing-note", "playing-hint"))
        return playing.between[dropped] if dropped < len(playing.between) else playing.short
