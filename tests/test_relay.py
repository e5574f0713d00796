"""The server's fan-out pieces alone: latest-frame video, bounded audio, pacing, fitting, timestamps."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from tests.conftest import FakeClock, wait_until
from tuichat.server.relay import (
    AUDIO_QUEUE_FRAMES,
    PACING_TOLERANCE,
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
        await wait_until(lambda: fanout.seq >= 100, timeout=5, interval=0.001)
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
    await wait_until(lambda: bool(ended), timeout=5, interval=0.001)
    assert ended == ["the track ended"] and fanout.ended
    await fanout.close()


async def delivered(fanout: VideoFanout, seq: int) -> None:
    """Wait until the fanout has taken frame ``seq`` from its track and woken its slots."""
    await wait_until(lambda: fanout.seq >= seq, timeout=5, interval=0.001)
    await settle()


async def test_slot_video_track_fits_the_view_and_waits_while_idle() -> None:
    track = FedTrack("video")
    fanout = VideoFanout(track, "test")
    fanout.start()
    clock = FakeClock()
    slot = SlotVideoTrack(160, 90, 30, clock=clock)
    try:
        idle = asyncio.ensure_future(slot.recv())
        await settle()
        assert not idle.done()  # nothing attached: nothing to send
        slot.attach(fanout)
        track.queue.put_nowait(video_frame(640, 480))
        frame = await asyncio.wait_for(idle, 5)
        assert (frame.width, frame.height) == (120, 90) and frame.format.name == "yuv420p"

        slot.set_view(161, 121, 30)
        waiting = asyncio.ensure_future(slot.recv())
        clock.now += 0.5 / 30  # half a frame interval: this frame is paced away
        track.queue.put_nowait(video_frame(1280, 720))
        await delivered(fanout, 2)
        assert not waiting.done() and slot.frames_skipped == 1
        clock.now += 0.5 / 30
        track.queue.put_nowait(video_frame(1280, 720))
        frame = await asyncio.wait_for(waiting, 5)
        assert (frame.width, frame.height) == (160, 90)

        # Same size as the source: the fanout's frame is not handed out (each subscriber stamps its own).
        slot.set_view(1920, 1080, 30)
        source = video_frame(64, 48)
        clock.now += 1 / 30
        track.queue.put_nowait(source)
        frame = await asyncio.wait_for(slot.recv(), 5)
        assert (frame.width, frame.height) == (64, 48) and frame is not source
    finally:
        slot.stop()
        await fanout.close()


async def test_slot_video_track_paces_to_its_fps_by_dropping_frames() -> None:
    """50 fps in, 10 fps out, on a clock the test steps: the grid holds even with early arrivals."""
    track = FedTrack("video")
    fanout = VideoFanout(track, "test")
    fanout.start()
    clock = FakeClock()
    slot = SlotVideoTrack(160, 90, 10, clock=clock)
    slot.attach(fanout)
    sent: list[float] = []
    pending = asyncio.ensure_future(slot.recv())
    try:
        for tick in range(75):  # 1.5 s
            clock.now = tick * 0.02
            track.queue.put_nowait(video_frame(64, 48))
            await delivered(fanout, tick + 1)
            if pending.done():
                pending.result()
                sent.append(clock.now)
                pending = asyncio.ensure_future(slot.recv())
    finally:
        pending.cancel()
        slot.stop()
        await fanout.close()
    rate = (len(sent) - 1) / (sent[-1] - sent[0])
    assert rate == pytest.approx(10, rel=0.05), sent
    assert slot.frames_skipped == 75 - len(sent)
    # A frame up to PACING_TOLERANCE of an interval early goes out, but the grid does not drift.
    assert min(b - a for a, b in itertools.pairwise(sent)) >= (1 - PACING_TOLERANCE) / 10 - 1e-9, sent
    assert all(abs(t - round(t, 1)) < 0.021 for t in sent), sent


async def test_slot_video_pts_keep_increasing_across_publisher_switches() -> None:
    tracks = [FedTrack("video"), FedTrack("video")]
    fanouts = [VideoFanout(t, f"f{i}") for i, t in enumerate(tracks)]
    for fanout in fanouts:
        fanout.start()
    clock = FakeClock()
    slot = SlotVideoTrack(160, 90, 30, clock=clock)
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
            clock.now += 1 / 30
        slot.attach(None)
    finally:
        slot.stop()
        for fanout in fanouts:
            await fanout.close()
    assert pts == [round(i / 30 * 90_000) for i in range(6)], pts  # the slot's own clock, unbroken


async def test_slot_audio_queue_is_bounded_and_restamped() -> None:
    track = FedTrack("audio")
    fanout = AudioFanout(track, "test")
    fanout.start()
    slot = SlotAudioTrack()
    slot.attach(fanout)
    try:
        for _ in range(50):
            track.queue.put_nowait(audio_frame())
        await wait_until(lambda: fanout.frames_received >= 50, timeout=5, interval=0.001)
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
