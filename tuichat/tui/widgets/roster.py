"""The participant list: who is in the room and what they publish."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tuichat.tui.safe_text import printable
from tuichat.tui.snapshots import ParticipantView

#: A name keeps at least this many cells before the mic and cam flags give way to it.
MIN_NAME_CELLS = 6


def participant_label(participant: ParticipantView, width: int | None = None) -> Text:
    """One line, always: a long name is cut with '…' to leave room for the flags (the list wrapped
    it mid-word, the bullet alone on a line), and in a very narrow list the flags go first."""
    flags: list[tuple[str, str]] = []
    if participant.publishing:
        if participant.audio:
            flags.append(("  mic off", "red") if participant.audio_muted else ("  mic", "dim"))
        if participant.video:
            flags.append(("  cam off", "red") if participant.video_muted else ("  cam", "dim"))
    you = " (you)" if participant.is_self else ""
    name = Text(printable(participant.name), style="bold" if participant.is_self else "")
    if width is not None:
        budget = width - 2 - len(you)
        while flags and budget - sum(len(text) for text, _ in flags) < min(MIN_NAME_CELLS, name.cell_len):
            flags.pop()
        name.truncate(max(1, budget - sum(len(text) for text, _ in flags)), overflow="ellipsis")
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append("● ", style="green" if participant.publishing else "bright_black")
    label.append_text(name)
    if you:
        label.append(you, style="dim")
    for text, style in flags:
        label.append(text, style=style)
    return label


class ParticipantList(OptionList):
    """Enter on a participant asks the app to start a private message to them."""

    DEFAULT_CSS = """
    ParticipantList {
        height: 1fr;
        border: round $primary-background-lighten-2;
        border-title-color: $text-muted;
        background: $surface;
    }
    ParticipantList:focus { border: round $accent; }
    ParticipantList.-stale { text-opacity: 55%; }
    """

    class PrivateMessageRequested(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.participants: tuple[ParticipantView, ...] = ()
        self.border_title = "people"

    def show(self, participants: tuple[ParticipantView, ...]) -> None:
        highlighted = self.highlighted
        self.participants = participants
        self._fill()
        self._title()
        if highlighted is not None and participants:
            self.highlighted = min(highlighted, len(participants) - 1)

    def _fill(self) -> None:
        width = self.scrollable_content_region.width or None
        self.clear_options()
        self.add_options([Option(participant_label(p, width), id=p.id) for p in self.participants])

    def on_resize(self) -> None:
        highlighted = self.highlighted
        self._fill()
        self.highlighted = highlighted

    def on_focus(self) -> None:
        # Enter should do something at once: start on the first person who is not you.
        if self.highlighted is None and self.participants:
            self.highlighted = next((i for i, p in enumerate(self.participants) if not p.is_self), 0)

    def set_stale(self, stale: bool) -> None:
        """Not in the room just now (reconnecting): the list is who was there, dimmed and said so."""
        self.set_class(stale, "-stale")
        self._title()

    def _title(self) -> None:
        count = len(self.participants)
        self.border_title = f"people ({count}, before the drop)" if self.has_class("-stale") else f"people ({count})"

    @on(OptionList.OptionSelected)
    def _request_private_message(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = next((p for p in self.participants if p.id == event.option.id), None)
        if chosen is not None and not chosen.is_self:
            self.post_message(self.PrivateMessageRequested(chosen.name))
