"""The video area. Until media lands it is a placeholder of the size the video will take."""

from __future__ import annotations

from rich.align import Align
from rich.text import Text
from textual.widget import Widget


class VideoPanel(Widget):
    DEFAULT_CSS = """
    VideoPanel {
        height: 2fr;
        min-height: 6;
        border: round $primary-background-lighten-2;
        border-title-color: $text-muted;
        background: $background;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.border_title = "video"

    def render(self) -> Align:
        text = Text("no video in this room yet", style="dim italic")
        return Align.center(text, vertical="middle")
