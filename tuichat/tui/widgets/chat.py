"""The message log: timestamps, senders and text, always shown literally."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.events import Resize
from textual.timer import Timer
from textual.widgets import RichLog

from tuichat.tui.safe_text import printable
from tuichat.tui.snapshots import MessageView

#: Entries kept (and wrapped again on resize); older ones scroll away for good.
MAX_ENTRIES = 1000
#: Wrapping 1000 entries again takes ~0.15 s of the UI thread: wait until a resize settles.
REWRAP_DELAY_S = 0.15


class MessageLog(RichLog):
    """Never parses markup: other people's text is data, not formatting.

    RichLog wraps a line once, when it is written, and at no less than 78 columns: in a narrower
    terminal every long line would be cut off behind a horizontal scrollbar, and after a resize old
    lines would keep their old width. This log keeps its entries and wraps them again, to the width
    it has, whenever that width changes.
    """

    DEFAULT_CSS = """
    MessageLog {
        height: 1fr;
        min-height: 4;
        border: round $primary-background-lighten-2;
        border-title-color: $text-muted;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    MessageLog:focus { border: round $accent; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=2 * MAX_ENTRIES, min_width=1,
                         **kwargs)  # type: ignore[arg-type]
        self.border_title = "messages"
        self._entries: deque[Text] = deque(maxlen=MAX_ENTRIES)
        #: The width the shown lines were wrapped to; 0 while they need wrapping again.
        self._wrapped_at = 0
        self._rewrap_timer: Timer | None = None
        #: The newest line is in view: kept so through resizes (a shorter log kept its scroll
        #: offset and hid the newest lines). Scrolling up by hand clears it, back to the end sets it.
        self._following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y

    def _add(self, line: Text) -> None:
        self._entries.append(line)
        if not self._size_known:
            self.write(line)  # RichLog keeps it until the first layout
            return
        width = self.scrollable_content_region.width
        if not width:
            self._wrapped_at = 0  # hidden: everything is wrapped again when it is shown
            return
        self.write(line)
        if width != self._wrapped_at:
            self._rewrap_soon()

    def clear(self) -> MessageLog:
        self._entries.clear()
        return super().clear()

    def on_resize(self, event: Resize) -> None:
        if self._following:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at:
            if self._size_known and self._wrapped_at == 0:
                self._rewrap()  # shown again after being hidden: one event, not a drag
            elif self._size_known:
                self._rewrap_soon()
            else:
                self._wrapped_at = width  # RichLog renders what it kept at this width next

    def _rewrap_soon(self) -> None:
        if self._rewrap_timer is not None:
            self._rewrap_timer.stop()
        self._rewrap_timer = self.set_timer(REWRAP_DELAY_S, self._rewrap)

    def _rewrap(self) -> None:
        self._rewrap_timer = None
        width = self.scrollable_content_region.width
        if not width:
            self._wrapped_at = 0
            return
        at_end = self._following
        super().clear()
        if self._entries:  # one renderable: Rich wraps it in one pass, ~40% faster than entry by entry
            self.write(Text("\n").join(self._entries), scroll_end=False)
        if at_end:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        self._wrapped_at = width

    def add_message(self, message: MessageView) -> None:
        line = Text()
        line.append(time.strftime("%H:%M ", time.localtime(message.timestamp)), style="dim")
        sender_style = "bold green" if message.sender_is_self else "bold cyan"
        if message.private:
            target = f" → {printable(message.recipient)}" if message.recipient else ""
            line.append(f"{printable(message.sender)}{target} (private)", style=f"{sender_style} italic")
        else:
            line.append(printable(message.sender), style=sender_style)
        line.append(": ")
        line.append(printable(message.text, keep_newlines=True), style="italic" if message.private else "")
        self._add(line)

    def add_notice(self, text: str, *, style: str = "dim", timestamp: float | None = None) -> None:
        """A line from the app itself (joins, leaves, errors); ``text`` may hold others' names, so it is
        made printable here too."""
        line = Text()
        line.append(time.strftime("%H:%M ", time.localtime(timestamp or time.time())), style="dim")
        line.append(printable(text, keep_newlines=True), style=style)
        self._add(line)
