"""Colour modes a terminal can show, and how to guess one from the environment."""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["ColorMode", "detect_color_mode"]


class ColorMode(enum.Enum):
    """How many colours the terminal can show; the value is the spelling users type."""

    TRUECOLOR = "truecolor"
    COLOR256 = "256"
    COLOR16 = "16"
    MONO = "mono"

    @classmethod
    def parse(cls, text: str) -> ColorMode:
        """Parse a user-facing name (`truecolor`, `256`, `16`, `mono`), case-insensitively.

        A typo must be an error that names the valid choices, not a silent fallback.
        """
        key = text.strip().lower()
        for mode in cls:
            if mode.value == key:
                return mode
        choices = ", ".join(mode.value for mode in cls)
        raise ValueError(f"unknown colour mode {text!r}; choose one of: {choices}")


def detect_color_mode(environ: Mapping[str, str]) -> ColorMode:
    """Guess the colour mode from environment variables, the way Rich and most tools do.

    Precedence: `NO_COLOR` (non-empty, see no-color.org) → MONO; `COLORTERM` truecolor/24bit →
    TRUECOLOR; `TERM` ending in "-direct" (terminfo's truecolor types) → TRUECOLOR;
    `TERM` containing "256color" → COLOR256; `TERM=dumb` → MONO; anything else → COLOR16.
    Taking a mapping (not reading `os.environ`) keeps it testable.
    """
    if environ.get("NO_COLOR", ""):
        return ColorMode.MONO
    if environ.get("COLORTERM", "").strip().lower() in {"truecolor", "24bit"}:
        return ColorMode.TRUECOLOR
    term = environ.get("TERM", "").strip().lower()
    if term.endswith("-direct"):
        return ColorMode.TRUECOLOR
    if "256color" in term:
        return ColorMode.COLOR256
    if term == "dumb":
        return ColorMode.MONO
    return ColorMode.COLOR16
