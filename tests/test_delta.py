"""Tests for tuichat.render.delta: the bytes, read back by pyte, keep every cell within tolerance."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuichat.render import HALF_BLOCK, PALETTE_256, CellImage, ColorMode, quantize
from tuichat.render.delta import DeltaEncoder

LOWER_HALF = "\u2584"
FULL_BLOCK = "\u2588"

_NAMES = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]
# pyte 0.8.2 names 16-colour SGRs; its table spells bg 105 "bfightmagenta" (upstream typo).
_NAME_INDEX = {n: i for i, n in enumerate(_NAMES)} | {"bright" + n: i + 8 for i, n in enumerate(_NAMES)}
_NAME_INDEX["bfightmagenta"] = 13


def _rgb(colour: str) -> tuple[int, int, int]:
    if colour in _NAME_INDEX:
        r, g, b = (int(v) for v in PALETTE_256[_NAME_INDEX[colour]])
        return r, g, b
    if len(colour) == 6:
        return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
    return (-1000, -1000, -1000)  # "default": never within tolerance


class Term:
    """A pyte screen and what its cells show as (top, bottom) RGB.

    '▀': fg over bg; '▄': bg over fg; '█': fg in both halves; a space: bg in both.
    """

    def __init__(self, cols: int, rows: int) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)

    def shows(self, cols: int, rows: int, x0: int = 0, y0: int = 0) -> tuple[npt.NDArray[np.int32], ...]:
        top = np.full((rows, cols, 3), -1000, dtype=np.int32)
        bottom = top.copy()
        for r in range(rows):
            line = self.screen.buffer[y0 + r]
            for c in range(cols):
                ch = line[x0 + c]
                if ch.data == HALF_BLOCK:
                    top[r, c], bottom[r, c] = _rgb(ch.fg), _rgb(ch.bg)
                elif ch.data == LOWER_HALF:
                    top[r, c], bottom[r, c] = _rgb(ch.bg), _rgb(ch.fg)
                elif ch.data == FULL_BLOCK:
                    top[r, c] = bottom[r, c] = _rgb(ch.fg)
                elif ch.data == " ":
                    top[r, c] = bottom[r, c] = _rgb(ch.bg)
        return top, bottom


def cells_of(top: npt.NDArray[np.uint8], bottom: npt.NDArray[np.uint8], mode: ColorMode) -> CellImage:
    tc, ti = quantize(top, mode)
    bc, bi = quantize(bottom, mode)
    return CellImage(tc, bc, ti, bi, mode)


def max_error(term: Term, cells: CellImage, x0: int = 0, y0: int = 0) -> int:
    top, bottom = term.shows(cells.cols, cells.rows, x0, y0)
    return int(
        max(np.abs(top - cells.top.astype(np.int32)).max(), np.abs(bottom - cells.bottom.astype(np.int32)).max())
    )


def scene(rows: int, cols: int, seed: int) -> npt.NDArray[np.float64]:
    """A smooth photo-like base: gradients, a disc and some texture, as float RGB (2*rows, cols, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : 2 * rows, 0:cols].astype(np.float64)
    img = np.stack([x / cols * 200 + 20, y / (2 * rows) * 180 + 30, np.full_like(x, 90.0)], axis=2)
    img[(x - cols / 2) ** 2 + (y - rows) ** 2 < (rows * 0.6) ** 2] = (220, 180, 150)
    img += rng.normal(0, 20, (2 * rows, cols, 1))
    return img


def frame_cells(img: npt.NDArray[np.float64], mode: ColorMode = ColorMode.TRUECOLOR) -> CellImage:
    px = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return cells_of(px[0::2], px[1::2], mode)


def noisy_sequence(rows: int, cols: int, n: int, noise: float, shift: bool, seed: int = 0) -> list[CellImage]:
    rng = np.random.default_rng(seed)
    base = scene(rows, cols, seed)
    frames = []
    for i in range(n):
        img = np.roll(base, i, axis=1) if shift else base
        frames.append(frame_cells(img + rng.normal(0, noise, img.shape)))
    return frames


