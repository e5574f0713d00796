"""The server's fan-out pieces alone: latest-frame video, bounded audio, pacing, fitting, timestamps."""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from tuichat.server.relay import (
    AUDIO_QUEUE_FRAMES,
    AudioFanout,
    SlotAudioTrack,
    SlotVideoTrack,
    VideoFanout,
    fit_size,
)


class FedTrack(MediaStreamTrack):
    """A track the test feeds by hand; ``None`` ends it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    async def recv(self):  # type: ignore[no-untyped-def]
        item = await self.queue.get()
        if item is None:
            raise MediaStreamError
        return item


def video_frame(width: int = 640, height: int = 480, value: int = 128) -> VideoFrame:
    return VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24").reformat(
        format="yuv420p")


def audio_frame(samples: int = 960) -> AudioFrame:
    frame = AudioFrame.from_ndarray(np.zeros((1, samples * 2), np.int16), format="s16", layout="stereo")
    frame.sample_rate = 48_000
    return frame


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((640, 480), (160, 90), (120, 90)),
        ((1280, 720), (160, 90), (160, 90)),
        ((640, 480), (161, 121), (160, 120)),
        ((1280, 720), (101, 57), (100, 56)),
        ((640, 480), (1920, 1080), (640, 480)),  # never upscaled
        ((480, 640), (160, 90), (68, 90)),  # portrait: 67.5 wide, rounded, even
    ],
)
def test_fit_size_keeps_aspect_and_even_sizes(source: tuple[int, int], box: tuple[int, int],
                                              expected: tuple[int, int]) -> None:
    assert fit_size(*source, *box) == expected


async def test_video_fanout_with_a_fast_producer_keeps_only_the_newest_frame() -> None:
    track = FedTrack("video")
    fanout = VideoFanout(track, "test")
    fanout.start()
    frames = [video_frame(64, 48, value=i) for i in range(100)]
    for frame in frames:
        track.queue.put_nowait(frame)
    try:
        async with asyncio.timeout(5):
            while fanout.seq < 100:
                await asyncio.sleep(0.001)
        assert fanout.frame is frames[-1]
        assert track.queue.empty()
    finally:
        await fanout.close()


async def test_fanout_reports_the_end_of_its_track() -> None:
    track = FedTrack("video")
    ended: list[str] = []
    fanout = VideoFanout(track, "test", on_ended=ended.append)
    fanout.start()
    track.queue.put_nowait(None)
    async with asyncio.timeout(5):
        while not ended:
            await asyncio.sleep(0.001)
    assert ended == ["the track ended"] and fanout.ended
    await fanout.close()


async def test_slot_video_track_fits_the_view_and_waits_while_idle() -> None:
    track = FedTrack("video")
    fanout = VideoFanout(track, "test")
    fanout.start()
    slot = SlotVideoTrack(160, 90, 30)
    try:
        idle = asyncio.ensure_future(slot.recv())
        await asyncio.sleep(0.05)
        assert not idle.done()  # nothing attached: nothing to send
        slot.attach(fanout)
        track.queue.put_nowait(video_frame(640, 480))
        frame = await asyncio.wait_for(idle, 5)
        assert (frame.width, frame.height) == (120, 90) and frame.format.name == "yuv420p"
        slot.set_view(161, 121, 30)
        await asyncio.sleep(0.04)  # a frame interval: sooner would be paced away
        track.queue.put_nowait(video_frame(1280, 720))
        frame = await asyncio.wait_for(slot.recv(), 5)
        assert (frame.width, frame.height) == (160, 90)
        # Same size as the source: the fanout's frame is not handed out (each subscriber stamps its own).
        slot.set_view(1920, 1080, 30)
        source = video_frame(64, 48)
        await asyncio.sleep(0.04)
        track.queue.put_nowait(source)
        frame = await asyncio.wait_for(slot.recv(), 5)
        assert (frame.width, frame.height) == (64, 48) and frame is not source
    finally:
        slot.stop()
        await fanout.close()


async def test_slot_video_track_paces_to_its_fps_by_dropping_frames() -> None:
    track = FedTrack("video")
    fanout = VideoFanout(track, "test")
    fanout.start()
    slot = SlotVideoTrack(160, 90, 10)
    slot.attach(fanout)
    sent: list[float] = []

    async def produce() -> None:  # 50 fps for 1.5 s
        for _ in range(75):
            track.queue.put_nowait(video_frame(64, 48))
            await asyncio.sleep(0.02)

    async def consume() -> None:
        while True:
            await slot.recv()
            sent.append(time.monotonic())

    consumer = asyncio.ensure_future(consume())
    try:
        await produce()
    finally:
        consumer.cancel()
        slot.stop()
        await fanout.close()
    span = sent[-1] - sent[0]
    rate = (len(sent) - 1) / span
    assert 8.5 <= rate <= 11, (len(sent), span)
    assert slot.frames_skipped > 40
    assert min(b - a for a, b in itertools.pairwise(sent)) > 0.05


async def test_slot_video_pts_keep_increasing_across_publisher_switches() -> None:
    tracks = [FedTrack("video"), FedTrack("video")]
    fanouts = [VideoFanout(t, f"f{i}") for i, t in enumerate(tracks)]
    for fanout in fanouts:
        fanout.start()
    slot = SlotVideoTrack(160, 90, 30)
    pts: list[int] = []
    try:
        for round_ in range(6):
            i = round_ % 2
            slot.attach(fanouts[i])
            frame = video_frame(64, 48)
            frame.pts = 1_000_000 if i == 0 else 5  # the sources' own clocks disagree wildly
            tracks[i].queue.put_nowait(frame)
            out = await asyncio.wait_for(slot.recv(), 5)
            pts.append(out.pts)
            assert out.time_base.denominator == 90_000
            await asyncio.sleep(0.04)
        slot.attach(None)
    finally:
        slot.stop()
        for fanout in fanouts:
            await fanout.close()
    assert all(b > a for a, b in itertools.pairwise(pts)), pts


async def test_slot_audio_queue_is_bounded_and_restamped() -> None:
    track = FedTrack("audio")
    fanout = AudioFanout(track, "test")
    fanout.start()
    slot = SlotAudioTrack()
    slot.attach(fanout)
    try:
        for _ in range(50):
            track.queue.put_nowait(audio_frame())
        async with asyncio.timeout(5):
            while fanout.frames_received < 50:
                await asyncio.sleep(0.001)
        assert len(slot.queue) == AUDIO_QUEUE_FRAMES
        assert slot.frames_dropped == 50 - AUDIO_QUEUE_FRAMES
        first = await slot.recv()
        second = await slot.recv()
        assert (first.pts, second.pts) == (0, 960)
        assert first.sample_rate == 48_000 and first.samples == 960
        # Another publisher on the same slot: the clock carries on.
        other = FedTrack("audio")
        other_fanout = AudioFanout(other, "other")
        other_fanout.start()
        slot.attach(other_fanout)
        assert not slot.queue  # the previous publisher's backlog is gone
        other.queue.put_nowait(audio_frame())
        third = await asyncio.wait_for(slot.recv(), 5)
        assert third.pts == 1920
        await other_fanout.close()
    finally:
        slot.stop()
        await fanout.close()
    with pytest.raises(MediaStreamError):
        await slot.recv()
