"""Figures for tuichat.render: frame → half-block cells → ANSI, per colour mode.

Run: python bench/render_cells.py. Prints medians over repeated runs on this machine; these are
figures, not pass/fail. Two synthetic 640×480 scenes: "smooth" (gradients and a disc: long runs)
and "camera" (the same plus sensor-like noise: almost every cell differs, the worst case for runs
and bytes).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt

from tuichat.render import (
    CUBE_LEVELS,
    PALETTE_256,
    CellImage,
    ColorMode,
    Run,
    encode_ansi,
    resize_area,
    row_runs,
    to_cells,
)

SRC_W, SRC_H = 640, 480
COLS, ROWS = 160, 45


def scene(noise: float, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A frame with gradients, a bright disc and optional Gaussian noise."""
    y, x = np.mgrid[0:SRC_H, 0:SRC_W].astype(np.float32)
    img = np.stack([x / SRC_W * 255, y / SRC_H * 255, np.full_like(x, 90)], axis=2)
    disc = (x - 380) ** 2 + (y - 220) ** 2 < 120**2
    img[disc] = (230, 190, 160)
    if noise:
        img += np.random.default_rng(seed).normal(0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def median_ms(fn: Callable[[], object], repeat: int = 30) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call (caches, LUTs)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def all_runs(cells: CellImage) -> list[list[Run]]:
    """What a widget does per frame: the runs of every row."""
    return [row_runs(cells, r) for r in range(cells.rows)]


def naive_to_cells_256(frame: npt.NDArray[np.uint8], cols: int, rows: int) -> list[list[int]]:
    """The per-pixel Python loop a first version would write: box average, then the same
    cube-or-gray nearest colour, one pixel at a time. Returns palette indices per pixel."""
    src_h, src_w = len(frame), len(frame[0])
    height = 2 * rows
    pixels = frame.tolist()
    cube = CUBE_LEVELS.tolist()
    palette = PALETTE_256.tolist()
    out: list[list[int]] = []
    for oy in range(height):
        y0, y1 = oy * src_h // height, max(oy * src_h // height + 1, (oy + 1) * src_h // height)
        line = []
        for ox in range(cols):
            x0, x1 = ox * src_w // cols, max(ox * src_w // cols + 1, (ox + 1) * src_w // cols)
            acc = [0, 0, 0]
            for yy in range(y0, y1):
                row = pixels[yy]
                for xx in range(x0, x1):
                    p = row[xx]
                    acc[0] += p[0]
                    acc[1] += p[1]
                    acc[2] += p[2]
            n = (y1 - y0) * (x1 - x0)
            r, g, b = (round(c / n) for c in acc)
            lv = [min(range(6), key=[abs(level - v) for level in cube].__getitem__) for v in (r, g, b)]
            cube_idx = 16 + 36 * lv[0] + 6 * lv[1] + lv[2]
            gray_idx = 232 + min(23, max(0, round(((r + g + b) / 3 - 8) / 10)))
            pc, pg = palette[cube_idx], palette[gray_idx]
            d_cube = (r - pc[0]) ** 2 + (g - pc[1]) ** 2 + (b - pc[2]) ** 2
            d_gray = (r - pg[0]) ** 2 + (g - pg[1]) ** 2 + (b - pg[2]) ** 2
            best = gray_idx if d_gray < d_cube else cube_idx
            line.append(best)
        out.append(line)
    return out


def main() -> None:
    scenes = {"smooth": scene(0.0), "camera": scene(8.0)}
    frame = scenes["camera"]
    print(f"tuichat.render bench: {SRC_W}x{SRC_H} RGB frame -> {COLS}x{ROWS} cells ({COLS}x{2 * ROWS} px)")
    t_resize = median_ms(lambda: resize_area(frame, COLS, 2 * ROWS))
    print(f"resize_area {SRC_W}x{SRC_H} -> {COLS}x{2 * ROWS}: {t_resize:.2f} ms")
    print()
    header = (
        f"{'mode':<10} {'scene':<7} {'to_cells':>9} {'encode':>9} {'bytes/frame':>12} {'B/cell':>7} "
        f"{'row_runs':>9} {'runs':>6}"
    )
    print(header)
    print("-" * len(header))
    for mode in ColorMode:
        for name, img in scenes.items():
            cells = to_cells(img, COLS, ROWS, mode)
            t_cells = median_ms(partial(to_cells, img, COLS, ROWS, mode))
            data = encode_ansi(cells)
            t_enc = median_ms(partial(encode_ansi, cells), repeat=15)
            t_runs = median_ms(partial(all_runs, cells), repeat=15)
            n_runs = sum(map(len, all_runs(cells)))
            print(
                f"{mode.value:<10} {name:<7} {t_cells:>7.2f}ms {t_enc:>7.2f}ms {len(data):>12,} "
                f"{len(data) / (COLS * ROWS):>7.1f} {t_runs:>7.2f}ms {n_runs:>6}"
            )
    print()
    # Naive baseline on a quarter-size problem (160x120 -> 40x12 cells), then extrapolated: both the
    # source pixels it reads and the output pixels it quantises grow 16x / 15x at full size.
    small = resize_area(frame, SRC_W // 4, SRC_H // 4)
    t_naive = median_ms(lambda: naive_to_cells_256(small, 40, 12), repeat=5)
    t_vec = median_ms(lambda: to_cells(small, 40, 12, ColorMode.COLOR256))
    t_full = median_ms(lambda: to_cells(frame, COLS, ROWS, ColorMode.COLOR256))
    scale = (SRC_W * SRC_H) / (small.shape[0] * small.shape[1])
    print(f"naive Python loop, 256 colours, 160x120 -> 40x12 cells: {t_naive:.1f} ms/frame")
    print(
        f"to_cells (numpy),   256 colours, 160x120 -> 40x12 cells: {t_vec:.3f} ms/frame "
        f"-> {t_naive / t_vec:.0f}x faster"
    )
    print(
        f"extrapolated to {SRC_W}x{SRC_H} -> {COLS}x{ROWS}: naive ~{t_naive * scale:.0f} ms/frame "
        f"(x{scale:.0f}) vs to_cells {t_full:.2f} ms measured -> ~{t_naive * scale / t_full:.0f}x"
    )


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help, and no stray arguments
    main()