# ---------------------------------------------------------------------------------- invariant


@pytest.mark.parametrize("shift", [False, True])
def test_noisy_frames_stay_within_threshold(shift: bool) -> None:
    rows, cols, x0, y0 = 12, 40, 3, 2
    term = Term(x0 + cols + 2, y0 + rows + 1)
    enc = DeltaEncoder(cols, rows, x0=x0, y0=y0)
    for cells in noisy_sequence(rows, cols, 12, noise=6.0, shift=shift):
        data = enc.encode(cells)
        assert data.endswith(b"\x1b[0m")
        term.feed(data)
        assert max_error(term, cells, x0, y0) <= 8
        shown = enc.shown()
        assert shown is not None
        top, bottom = term.shows(cols, rows, x0, y0)
        assert np.array_equal(shown[0], top) and np.array_equal(shown[1], bottom)
    # Nothing outside the area was touched, and the last byte left the pen at its default.
    assert all(term.screen.buffer[y0 - 1][c].data == " " for c in range(x0 + cols + 2))
    assert all(term.screen.buffer[r][x0 - 1].data == " " for r in range(y0 + rows))
    assert term.screen.cursor.attrs.fg == "default" and term.screen.cursor.attrs.bg == "default"


def test_first_frame_is_a_full_redraw_and_static_scene_costs_nothing() -> None:
    rows, cols = 10, 30
    cells = frame_cells(scene(rows, cols, 1))
    enc = DeltaEncoder(cols, rows)
    term = Term(cols, rows)
    first = enc.encode(cells)
    term.feed(first)
    assert max_error(term, cells) <= 8
    assert enc.stats.cells == rows * cols
    for _ in range(3):
        assert enc.encode(cells) == b"\x1b[0m"


def test_noise_below_threshold_costs_almost_nothing() -> None:
    rows, cols = 20, 60
    frames = noisy_sequence(rows, cols, 10, noise=1.5, shift=False, seed=3)
    enc = DeltaEncoder(cols, rows)
    term = Term(cols, rows)
    first = enc.encode(frames[0])
    term.feed(first)
    later = 0
    for cells in frames[1:]:
        data = enc.encode(cells)
        later += len(data)
        term.feed(data)
        assert max_error(term, cells) <= 8
    # σ=1.5 noise: a few cells cross ±8 now and then; far under 1% of a full redraw per frame.
    assert later / 9 < len(first) * 0.01, (later, len(first))


def test_invalidate_gives_a_full_redraw() -> None:
    rows, cols = 6, 20
    cells = frame_cells(scene(rows, cols, 2))
    enc = DeltaEncoder(cols, rows)
    enc.encode(cells)
    assert enc.encode(cells) == b"\x1b[0m"
    enc.invalidate()
    assert enc.shown() is None
    term = Term(cols, rows)
    term.feed(b"\x1b[2J")  # as if an overlay cleared the screen
    term.feed(enc.encode(cells))
    assert enc.stats.cells == rows * cols
    assert max_error(term, cells) <= 8


def test_resize_moves_and_redraws() -> None:
    enc = DeltaEncoder(20, 6)
    enc.encode(frame_cells(scene(6, 20, 2)))
    enc.resize(25, 8, 4, 1)
    with pytest.raises(ValueError):
        enc.encode(frame_cells(scene(6, 20, 2)))
    cells = frame_cells(scene(8, 25, 4))
    term = Term(30, 10)
    term.feed(enc.encode(cells))
    assert enc.stats.cells == 25 * 8
    assert max_error(term, cells, 4, 1) <= 8
    assert term.screen.buffer[1][3].data == " " and term.screen.buffer[0][4].data == " "
    with pytest.raises(ValueError):
        enc.resize(0, 5)
    with pytest.raises(ValueError):
        enc.resize(5, 5, -1, 0)


