"""Tests for tuichat.render: layout, resampling, palettes, runs and the ANSI writer (read by pyte)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tuichat.render import (
    HALF_BLOCK,
    MONO_INDICES,
    PALETTE_16,
    PALETTE_256,
    CellImage,
    ColorMode,
    Placement,
    detect_color_mode,
    encode_ansi,
    fit,
    quantize,
    resize_area,
    row_runs,
    to_cells,
)

# ---------------------------------------------------------------------------------------- modes


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("truecolor", ColorMode.TRUECOLOR),
        ("256", ColorMode.COLOR256),
        ("16", ColorMode.COLOR16),
        ("mono", ColorMode.MONO),
        (" TrueColor ", ColorMode.TRUECOLOR),
    ],
)
def test_parse_color_mode(text: str, mode: ColorMode) -> None:
    assert ColorMode.parse(text) is mode


def test_parse_color_mode_rejects_with_choices() -> None:
    with pytest.raises(
        ValueError, match=r"unknown colour mode '24bit'; choose one of: truecolor, 256, 16, mono"
    ):
        ColorMode.parse("24bit")


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({"COLORTERM": "truecolor", "TERM": "xterm-256color"}, ColorMode.TRUECOLOR),
        ({"COLORTERM": "24bit", "TERM": "xterm"}, ColorMode.TRUECOLOR),
        ({"COLORTERM": "yes", "TERM": "xterm-256color"}, ColorMode.COLOR256),
        ({"TERM": "screen-256color"}, ColorMode.COLOR256),
        ({"TERM": "tmux-256color"}, ColorMode.COLOR256),
        ({"TERM": "dumb"}, ColorMode.MONO),
        ({"TERM": "xterm-direct"}, ColorMode.TRUECOLOR),
        ({"TERM": "xterm"}, ColorMode.COLOR16),
        ({"TERM": "linux"}, ColorMode.COLOR16),
        ({"TERM": "screen"}, ColorMode.COLOR16),
        ({"TERM": "vt100"}, ColorMode.COLOR16),
        ({}, ColorMode.COLOR16),
        ({"NO_COLOR": "1", "COLORTERM": "truecolor", "TERM": "xterm-256color"}, ColorMode.MONO),
        ({"NO_COLOR": "", "COLORTERM": "truecolor"}, ColorMode.TRUECOLOR),
    ],
)
def test_detect_color_mode(env: dict[str, str], mode: ColorMode) -> None:
    assert detect_color_mode(env) is mode


# --------------------------------------------------------------------------------------- layout


def test_fit_brief_example() -> None:
    # 640×480 into 80×24 cells = 80×48 px: height-bound, scale 0.1 → 64×48 px = 64×24 cells.
    assert fit(640, 480, 80, 24) == Placement(x=8, y=0, cols=64, rows=24)
    assert fit(640, 480, 80, 24).pixel_size == (64, 48)


@pytest.mark.parametrize(("src_w", "src_h"), [(1280, 720), (480, 640), (500, 500), (1, 1000), (1000, 1)])
@pytest.mark.parametrize(("cols", "rows"), [(200, 20), (20, 60), (80, 24), (1, 1), (7, 3), (160, 45)])
def test_fit_keeps_aspect_centred_inside(src_w: int, src_h: int, cols: int, rows: int) -> None:
    p = fit(src_w, src_h, cols, rows)
    assert 1 <= p.cols <= cols and 1 <= p.rows <= rows
    assert p.x >= 0 and p.x + p.cols <= cols and p.y >= 0 and p.y + p.rows <= rows
    # Centred: leftovers split evenly, the odd cell on the right/bottom.
    assert p.x == (cols - p.cols) // 2 and p.y == (rows - p.rows) // 2
    # It fills the binding dimension.
    assert p.cols == cols or p.rows == rows
    # Aspect: the exact width for the chosen height, and the exact height for the chosen width,
    # are each within one cell (unless clamped to the 1-cell minimum).
    exact_cols = p.rows * 2 * src_w / src_h
    exact_rows = p.cols * src_h / src_w / 2
    assert abs(p.cols - exact_cols) <= 1 or p.cols == 1 or p.cols == cols
    assert abs(p.rows - exact_rows) <= 1 or p.rows == 1 or p.rows == rows


def test_fit_landscape_into_tall_area_letterboxes() -> None:
    p = fit(1280, 720, 40, 100)
    assert (p.cols, p.rows) == (40, 11)  # 40 px wide → 22.5 px tall → 11 cells
    assert p.x == 0 and p.y == (100 - 11) // 2


def test_fit_portrait_into_wide_area_pillarboxes() -> None:
    p = fit(480, 640, 200, 20)
    assert (p.cols, p.rows) == (30, 20)  # 40 px tall → 30 px wide
    assert p.y == 0 and p.x == 85


@pytest.mark.parametrize("args", [(0, 10, 10, 10), (10, -1, 10, 10), (10, 10, 0, 10), (10, 10, 10, -5)])
def test_fit_rejects_empty(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        fit(*args)


# --------------------------------------------------------------------------------------- resize


def test_resize_constant_stays_constant() -> None:
    frame = np.empty((480, 640, 3), dtype=np.uint8)
    frame[:] = (13, 200, 77)
    for w, h in [(160, 90), (33, 17), (1, 1), (640, 480), (1000, 3)]:
        out = resize_area(frame, w, h)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
        assert (out == (13, 200, 77)).all()


def test_resize_checkerboard_averages_to_gray() -> None:
    frame = np.zeros((64, 64, 3), dtype=np.uint8)
    frame[0::2, 0::2] = 255
    frame[1::2, 1::2] = 255
    assert (resize_area(frame, 32, 32) == 128).all()  # 127.5 rounds up on the integer path too
    assert np.abs(resize_area(frame, 5, 3).astype(int) - 128).max() <= 2  # non-integer factors
    assert (resize_area(frame, 1, 1) == 128).all()


def test_resize_exact_partial_pixels() -> None:
    # 3 pixels into 2: [a, a/2 + b/2 weights 2/3·(a + b/2)...] computed by hand.
    row = np.array([[[0, 0, 0], [90, 90, 90], [180, 180, 180]]], dtype=np.uint8)
    out = resize_area(row, 2, 1)[0, :, 0]
    # Span 0 covers [0, 1.5): (0·1 + 90·0.5) / 1.5 = 30; span 1 covers [1.5, 3): (45 + 180) / 1.5 = 150.
    assert out.tolist() == [30, 150]


def test_resize_gradient_is_monotonic() -> None:
    ramp = np.linspace(0, 255, 640).astype(np.uint8)
    frame = np.repeat(np.repeat(ramp[None, :, None], 3, axis=2), 480, axis=0)
    for w, h in [(160, 90), (37, 11), (1000, 5)]:
        out = resize_area(frame, w, h).astype(int)
        assert (np.diff(out, axis=1) >= 0).all()
        # Rows agree (no vertical bleed); float32 weights may tip an exact .5 by one level.
        assert (np.abs(out - out[:1]) <= 1).all()


def test_resize_grayscale_2d() -> None:
    frame = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert resize_area(frame, 2, 1).tolist() == [[4, 6]]


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros(5, np.uint8)]
)
def test_resize_rejects_bad_frames(bad: npt.NDArray[np.generic]) -> None:
    with pytest.raises(ValueError):
        resize_area(bad, 2, 2)  # type: ignore[arg-type]


@st.composite
def frames(draw: st.DrawFn, max_side: int = 40) -> npt.NDArray[np.uint8]:
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    return draw(hnp.arrays(np.uint8, (h, w, 3), elements=st.integers(0, 255)))


@settings(max_examples=150, deadline=None)
@given(frame=frames(), width=st.integers(1, 50), height=st.integers(1, 50))
def test_resize_property_shape_and_range(frame: npt.NDArray[np.uint8], width: int, height: int) -> None:
    out = resize_area(frame, width, height)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    lo = frame.min(axis=(0, 1))
    hi = frame.max(axis=(0, 1))
    assert (out >= lo).all() and (out <= hi).all()
    # Equal spans tile the source exactly once, so the mean survives (up to per-pixel rounding).
    assert np.abs(out.mean(axis=(0, 1)) - frame.mean(axis=(0, 1))).max() <= 0.5 + 1e-3


@settings(max_examples=60, deadline=None)
@given(frame=frames(max_side=24), width=st.integers(1, 24), height=st.integers(1, 24))
def test_resize_matches_reference(frame: npt.NDArray[np.uint8], width: int, height: int) -> None:
    """Compare against a slow, obviously-correct per-pixel overlap computation."""

    def weights(n: int, out: int) -> npt.NDArray[np.float64]:
        m = np.zeros((out, n))
        for i in range(out):
            lo, hi = i * n / out, (i + 1) * n / out
            for p in range(n):
                m[i, p] = max(0.0, min(hi, p + 1) - max(lo, p))
        return m / m.sum(axis=1, keepdims=True)

    ref = np.einsum(
        "ip,pqc,jq->ijc", weights(frame.shape[0], height), frame.astype(float), weights(frame.shape[1], width)
    )
    assert np.abs(resize_area(frame, width, height) - ref).max() <= 0.5 + 1e-3


# ------------------------------------------------------------------------------------- palettes


def test_palette_tables() -> None:
    assert PALETTE_256.shape == (256, 3) and PALETTE_256.dtype == np.uint8
    assert (PALETTE_256[:16] == PALETTE_16).all()
    assert PALETTE_256[16].tolist() == [0, 0, 0] and PALETTE_256[231].tolist() == [255, 255, 255]
    assert PALETTE_256[196].tolist() == [255, 0, 0] and PALETTE_256[67].tolist() == [95, 135, 175]
    assert PALETTE_256[232].tolist() == [8, 8, 8] and PALETTE_256[255].tolist() == [238, 238, 238]
    assert PALETTE_16[9].tolist() == [255, 0, 0] and PALETTE_16[1].tolist() == [205, 0, 0]


@pytest.mark.parametrize(
    ("rgb", "i256", "i16"),
    [
        ((255, 0, 0), 196, 9),
        ((0, 255, 0), 46, 10),
        ((0, 0, 255), 21, 4),
        ((255, 255, 0), 226, 11),
        ((255, 255, 255), 231, 15),
        ((0, 0, 0), 16, 0),
        ((128, 128, 128), 244, 8),  # exact gray beats cube 102 (135,135,135)
        ((205, 0, 0), 160, 1),
        ((95, 135, 175), 67, 8),
        ((18, 18, 18), 233, 0),
    ],
)
def test_quantize_pure_colours(rgb: tuple[int, int, int], i256: int, i16: int) -> None:
    px = np.array([[rgb]], dtype=np.uint8)
    for mode, want in [(ColorMode.COLOR256, i256), (ColorMode.COLOR16, i16)]:
        colours, index = quantize(px, mode)
        assert index.dtype == np.int16
        assert int(index[0, 0]) == want, mode
        assert colours[0, 0].tolist() == PALETTE_256[want].tolist()


@pytest.mark.parametrize("rgb", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 255, 255), (0, 0, 0),
                                 (128, 128, 128), (95, 135, 175), (18, 18, 18), (200, 200, 200)])
def test_mono_is_the_16_colour_grays_dithered_to_the_pixels_luma(rgb: tuple[int, int, int]) -> None:
    """An area of one colour averages to its BT.601 luma, drawn with the two grays around it."""
    r, g, b = rgb
    luma = (77 * r + 150 * g + 29 * b + 128) >> 8
    colours, index = quantize(np.full((16, 16, 3), rgb, dtype=np.uint8), ColorMode.MONO)
    assert set(index.ravel().tolist()) <= set(MONO_INDICES.tolist())
    assert abs(float(colours[..., 0].mean()) - luma) <= 4, (colours[..., 0].mean(), luma)
    levels = sorted({int(v) for v in PALETTE_256[MONO_INDICES][:, 0]})
    below = max(v for v in levels if v <= luma)
    assert {int(v) for v in np.unique(colours[..., 0])} <= {below, min((v for v in levels if v > luma), default=below)}


def test_quantize_maps_palette_to_itself() -> None:
    _, idx256 = quantize(PALETTE_256[16:], ColorMode.COLOR256)
    assert idx256.tolist() == list(range(16, 256))
    _, idx16 = quantize(PALETTE_16, ColorMode.COLOR16)
    assert idx16.tolist() == list(range(16))


def test_quantize_outputs_stay_in_their_palette() -> None:
    rng = np.random.default_rng(1)
    px = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    _, i256 = quantize(px, ColorMode.COLOR256)
    _, i16 = quantize(px, ColorMode.COLOR16)
    mono_rgb, imono = quantize(px, ColorMode.MONO)
    true_rgb, itrue = quantize(px, ColorMode.TRUECOLOR)
    assert ((i256 >= 16) & (i256 <= 255)).all()
    assert ((i16 >= 0) & (i16 <= 15)).all()
    assert set(imono.tolist()) <= {0, 8, 7, 15}  # the 16 colours' grays, like the interface
    assert (mono_rgb[:, 0] == mono_rgb[:, 1]).all() and (mono_rgb[:, 1] == mono_rgb[:, 2]).all()
    assert (itrue == -1).all() and (true_rgb == px).all()


def test_quantize_256_is_nearest_of_cube_and_gray() -> None:
    """Redmean-nearest over all of 16–255 agrees with the cube-or-gray shortcut almost always."""
    rng = np.random.default_rng(2)
    px = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    _, idx = quantize(px, ColorMode.COLOR256)
    a = px.astype(float)[:, None, :]
    b = PALETTE_256[16:].astype(float)[None, :, :]
    rmean = (a[..., 0] + b[..., 0]) / 2
    d = (a - b) ** 2
    dist = (2 + rmean / 256) * d[..., 0] + 4 * d[..., 1] + (2 + (255 - rmean) / 256) * d[..., 2]
    best = dist.min(axis=1)
    got = dist[np.arange(len(px)), idx - 16]
    # Per-channel nearest is exact for a fixed weighting; redmean's weights shift slightly with red.
    assert (got <= best * 1.1 + 1).all()
    assert (got == best).mean() > 0.99


# ---------------------------------------------------------------------------------------- cells


def test_to_cells_shapes_and_split() -> None:
    frame = np.zeros((4, 2, 3), dtype=np.uint8)
    frame[0::2] = (250, 10, 20)  # even pixel rows → top halves
    frame[1::2] = (5, 6, 7)
    cells = to_cells(frame, 2, 2, ColorMode.TRUECOLOR)
    assert (cells.rows, cells.cols) == (2, 2)
    assert cells.top.shape == (2, 2, 3) and cells.top_index.shape == (2, 2)
    assert (cells.top == (250, 10, 20)).all() and (cells.bottom == (5, 6, 7)).all()
    assert (cells.top_index == -1).all() and cells.top_index.dtype == np.int16
    with pytest.raises(ValueError):
        cells.top[0, 0, 0] = 1  # read-only: safe to hand to another thread


@pytest.mark.parametrize("mode", list(ColorMode))
def test_to_cells_index_matches_colours(mode: ColorMode) -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cells = to_cells(frame, 16, 6, mode)
    assert cells.mode is mode and (cells.rows, cells.cols) == (6, 16)
    if mode is not ColorMode.TRUECOLOR:
        assert (PALETTE_256[cells.top_index] == cells.top).all()
        assert (PALETTE_256[cells.bottom_index] == cells.bottom).all()


def test_cell_image_validates_shapes() -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    idx = np.zeros((2, 3), np.int16)
    with pytest.raises(ValueError):
        CellImage(rgb, np.zeros((2, 4, 3), np.uint8), idx, idx, ColorMode.COLOR256)


def _random_cells(mode: ColorMode, rows: int, cols: int, seed: int, levels: int = 256) -> CellImage:
    """Cells with few distinct colours (so runs form) or many, through the real to_cells path."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, levels, (2 * rows, cols, 3)) * (255 // max(1, levels - 1))
    return to_cells(small.astype(np.uint8), cols, rows, mode)


