"""The message input: one line that can still carry a pasted block of text, and says when it is full.

Textual's ``Input`` keeps only the first line of a paste and silently refuses one (or a key) that
would pass ``max_length``. A chat input must lose neither: a pasted line break shows as '⏎' and is
sent as a line break (messages may hold them; a '⏎' typed or pasted is text, sent as it is), a
paste too long for one message is cut to fit with a warning that says how much was left out, and a
key pressed at the limit says so. Invisible
characters the server refuses (zero-width spaces, byte order marks, bidi controls, which come along
with text copied from web pages) are dropped from a paste instead of refusing the whole message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Input

from tuichat.tui.safe_text import LINE_BREAKS

__all__ = ["LINE_BREAK", "Composer", "clean_paste", "key_after_escape"]

#: How a line break shows in the one-line input.
LINE_BREAK = "\u23ce"
#: A line break in the input's value, shown as LINE_BREAK: U+FDD0, a Unicode noncharacter (kept for a
#: program's own use, never text), dropped from whatever is typed or pasted. '⏎' itself was the mark,
#: so a typed '⏎' went out as a line break; a private-use character can be text too (icon fonts).
_BREAK = "\ufdd0"
_KEPT_FORMAT = "\u200d"  # ZERO WIDTH JOINER: part of emoji sequences, which the server allows


def clean_paste(text: str) -> str:
    """``text`` ready for the input: line breaks as the input's own mark (shown as '⏎'), tabs as
    spaces, and no control or invisible format characters (the server refuses a message holding one)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("".join(LINE_BREAKS))
    out: list[str] = []
    for char in text:
        if char in LINE_BREAKS:  # U+2028, U+2029 and NEL too: the log shows them as line breaks
            out.append(_BREAK)
        elif char == "\t":
            out.append("    ")
        elif char == _BREAK or unicodedata.category(char) in ("Cc", "Cs") or (
                unicodedata.category(char) == "Cf" and char not in _KEPT_FORMAT):
            continue
        else:
            out.append(char)
    return "".join(out)


def key_after_escape(event: events.Key) -> events.Key | None:
    """For Alt with one printable key (what ESC followed at once by that key is read as), the key."""
    key = event.key.removeprefix("alt+")
    if key == event.key or "+" in key or not event.is_printable or not event.character:
        return None
    return events.Key(key, event.character) if len(event.character) == 1 else None


class Composer(Input):
    """A one-line message input; ``message`` is what to send, ``message = text`` gives text back.

    Enter empties the input at once and sends the text in ``Submitted`` (its ``value``, which
    ``text_of`` turns into the text to send): keys that arrive before the app has handled it (a paste
    without bracketed paste is typed text and Enters; fast typing on a busy machine) belong to the
    next message. The app emptied it when it handled the message, so those keys were glued to the
    sent line, or lost.

    Esc and a key read together (typed fast, or coalesced by a laggy SSH link) reach the app as
    Alt+key, which the input would take as the key typed; it posts ``EscapeThen`` instead, so the
    app can do what was pressed: leave the input, then the key.
    """

    def __init__(self, placeholders: Sequence[str] = (), **kwargs: object) -> None:
        """``placeholders``: the hint in a few lengths, longest first; the longest that fits is shown
        (a long one was cut at the edge of a narrow terminal)."""
        super().__init__(placeholder=placeholders[0] if placeholders else "", **kwargs)  # type: ignore[arg-type]
        self.placeholders = tuple(placeholders)

    def on_resize(self, event: events.Resize) -> None:
        if self.placeholders:
            width = self.content_size.width - 1  # the cursor's cell
            self.placeholder = next((p for p in self.placeholders if cell_len(p) <= width), "")

    class EscapeThen(Message):
        """Esc, then ``key``, arrived as one Alt+key."""

        def __init__(self, key: events.Key) -> None:
            super().__init__()
            self.key = key

    async def _on_key(self, event: events.Key) -> None:
        # Enter is handled here, in turn with the typed keys: as a binding its action would run
        # after every key already queued (a whole pasted block) had gone into this message.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            await self.action_submit()
        elif (key := key_after_escape(event)) is not None:
            event.stop()
            event.prevent_default()
            self.post_message(self.EscapeThen(key))
        elif event.character and _BREAK in event.character:
            event.stop()  # the input's own line-break mark is never text
            event.prevent_default()

    async def action_submit(self) -> None:
        value = self.value
        self.value = ""
        self.post_message(self.Submitted(self, value, None))

    @staticmethod
    def text_of(value: str) -> str:
        """What to send for an input ``value``: its line breaks as "\\n" (a '⏎' of the text stays)."""
        return value.replace(_BREAK, "\n")

    @property
    def message(self) -> str:
        """The value as text to send."""
        return self.text_of(self.value)

    @message.setter
    def message(self, text: str) -> None:
        self.value = text.replace(_BREAK, "").replace("\n", _BREAK)
        self.cursor_position = len(self.value)

    @property
    def _value(self) -> Text:
        """The value as Input draws it: its line breaks as '⏎' (one cell each, as the mark in the value)."""
        text = super()._value
        text.plain = text.plain.replace(_BREAK, LINE_BREAK)
        return text

    @property
    def selected_text(self) -> str:
        """The selection as text (what Ctrl+C and Ctrl+X copy): line breaks as "\\n"."""
        return self.text_of(super().selected_text)

    def action_paste(self) -> None:
        """Ctrl+V: the app's clipboard goes in as a terminal's paste does."""
        if text := clean_paste(self.app.clipboard):
            self.replace(text, *self.selection)

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # Input's own handler would insert the first line again
        text = clean_paste(event.text)
        if text:
            self.replace(text, *self.selection)

    def replace(self, text: str, start: int, end: int) -> None:
        """As ``Input.replace``, but text past ``max_length`` is cut off with a warning, not refused whole."""
        start, end = sorted((max(0, start), min(len(self.value), end)))
        room = self.max_length - (len(self.value) - (end - start)) if self.max_length else len(text)
        if len(text) > room:
            if room <= 0:
                self.notify(f"A message holds at most {self.max_length} characters.", severity="warning",
                            timeout=3)
                return
            left_out = len(text) - room
            self.notify(f"Cut to the {self.max_length}-character limit of a message: the last {left_out} "
                        f"character{'s' if left_out != 1 else ''} left out.", severity="warning", timeout=6)
            text = text[:room]
        super().replace(text, start, end)
