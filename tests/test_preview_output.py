"""The low-bandwidth preview's picture stays put: no redraw from the app's periodic snapshots or from
a frame size that differs by a rounding, the subscribed box matches the picture drawn, and the
widget draws no faster than the preview's frame rate (issue 4: preview output under 20 KB/s)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import numpy.typing as npt
from textual.app import App, ComposeResult

from tests.test_tui import until
from tuichat.server.relay import fit_size
from tuichat.tui.bridge import PREVIEW_BOX, CallBridge
from tuichat.tui.widgets import VideoGrid
from tuichat.tui.widgets.video import PREVIEW_FPS, PREVIEW_MAX_CELLS, PREVIEW_THRESHOLD, THRESHOLD

SIZE = (160, 48)


class Stream:
    """What the bridge wraps: the newest frame and a counter (like `PlayedStream`)."""

    def __init__(self, width: int = 60, height: int = 44) -> None:
        self.count = 0
        self.latest: npt.NDArray[np.uint8] | None = None
        self.push(width, height)

    def push(self, width: int, height: int) -> None:
        self.count += 1
        rng = np.random.default_rng(self.count)
        self.latest = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


class Frames:
    """A fresh wrapper per snapshot, as `CallBridge._post_call` makes one every second."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def latest_frame(self) -> tuple[int, npt.NDArray[np.uint8]] | None:
        frame = self.stream.latest
        return None if frame is None else (self.stream.count, frame)


class GridApp(App[None]):
    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def compose(self) -> ComposeResult:
        yield VideoGrid(id="video", direct=False, threshold=self.threshold)


async def test_a_new_wrapper_of_the_same_stream_redraws_nothing() -> None:
    app = GridApp(PREVIEW_THRESHOLD)
    async with app.run_test(size=SIZE) as pilot:
        grid = app.query_one(VideoGrid)
        stream = Stream()
        grid.set_tile("p", "pat", Frames(stream), "PLAYING 60×44 5 fps")
        tile = grid.tiles["p"]
        await until(pilot, lambda: tile.cells is not None)
        drawn, cells, placement = grid.frames_drawn, tile.cells, tile.placement
        invalidated: list[tuple[int, int]] = []
        real = grid._invalidate_rows

        def spy(y: int, count: int) -> None:
            invalidated.append((y, count))
            real(y, count)

        grid._invalidate_rows = spy  # type: ignore[method-assign]
        for kbps in (9, 10, 11):  # the app's stats refresh: a new source object and a new label
            grid.set_tile("p", "pat", Frames(stream), f"PLAYING 60×44 5 fps {kbps} kbps")
            await pilot.pause(0.05)
        assert grid.frames_drawn == drawn and tile.cells is cells and tile.placement == placement
        assert invalidated and all(rows == (tile.y, 1) for rows in invalidated)  # the label row only
        stream.push(60, 44)  # a new frame is drawn as usual
        await until(pilot, lambda: grid.frames_drawn == drawn + 1)


async def test_a_different_source_is_drawn_at_once() -> None:
    app = GridApp(THRESHOLD)
    async with app.run_test(size=SIZE) as pilot:
        grid = app.query_one(VideoGrid)
        grid.set_tile("p", "pat", Frames(Stream()))
        await until(pilot, lambda: grid.tiles["p"].cells is not None)
        drawn = grid.frames_drawn
        other = Stream()
        other.push(60, 44)
        grid.set_tile("p", "pat", Frames(other))
        await pilot.pause(0.05)
        assert grid.frames_drawn == drawn + 1
        cells = grid.tiles["p"].cells
        assert cells is not None


async def test_the_preview_picture_keeps_its_cells_across_a_rounding_of_the_frame_size() -> None:
    app = GridApp(PREVIEW_THRESHOLD)
    async with app.run_test(size=SIZE) as pilot:
        grid = app.query_one(VideoGrid)
        assert grid.fps <= PREVIEW_FPS
        stream = Stream(96, 72)  # 4:3: 48×18 cells at most
        grid.set_tile("p", "pat", Frames(stream))
        tile = grid.tiles["p"]
        await until(pilot, lambda: tile.frame_size == (96, 72))
        first = tile.placement
        assert first is not None and (first.cols, first.rows) == (48, 18)
        stream.push(60, 44)  # 15:11 (an 80×45 box rounded to even pixels): 49 columns by itself
        await until(pilot, lambda: tile.frame_size == (60, 44))
        assert tile.placement == first
        assert tile.cells is not None and (tile.cells.cols, tile.cells.rows) == (48, 18)
        stream.push(64, 36)  # 16:9: a different picture
        await until(pilot, lambda: tile.frame_size == (64, 36))
        assert tile.placement is not None and (tile.placement.cols, tile.placement.rows) == (64, 18)


def test_the_preview_subscribes_at_the_pictures_pixel_size() -> None:
    assert (PREVIEW_MAX_CELLS[0], 2 * PREVIEW_MAX_CELLS[1]) == PREVIEW_BOX
    bridge = SimpleNamespace(media=None)
    views = [CallBridge.default_view(bridge, w, h, True) for w, h in ((320, 180), (160, 90), (158, 88))]  # type: ignore[arg-type]
    assert all(v[2] == 5 and v[0] <= PREVIEW_BOX[0] and v[1] <= PREVIEW_BOX[1] for v in views)
    # The call's first view and the tile's give one frame size: no redraw when the tile's arrives.
    for source in ((640, 480), (1280, 720)):
        sizes = {fit_size(*source, v[0], v[1]) for v in views}
        assert len(sizes) == 1
    assert fit_size(640, 480, *views[0][:2]) == (48, 36)
    assert CallBridge.default_view(bridge, 160, 90, False) == (160, 90, 15)  # type: ignore[arg-type]


async def test_tiles_side_by_side_keep_a_gap_and_the_rows_are_centred() -> None:
    """QA: pictures side by side ran into one strip of colour and their labels into one line, and a
    part-filled last row hung on the left."""
    app = GridApp(THRESHOLD)
    async with app.run_test(size=(101, 40)) as pilot:
        grid = app.query_one(VideoGrid)
        for key in "abcde":
            grid.set_tile(key, key, Frames(Stream(64, 48)), "PLAYING")
        await pilot.pause()
        width = grid.content_size.width
        rows: dict[int, list[tuple[int, int]]] = {}
        for tile in grid.tiles.values():
            rows.setdefault(tile.y, []).append((tile.x, tile.x + tile.width))
        assert len(rows) > 1, rows
        for spans in rows.values():
            spans.sort()
            assert all(right < next_left for (_, right), (next_left, _) in itertools.pairwise(spans)), spans
            left_margin, right_margin = spans[0][0], width - spans[-1][1]
            assert abs(left_margin - right_margin) <= 1, (spans, width)