@pytest.mark.parametrize("levels", [2, 256])
@pytest.mark.parametrize("mode", list(ColorMode))
def test_row_runs_reassemble_row(mode: ColorMode, levels: int) -> None:
    cells = _random_cells(mode, 5, 37, seed=4, levels=levels)
    for row in range(cells.rows):
        runs = row_runs(cells, row)
        assert sum(n for _, _, n in runs) == cells.cols
        top = [fg for fg, _, n in runs for _ in range(n)]
        bottom = [bg for _, bg, n in runs for _ in range(n)]
        assert top == [tuple(c) for c in cells.top[row].tolist()]
        assert bottom == [tuple(c) for c in cells.bottom[row].tolist()]
        # Maximal: neighbouring runs differ.
        for a, b in itertools.pairwise(runs):
            assert (a[0], a[1]) != (b[0], b[1])
        assert all(isinstance(v, int) for fg, bg, n in runs for v in (*fg, *bg, n))


def test_row_runs_uniform_row_is_one_run() -> None:
    frame = np.full((8, 30, 3), 200, dtype=np.uint8)
    cells = to_cells(frame, 30, 4, ColorMode.TRUECOLOR)
    assert row_runs(cells, 2) == [((200, 200, 200), (200, 200, 200), 30)]
    with pytest.raises(IndexError):
        row_runs(cells, 4)


