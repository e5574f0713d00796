"""`--colors mono` for the interface: every colour Textual writes becomes one of the four grays.

Mono (``--colors mono``, NO_COLOR, TERM=dumb) draws the video in the 16 ANSI colours' black, bright
black, white and bright white; the rest of the screen must not bring red, green and the theme's
accents back. Textual's own filters do not fit: ``NoColor`` drops colour altogether (the video
would go blank wherever Textual paints it: under the help screen or a toast) and ``Monochrome``
maps by brightness alone (dark red text on black became black on black) and fails on unstyled
segments. Here grays keep their brightness, and a hue keeps what it was for: text in a colour
stays readable (white, bright white when it was a bright colour), a coloured background (a
highlight, a selection) becomes bright black so it still stands out. With four levels nothing may
be lost to contrast: text that would land on its own background's gray (or black on the terminal's
own, presumably dark, background) is lifted one step, and dim text of the two darkest grays is not
dimmed further. Half and full blocks are pixels, not text (the video, where Textual paints it): their
grays stay exactly as they are.
"""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color as RichColor
from rich.color import ColorType
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter

from tuichat.render.palette import MONO_INDICES, PALETTE_16

__all__ = ["FourGrays"]

_BLACK, _BRIGHT_BLACK, _WHITE, _BRIGHT_WHITE = (int(i) for i in MONO_INDICES)
_GRAY_LEVELS = [(int(PALETTE_16[i][0]), int(i)) for i in MONO_INDICES]
#: How far apart a colour's channels may be for it to count as a gray.
_GRAY_SPREAD = 24
#: Glyphs whose colours are pixels (the video's half blocks), kept exact.
_PIXELS = frozenset("▀▄█")
#: ANSI colours 9–14: the bright hues.
_BRIGHT_HUES = range(9, 15)


class FourGrays(LineFilter):
    """Turns each segment's colours into the four grays (see the module's docstring)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, None if style is None else _gray_style(style, lift=not _PIXELS.issuperset(text)),
                        control)
                for text, style, control in segments]


#: One step brighter (bright white: one step darker), for text on its own background's gray.
_LIFT = {_BLACK: _BRIGHT_BLACK, _BRIGHT_BLACK: _WHITE, _WHITE: _BRIGHT_WHITE, _BRIGHT_WHITE: _WHITE}


@lru_cache(1024)
def _gray_style(style: Style, *, lift: bool = True) -> Style:
    color, bgcolor = style.color, style.bgcolor
    if color is None and bgcolor is None:
        return style
    fg = None if color is None else _gray(color, foreground=True)
    bg = None if bgcolor is None else _gray(bgcolor, foreground=False)
    if fg is not None and fg.number is not None:
        behind = _BLACK if bg is None or bg.number is None else bg.number
        if lift and fg.number == behind:
            fg = RichColor.from_ansi(_LIFT[fg.number])
        if style.dim and fg.number in (_BLACK, _BRIGHT_BLACK):
            return style + Style.from_color(fg, bg) + Style(dim=False)
    return style + Style.from_color(fg, bg)


def _gray(color: RichColor, *, foreground: bool) -> RichColor:
    if color.type is ColorType.DEFAULT:
        return color
    red, green, blue = color.get_truecolor()
    if max(red, green, blue) - min(red, green, blue) <= _GRAY_SPREAD:
        luma = (red + green + blue) / 3
        return RichColor.from_ansi(min(_GRAY_LEVELS, key=lambda level: abs(level[0] - luma))[1])
    if not foreground:
        return RichColor.from_ansi(_BRIGHT_BLACK)
    bright = color.number in _BRIGHT_HUES if color.type is ColorType.STANDARD else (red + green + blue) / 3 > 128
    return RichColor.from_ansi(_BRIGHT_WHITE if bright else _WHITE)
