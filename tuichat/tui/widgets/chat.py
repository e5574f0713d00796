"""The message log: timestamps, senders and text, always shown literally."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import RichLog

from tuichat.tui.bridge import MessageView
from tuichat.tui.safe_text import printable


class MessageLog(RichLog):
    """Never parses markup: other people's text is data, not formatting."""

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
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=2000, **kwargs)  # type: ignore[arg-type]
        self.border_title = "messages"

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
        self.write(line)

    def add_notice(self, text: str, *, style: str = "dim", timestamp: float | None = None) -> None:
        """A line from the app itself (joins, leaves, errors); ``text`` may hold others' names, so it is
        made printable here too."""
        line = Text()
        line.append(time.strftime("%H:%M ", time.localtime(timestamp or time.time())), style="dim")
        line.append(printable(text, keep_newlines=True), style=style)
        self.write(line)