# ----------------------------------------------------------------------------------------- ansi

# pyte 0.8.2 reports 16-colour SGRs as names; its table spells 105 "bfightmagenta" (upstream typo).
_ANSI_NAMES = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]
_FG16 = _ANSI_NAMES + ["bright" + n for n in _ANSI_NAMES]
_BG16 = [*_ANSI_NAMES, *("bright" + n for n in _ANSI_NAMES)]
_BG16[13] = "bfightmagenta"


def _hex(rgb: list[int]) -> str:
    return "{:02x}{:02x}{:02x}".format(*rgb)


def _screen_after(data: bytes, cols: int, rows: int) -> pyte.Screen:
    screen = pyte.Screen(cols, rows)
    pyte.ByteStream(screen).feed(data)
    return screen


@pytest.mark.parametrize("levels", [3, 256])
@pytest.mark.parametrize("mode", list(ColorMode))
def test_encode_ansi_round_trip_through_pyte(mode: ColorMode, levels: int) -> None:
    cells = _random_cells(mode, 7, 23, seed=5, levels=levels)
    x0, y0 = 4, 2
    screen = _screen_after(encode_ansi(cells, x0, y0), x0 + cells.cols + 3, y0 + cells.rows + 2)
    for r in range(cells.rows):
        line = screen.buffer[y0 + r]
        for c in range(cells.cols):
            ch = line[x0 + c]
            assert ch.data == HALF_BLOCK
            if mode in (ColorMode.COLOR16, ColorMode.MONO):  # mono: the 16 colours' grays
                assert ch.fg == _FG16[int(cells.top_index[r, c])]
                assert ch.bg == _BG16[int(cells.bottom_index[r, c])]
            else:  # truecolor, and 38;5;n (which pyte resolves to xterm's RGB)
                assert ch.fg == _hex(cells.top[r, c].tolist()), (r, c)
                assert ch.bg == _hex(cells.bottom[r, c].tolist()), (r, c)
        # Nothing drawn outside the placement, and the row ends reset.
        assert line[x0 - 1].data == " " and line[x0 + cells.cols].data == " "
        assert line[x0 + cells.cols].fg == "default" and line[x0 + cells.cols].bg == "default"
    assert screen.buffer[y0 - 1][x0].data == " " and screen.buffer[y0 + cells.rows][x0].data == " "