def test_unknown_sgr_state_at_frame_start() -> None:
    """Another writer changing the pen between frames must not change what our cells show."""
    rows, cols = 8, 30
    frames = noisy_sequence(rows, cols, 6, noise=8.0, shift=True, seed=5)
    enc = DeltaEncoder(cols, rows)
    term = Term(cols, rows + 2)
    for cells in frames:
        term.feed(b"\x1b[38;2;1;2;3;48;2;250;0;0m\x1b[9;1Hstatus\x1b[0m\x1b[38;5;200m")
        term.feed(enc.encode(cells))
        assert max_error(term, cells) <= 8


@pytest.mark.parametrize("mode", [ColorMode.COLOR256, ColorMode.COLOR16, ColorMode.MONO])
def test_palette_modes_resend_only_changed_indices(mode: ColorMode) -> None:
    rows, cols = 8, 24
    frames = [frame_cells(img, mode) for img in (scene(rows, cols, 6), scene(rows, cols, 6) + 40, scene(rows, cols, 7))]
    enc = DeltaEncoder(cols, rows, mode=mode)
    term = Term(cols, rows)
    for cells in frames:
        data = enc.encode(cells)
        assert b"38;2" not in data and b"48;2" not in data
        term.feed(data)
        # Palette colours are shown exactly (tolerance only merges near-identical palette entries).
        assert max_error(term, cells) <= 8
        assert enc.encode(cells) == b"\x1b[0m"
    with pytest.raises(ValueError):
        enc.encode(frames[0] if mode is ColorMode.TRUECOLOR else frame_cells(scene(rows, cols, 6)))


def test_truecolor_uses_short_codes_and_spaces() -> None:
    """A flat gray area: one 256-colour gray SGR and spaces, not 38;2 per cell."""
    rows, cols = 2, 10
    px = np.full((rows, cols, 3), 128, dtype=np.uint8)
    enc = DeltaEncoder(cols, rows)
    data = enc.encode(cells_of(px, px, ColorMode.TRUECOLOR))
    assert data == b"\x1b[1H\x1b[48;5;244m          \x1b[2H          \x1b[0m"
    plain = DeltaEncoder(cols, rows, palette_codes=False, spaces=False)
    data = plain.encode(cells_of(px, px, ColorMode.TRUECOLOR))
    assert data.startswith("\x1b[1H\x1b[38;2;128;128;128;48;2;128;128;128m▀▀".encode())


def test_cursor_moves_choose_cuf_and_cup() -> None:
    rows, cols = 3, 40
    base = np.full((rows, cols, 3), 50, dtype=np.uint8)
    enc = DeltaEncoder(cols, rows, x0=2, y0=1)
    enc.encode(cells_of(base, base, ColorMode.TRUECOLOR))
    changed = base.copy()
    changed[0, 5] = changed[0, 20] = changed[2, 7] = (200, 10, 10)
    data = enc.encode(cells_of(changed, base, ColorMode.TRUECOLOR))
    assert data.startswith(b"\x1b[2;8H")  # CUP to (row 0, col 5) at origin (2, 1), 1-based
    assert b"\x1b[14C" in data  # CUF from col 6 to col 20
    assert b"\x1b[4;10H" in data
    term = Term(45, 5)
    enc2 = DeltaEncoder(cols, rows, x0=2, y0=1)
    term.feed(enc2.encode(cells_of(base, base, ColorMode.TRUECOLOR)))
    term.feed(enc2.encode(cells_of(changed, base, ColorMode.TRUECOLOR)))
    assert max_error(term, cells_of(changed, base, ColorMode.TRUECOLOR), 2, 1) <= 8


