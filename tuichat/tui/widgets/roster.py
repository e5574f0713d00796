"""The participant list: who is in the room and what they publish."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tuichat.tui.bridge import ParticipantView
from tuichat.tui.safe_text import printable


def participant_label(participant: ParticipantView) -> Text:
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append("● ", style="green" if participant.publishing else "bright_black")
    label.append(printable(participant.name), style="bold" if participant.is_self else "")
    if participant.is_self:
        label.append(" (you)", style="dim")
    if participant.publishing:
        if participant.audio:
            label.append("  mic off" if participant.audio_muted else "  mic", style="red" if participant.audio_muted
                         else "dim")
        if participant.video:
            label.append("  cam off" if participant.video_muted else "  cam", style="red" if participant.video_muted
                         else "dim")
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
        self.clear_options()
        self.add_options([Option(participant_label(p), id=p.id) for p in participants])
        self._title()
        if highlighted is not None and participants:
            self.highlighted = min(highlighted, len(participants) - 1)

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
