"""The screen readers behind the delta tests and the bench: how pyte shows each half-block glyph.

The encoder writes '▀' and spaces today; '▄' and '█' are readable too, so a future glyph choice
(reusing the current fg for a cell's bottom half, say) is checked by the same readers. Each glyph is
fed to pyte with known fg and bg, and both readers must report the halves the glyph paints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_delta import FULL_BLOCK, LOWER_HALF, Term
from tuichat.render import HALF_BLOCK

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from terminal_bytes import screen_colours

FG, BG = (200, 10, 30), (5, 120, 250)


@pytest.mark.parametrize(
    ("glyph", "top", "bottom"),
    [(HALF_BLOCK, FG, BG), (LOWER_HALF, BG, FG), (FULL_BLOCK, FG, FG), (" ", BG, BG)],
)
def test_pyte_shows_each_glyph_as_assumed(glyph: str, top: tuple[int, ...], bottom: tuple[int, ...]) -> None:
    term = Term(3, 1)
    term.feed(f"\x1b[1;2H\x1b[38;2;{FG[0]};{FG[1]};{FG[2]};48;2;{BG[0]};{BG[1]};{BG[2]}m{glyph}\x1b[0m".encode())
    ch = term.screen.buffer[0][1]
    assert ch.data == glyph and ch.fg == "c80a1e" and ch.bg == "0578fa"
    got_top, got_bottom = term.shows(1, 1, x0=1)
    assert tuple(got_top[0, 0]) == top and tuple(got_bottom[0, 0]) == bottom
    bench_top, bench_bottom = screen_colours(term.screen, 1, 1, x0=1)
    assert np.array_equal(bench_top, got_top) and np.array_equal(bench_bottom, got_bottom)


def test_palette_codes_read_back_as_xterm_rgb() -> None:
    """`38;5;n`/`48;5;n` (the encoder's short codes) are shown as xterm's palette RGB."""
    term = Term(2, 1)
    term.feed(f"\x1b[38;5;196;48;5;244m{LOWER_HALF}\x1b[0m".encode())
    top, bottom = term.shows(1, 1)
    assert tuple(top[0, 0]) == (128, 128, 128) and tuple(bottom[0, 0]) == (255, 0, 0)