def test_encode_ansi_writes_sgr_only_on_change() -> None:
    frame = np.zeros((4, 6, 3), dtype=np.uint8)
    frame[0::2, :3] = (255, 0, 0)  # top: red for 3 cells, then black
    frame[1::2] = (0, 0, 255)  # bottom: blue throughout
    cells = to_cells(frame, 6, 2, ColorMode.TRUECOLOR)
    row = "\x1b[38;2;255;0;0;48;2;0;0;255m▀▀▀\x1b[38;2;0;0;0m▀▀▀\x1b[0m"
    assert encode_ansi(cells, 1, 0) == f"\x1b[1;2H{row}\x1b[2;2H{row}".encode()


def test_encode_ansi_palette_codes() -> None:
    frame = np.zeros((2, 3, 3), dtype=np.uint8)
    frame[0] = [(255, 0, 0), (205, 0, 0), (205, 0, 0)]
    frame[1] = [(0, 0, 0), (0, 0, 0), (255, 255, 255)]
    c16 = to_cells(frame, 3, 1, ColorMode.COLOR16)
    assert encode_ansi(c16) == "\x1b[1;1H\x1b[91;40m▀\x1b[31m▀\x1b[107m▀\x1b[0m".encode()
    c256 = to_cells(frame, 3, 1, ColorMode.COLOR256)
    assert (
        encode_ansi(c256) == "\x1b[1;1H\x1b[38;5;196;48;5;16m▀\x1b[38;5;160m▀\x1b[48;5;231m▀\x1b[0m".encode()
    )


def test_encode_ansi_rejects_negative_origin() -> None:
    cells = _random_cells(ColorMode.TRUECOLOR, 1, 1, seed=0)
    with pytest.raises(ValueError):
        encode_ansi(cells, -1, 0)


# ------------------------------------------------------------------------------------- layering


def test_render_imports_only_numpy_and_stdlib() -> None:
    code = (
        "import sys, tuichat.render\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'textual', 'rich', 'cv2', 'av', 'aiortc', 'sounddevice', 'PIL'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
