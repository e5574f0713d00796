"""F1: every key binding and chat command (the keys from the app's `KEY_HELP`, beside its bindings).

It fits an 80×24 terminal without scrolling: the title and the way out are in the border, every
description takes one line there (`HELP_TEXT_CELLS`), and nothing else takes a row. A smaller
terminal scrolls it.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: At 80 columns a row has 76 cells inside the border and padding: the widest key (18) and the gap
#: (2) leave this many for its description, which must not wrap there (a wrapped row pushed the help
#: past 24 rows, behind a scrollbar).
HELP_TEXT_CELLS = 56

CHAT_COMMANDS = [
    ("/msg NAME TEXT", "send TEXT privately to NAME (or Enter on their name)"),
    ("/help", "this screen"),
    ("/quit, /exit", "leave the room and quit"),
    ("//TEXT", "send /TEXT (text that starts with a slash)"),
]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; border-title-style: bold; border-subtitle-color: $text-muted;
        background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("f1", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.bindings_help = bindings

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for key, description in self.bindings_help:
            keys.add_row(key, description)
        keys.add_row()
        keys.add_row(Text("chat commands", style="bold default"))
        for command, description in CHAT_COMMANDS:
            keys.add_row(command, description)
        scroll = VerticalScroll()
        scroll.border_title = "tuichat keys"
        scroll.border_subtitle = "Esc, F1 or q closes"
        with scroll:
            yield Static(Text("Function and Ctrl keys work while typing; letters once Esc leaves the input.",
                              style="dim"))
            yield Static(keys)
