"""The message log: timestamps, senders and text, always shown literally."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group
from rich.segment import Segment
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
#: The border's subtitle while lines came in below what the reader is looking at.
NEW_BELOW = "new messages ↓"
#: A message's wrapped lines hang under its text while the time and sender take at most this share
#: of the width; past it (a long name, a narrow log) they hang under the sender.
MAX_HANG_SHARE = 0.5


@dataclass(frozen=True)
class Entry:
    """One line of the log: a head (time, sender) and a body whose wrapped lines hang under the body,
    so a long message reads as one (its lines started at the left edge, like separate messages).

    A renderable: Rich wraps it to whatever width it is drawn at, as the log does after a resize.
    """

    stamp: Text
    #: The sender; empty for the app's own notices, which hang under their text after the time too
    #: (they wrapped to the left edge, unlike messages: QA).
    head: Text
    body: Text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        width = options.max_width
        prefix, body = self.stamp + self.head, self.body
        if prefix.cell_len > width * MAX_HANG_SHARE:  # hang under the sender instead
            prefix, body = self.stamp.copy(), self.head + self.body
            if prefix.cell_len > width * MAX_HANG_SHARE:
                prefix, body = Text(), prefix + body
        indent = Segment(" " * prefix.cell_len)
        # Segments, not a Text of the wrapped lines: Rich would only split and wrap that again
        # (wrapping 1000 entries so took half as long again as before the lines hung; this, less).
        for number, line in enumerate(body.wrap(console, max(1, width - prefix.cell_len), overflow="fold")):
            if number:
                yield indent
            else:
                yield from prefix.render(console, "")
            yield from line.render(console, "")
            yield Segment.line()


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
        self._entries: deque[Entry] = deque(maxlen=MAX_ENTRIES)
        #: The width the shown lines were wrapped to; 0 while they need wrapping again.
        self._wrapped_at = 0
        self._rewrap_timer: Timer | None = None
        #: The newest line is in view: kept so through resizes (a shorter log kept its scroll
        #: offset and hid the newest lines) and new lines. Scrolling up by hand clears it: a new line
        #: then leaves the reader where they are, and the subtitle says it came. The end sets it.
        self._following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y
        if self._following:
            self.border_subtitle = ""

    def _add(self, entry: Entry) -> None:
        self._entries.append(entry)
        if not self._following:
            self.border_subtitle = NEW_BELOW
        if not self._size_known:
            self.write(entry, scroll_end=self._following)  # RichLog keeps it until the first layout
            return
        width = self.scrollable_content_region.width
        if not width:
            self._wrapped_at = 0  # hidden: everything is wrapped again when it is shown
            return
        self.write(entry, scroll_end=False)
        self._follow_after_refresh()
        if width != self._wrapped_at:
            self._rewrap_soon()

    def clear(self) -> MessageLog:
        self._entries.clear()
        return super().clear()

    def _follow_after_refresh(self) -> None:
        """Scroll to the newest line once the layout has the new lines, if the reader still follows.

        Decided then, not now: a scroll the reader asked for just before (PgUp, Home) is applied
        after the next refresh too, and must win over lines or a rewrap that came in meanwhile.
        """

        def follow() -> None:
            if self._following:
                self.scroll_end(animate=False, immediate=True, x_axis=False)

        self.call_after_refresh(follow)

    def on_resize(self, event: Resize) -> None:
        self._follow_after_refresh()
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
        super().clear()
        if self._entries:  # one renderable: one write, ~40% faster than entry by entry
            self.write(Group(*self._entries), scroll_end=False)
        self._follow_after_refresh()
        self._wrapped_at = width

    def add_message(self, message: MessageView) -> None:
        head = Text()
        sender_style = "bold green" if message.sender_is_self else "bold cyan"
        if message.private:
            target = f" → {printable(message.recipient)}" if message.recipient else ""
            head.append(f"{printable(message.sender)}{target} (private)", style=f"{sender_style} italic")
        else:
            head.append(printable(message.sender), style=sender_style)
        head.append(": ")
        body = Text(printable(message.text, keep_newlines=True), style="italic" if message.private else "")
        self._add(Entry(_stamp(message.timestamp), head, body))

    def add_notice(self, text: str, *, style: str = "dim", timestamp: float | None = None) -> None:
        """A line from the app itself (joins, leaves, errors); ``text`` may hold others' names, so it is
        made printable here too."""
        body = Text(printable(text, keep_newlines=True), style=style)
        self._add(Entry(_stamp(timestamp or time.time()), Text(), body))


def _stamp(timestamp: float) -> Text:
    return Text(time.strftime("%H:%M ", time.localtime(timestamp)), style="dim")
