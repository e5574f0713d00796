"""The participant list: who is in the room and what they publish."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tuichat.tui.safe_text import cut_to_cells, printable
from tuichat.tui.snapshots import ParticipantView

#: A name keeps at least this many cells before the flags take a shorter form, or " (you)" goes.
MIN_NAME_CELLS = 6
#: A name keeps at least this many cells (and '…') whatever the width: a row must say who it is.
MIN_CUT_NAME_CELLS = 3
#: A flag: its text (with the space before it) and style.
Flag = tuple[str, str]
#: Cells of a border's top edge that its title cannot use: two corners and a blank each side.
TITLE_FRAME_CELLS = 6


def _flag_forms(participant: ParticipantView) -> list[list[Flag]]:
    """The flags from the widest form to the narrowest. What is off always stays (QA: at 80 columns
    "● zoe  mic off" hid that the camera was off too); what is on, the usual, gives way first."""
    if not participant.publishing:
        return [[]]
    mic_off = participant.audio and participant.audio_muted
    cam_off = participant.video and participant.video_muted
    words: list[Flag] = []
    if participant.audio:
        words.append(("  mic off", "red") if mic_off else ("  mic", "dim"))
    if participant.video:
        words.append(("  cam off", "red") if cam_off else ("  cam", "dim"))
    off = [flag for flag in words if flag[0].endswith(" off")]
    if mic_off and cam_off:
        merged, marks = [("  mic cam off", "red")], [("  ✗mic ✗cam", "red")]
    else:
        merged, marks = off, [("  ✗mic" if mic_off else "  ✗cam", "red")] if off else []
    forms: list[list[Flag]] = []
    for form in (words, off, merged, marks):
        if form not in forms:
            forms.append(form)
    return forms


def participant_label(participant: ParticipantView, width: int | None = None) -> Text:
    """One line, always, in ``width`` cells: a long name is cut with '…' (the list wrapped it mid-word,
    the bullet alone on a line); in a narrow list what is on goes first, then what is off takes a
    shorter form, then " (you)" goes (the name is bold), and the name is cut further last of all."""
    forms = _flag_forms(participant)
    name = printable(participant.name)
    you_forms = [" (you)", ""] if participant.is_self else [""]
    if width is None:
        return _label(participant, name, you_forms[0], forms[0])
    least_name = min(MIN_NAME_CELLS, cell_len(name))
    for you in you_forms:
        for flags in forms:
            room = width - 2 - len(you) - sum(len(text) for text, _ in flags)
            if room >= least_name:
                return _label(participant, cut_to_cells(name, room), you, flags)
    # Not even that fits: the narrowest flags, what is left for the name, and '…' at the end if need be.
    flags = forms[-1]
    room = width - 2 - sum(len(text) for text, _ in flags)
    label = _label(participant, cut_to_cells(name, max(room, min(MIN_CUT_NAME_CELLS, cell_len(name)))), "", flags)
    label.truncate(width, overflow="ellipsis")
    return label



def _label(participant: ParticipantView, name: str, you: str, flags: list[Flag]) -> Text:
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append("● ", style="green" if participant.publishing else "bright_black")
    label.append(name, style="bold" if participant.is_self else "")
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
        # The highlight stays on its person, not its row: Enter starts a private message to who is
        # highlighted, and someone above leaving moved it to the next person (review).
        highlighted = self.highlighted
        chosen = self.participants[highlighted].id if highlighted is not None and highlighted < len(
            self.participants) else None
        # We come first, the others in the room's order: after a server restart the room's order is
        # who rejoined first, and "(you)" moved about the list (QA).
        self.participants = tuple(sorted(participants, key=lambda p: not p.is_self))
        self._fill()
        self._title()
        if highlighted is not None and self.participants:
            ids = [p.id for p in self.participants]
            self.highlighted = ids.index(chosen) if chosen in ids else min(highlighted, len(ids) - 1)

    def _fill(self) -> None:
        width = self.scrollable_content_region.width or None
        self.clear_options()
        self.add_options([Option(participant_label(p, width), id=p.id) for p in self.participants])

    def on_resize(self) -> None:
        highlighted = self.highlighted
        self._fill()
        self._title()
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
        if not self.has_class("-stale"):
            self.border_title = f"people ({count})"
            return
        # The list is who was there when the connection dropped; the title says so in the room it has
        # (QA: "people (5, before the dro…" at 120 columns).
        wide = f"people ({count}) before the drop"
        width = self.outer_size.width
        self.border_title = wide if not width or len(wide) <= width - TITLE_FRAME_CELLS else f"people (was {count})"

    @on(OptionList.OptionSelected)
    def _request_private_message(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = next((p for p in self.participants if p.id == event.option.id), None)
        if chosen is None:
            return
        if chosen.is_self:  # QA: Enter on our own row did nothing and said nothing (Down wraps to it)
            self.notify("That is you: Enter on someone else's name starts a private message.", timeout=4)
            return
        self.post_message(self.PrivateMessageRequested(chosen.name))
