"""F1: every key binding and chat command (the keys from the app's `KEY_HELP`, beside its bindings)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

CHAT_COMMANDS = [
    ("/msg NAME TEXT", "send TEXT privately to NAME (Enter on a name in the list starts one)"),
    ("/help", "this screen"),
    ("/quit, /exit", "leave the room and quit"),
    ("//TEXT", "send /TEXT (text that starts with a slash)"),
]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 1 2;
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
        commands = Table.grid(padding=(0, 2))
        commands.add_column(style="bold cyan", no_wrap=True)
        commands.add_column()
        for command, description in CHAT_COMMANDS:
            commands.add_row(command, description)
        with VerticalScroll():
            yield Static(Text("tuichat keys", style="bold"))
            yield Static(Text("Function and Ctrl keys work while you type; the single letters work "
                              "once Esc has left the input line.", style="dim"))
            yield Static(keys)
            yield Static(Text("\nchat commands", style="bold"))
            yield Static(commands)
            yield Static(Text("\nEsc, F1 or q closes this screen.", style="dim"))