def test_encode_rgb_and_validation() -> None:
    px = np.full((2, 3, 3), 77, dtype=np.uint8)
    enc = DeltaEncoder(3, 2)
    assert enc.shown() is None
    enc.encode_rgb(px, px)
    shown = enc.shown()
    assert shown is not None and np.abs(shown[0].astype(int) - 77).max() <= 8
    with pytest.raises(ValueError):
        DeltaEncoder(3, 2, threshold=-1)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 6),
    cols=st.integers(1, 30),
    threshold=st.integers(0, 30),
    mode=st.sampled_from(list(ColorMode)),
    noise=st.floats(0, 60),
    levels=st.sampled_from([2, 6, 256]),
)
def test_property_random_sequences_keep_the_invariant(
    seed: int, rows: int, cols: int, threshold: int, mode: ColorMode, noise: float, levels: int
) -> None:
    rng = np.random.default_rng(seed)
    step = 255 // (levels - 1)
    base = rng.integers(0, levels, (2 * rows, cols, 3)) * step
    enc = DeltaEncoder(cols, rows, x0=1, threshold=threshold, mode=mode)
    term = Term(cols + 2, rows)
    for i in range(5):
        img = base + rng.normal(0, noise, base.shape)
        if i == 3:
            enc.invalidate()
        px = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        cells = cells_of(px[0::2], px[1::2], mode)
        term.feed(enc.encode(cells))
        tol = threshold if mode is ColorMode.TRUECOLOR else max(threshold, 0)
        assert max_error(term, cells, 1, 0) <= tol


Frame = tuple[npt.NDArray[np.uint8], ...]


def _two_frames(enc: DeltaEncoder, first: Frame, second: Frame) -> bytes:
    """Encode `first` then `second` (each (top, bottom)) through pyte; the second frame's bytes."""
    term = Term(enc.cols, enc.rows)
    for top, bottom in (first, second):
        cells = cells_of(top, bottom, ColorMode.TRUECOLOR)
        data = enc.encode(cells)
        term.feed(data)
        assert max_error(term, cells) <= enc.threshold
    return data


def test_lower_half_and_full_block_reuse_the_pens() -> None:
    """A cell whose top is the current bg and bottom the current fg is '▄' with no colour code;
    one whose halves both match the fg is '█'."""
    red, blue = (200, 20, 20), (20, 20, 200)
    top = np.array([[red, blue, red]], dtype=np.uint8)
    bottom = np.array([[blue, red, red]], dtype=np.uint8)
    enc = DeltaEncoder(3, 1, palette_codes=False)
    data = enc.encode(cells_of(top, bottom, ColorMode.TRUECOLOR))
    assert data == f"\x1b[1H\x1b[38;2;200;20;20;48;2;20;20;200m{HALF_BLOCK}{LOWER_HALF}{FULL_BLOCK}\x1b[0m".encode()
    assert enc.stats.flips == 2 and enc.stats.sgr == 1
    term = Term(3, 1)
    term.feed(data)
    assert max_error(term, cells_of(top, bottom, ColorMode.TRUECOLOR)) == 0


def test_moving_cells_share_pens_within_the_full_tolerance() -> None:
    """Cells that moved far accept any colour within the threshold (they will move again), so two
    neighbours 14 levels apart share one pen; cells that only drifted past the threshold get a
    tighter box (threshold - 4) and their own pens, so sub-threshold noise does not expire them."""
    cols = 2
    flat = np.full((1, cols, 3), 100, dtype=np.uint8)
    moved = np.array([[(150, 150, 150), (164, 164, 164)]], dtype=np.uint8)
    enc = DeltaEncoder(cols, 1, palette_codes=False)
    data = _two_frames(enc, (flat, flat), (moved, moved))
    assert enc.stats.cells == 2 and data.count(b"m") == 2  # one SGR and the final reset
    drifted = np.array([[(109, 109, 109), (123, 123, 123)]], dtype=np.uint8)
    base = np.array([[(100, 100, 100), (114, 114, 114)]], dtype=np.uint8)
    enc = DeltaEncoder(cols, 1, palette_codes=False)
    data = _two_frames(enc, (base, base), (drifted, drifted))
    assert enc.stats.cells == 2 and data.count(b"m") == 3  # two SGRs and the reset
