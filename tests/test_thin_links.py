"""Calls over emulated thin links (``tests.netem``): real server, real peer connections, real codecs."""

from __future__ import annotations

import asyncio
import fractions
import os
import time

import numpy as np
import pytest
from av import VideoFrame

from tests.conftest import FakeClock
from tests.netem import ThinLink
from tests.test_bitrate import Viewers, playing, viewers  # noqa: F401  (the fixture)
from tuichat.client.call import Call
from tuichat.client.stream import PlayedStream, PublishStatus
from tuichat.rtc.encoders import PUBLISH_LADDER, AudioBudget, UplinkVp8Encoder, VideoBudget
from tuichat.server import RoomServer
from tuichat.tui.app import _publish_summary
from tuichat.tui.snapshots import PublishView

pytestmark = pytest.mark.timeout(90)


BUDGET = VideoBudget(15, 0.1, 16_000, 500_000)


def publisher(clock: FakeClock, width: int, height: int) -> tuple[UplinkVp8Encoder, AudioBudget, VideoFrame]:
    """A publisher's encoder on a fake clock, its audio budget, and a black camera frame."""
    audio = AudioBudget(48_000)
    frame = VideoFrame.from_ndarray(np.zeros((height, width, 3), dtype=np.uint8), format="rgb24")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    return UplinkVp8Encoder(BUDGET, audio, clock=clock), audio, frame


def test_the_publisher_steps_down_the_ladder_with_the_estimate_and_back_up_after_a_hold() -> None:
    clock = FakeClock()
    encoder, audio, frame = publisher(clock, 640, 480)

    def send(estimate: int, at: float) -> tuple[int, int]:
        clock.now = at
        encoder.target_bitrate = estimate  # what RTCRtpSender does with each REMB
        encoder.encode(frame)
        return encoder.codec.width, encoder.codec.height

    assert send(400_000, 0.0) == (640, 480) and audio.bitrate == 48_000
    assert send(50_000, 1.0) == (160, 120) and audio.bitrate == PUBLISH_LADDER[-1].audio_bps  # two rungs at once
    assert encoder.target_bitrate <= PUBLISH_LADDER[-1].max_bps
    assert send(400_000, 5.0) == (160, 120)  # held: a link that just failed is not trusted at once
    assert send(400_000, 9.5) == (320, 240)  # then one rung at a time
    assert send(400_000, 18.0) == (640, 480) and audio.bitrate == 48_000
    assert send(100_000, 19.0) == (320, 240)  # down again: the hold before going up has doubled
    assert send(400_000, 29.0) == (320, 240)
    assert send(400_000, 36.0) == (640, 480)


def test_a_small_camera_skips_rungs_that_would_not_shrink_it() -> None:
    clock = FakeClock()
    encoder, _, frame = publisher(clock, 320, 240)
    # 320x240 costs a quarter of 640x480: an estimate that is plenty for it keeps it whole.
    encoder.target_bitrate = 120_000
    encoder.encode(frame)
    assert (encoder.codec.width, encoder.codec.height) == (320, 240) and encoder.rung == 0
    assert encoder.target_bitrate <= BUDGET.cap(320, 240)
    clock.now = 1.0
    encoder.target_bitrate = 30_000
    encoder.encode(frame)
    assert (encoder.codec.width, encoder.codec.height) == (160, 120) and encoder.rung == len(PUBLISH_LADDER) - 1


async def best_fps(stream: PlayedStream, window: float, within: float) -> float:
    """The most frames per second the stream reached in a ``window`` s window, looking for ``within`` s."""
    best, deadline = 0.0, time.monotonic() + within
    while time.monotonic() < deadline and best < 14:
        before, t0 = stream.frames_received, time.monotonic()
        await asyncio.sleep(window)
        best = max(best, (stream.frames_received - before) / (time.monotonic() - t0))
    return best


async def test_a_publisher_behind_a_100_kbps_uplink_is_seen_at_full_frame_rate(viewers: Viewers) -> None:  # noqa: F811
    """640×480 cannot fit: the publisher steps down to a size that does, and losses on the way do not
    freeze the picture (before: 0 fps for good after the first burst of losses)."""
    camera = await viewers.join("erin", publish=True, camera=(640, 480))
    assert camera._sender_video is not None
    link = ThinLink.on(camera._sender_video.sender, rate_bps=100_000)
    stream = await playing(await viewers.join("frank", view=(160, 90, 15)))
    fps = await best_fps(stream, window=3.0, within=30.0)
    encoder = camera._sender_video.sender._RTCRtpSender__encoder
    assert isinstance(encoder, UplinkVp8Encoder) and encoder.rung > 0, "never stepped down"
    assert fps >= 12, f"{fps:.1f} fps over a 100 kbps uplink ({link.dropped} datagrams dropped)"
    # The publisher is told (the TUI's status line says "PUBLISHING 160×120 (thin uplink)").
    published = camera.published
    assert published.uplink_limited and published.size is not None and published.size[0] < 640


def test_the_status_line_says_when_a_thin_uplink_shrank_what_we_send() -> None:
    limited = PublishView(PublishStatus.PUBLISHING, "", True, True, False, False, (160, 120), True)
    assert "PUBLISHING 160×120 (thin uplink)" in _publish_summary(limited, False, True, True).full
    assert "(thin uplink)" in _publish_summary(limited, False, True, True).short
    whole = PublishView(PublishStatus.PUBLISHING, "", True, True, False, False, (640, 480), False)
    assert "thin" not in _publish_summary(whole, False, True, True).full
    camera_off = PublishView(PublishStatus.PUBLISHING, "", True, True, False, True, (160, 120), True)
    assert "thin" not in _publish_summary(camera_off, False, True, True).full
    # On a loaded machine the estimate falls too (packets are late either way): both causes are named.
    assert "(thin uplink or busy CPU)" in _publish_summary(limited, False, True, True, busy=True).full


def test_a_terminal_falling_behind_on_a_busy_machine_names_both_causes() -> None:
    from tuichat.client.stream import PlayStatus
    from tuichat.tui.app import _playing_summary
    from tuichat.tui.snapshots import StreamView

    bob = StreamView("p2", "bob", PlayStatus.PLAYING, (160, 90), 15.0, 250.0, "", None)  # type: ignore[arg-type]
    assert "slow terminal link: 6 of 15 fps shown, F4 preview" in _playing_summary({"p2": bob}, 6.0).full
    busy = _playing_summary({"p2": bob}, 6.0, busy=True)
    assert "busy CPU or slow terminal link: 6 of 15 fps shown" in busy.full and "6 of 15 fps shown" in busy.short
    # Frames held for a moment while the terminal still shows them all are not a slow link.
    assert "fps shown" not in _playing_summary({"p2": bob}, 14.0).full


def test_a_busy_machine_is_told_by_the_load_average() -> None:
    from tuichat.tui.app import machine_busy

    cores = os.cpu_count() or 1
    assert machine_busy(lambda: (cores + 0.5, 0.0, 0.0))
    assert not machine_busy(lambda: (cores - 0.5, 9.0, 9.0))  # the last minute is what counts

    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average")

    assert not machine_busy(unavailable)


async def test_preview_lives_on_a_64_kbps_downlink(viewers: Viewers, server: RoomServer) -> None:  # noqa: F811
    """The preview budget is not just a number the server aims at: a 64 kbps link carries it whole."""
    await viewers.join("erin", publish=True)
    call: Call = await viewers.join("frank", view=(160, 90, 15), preview=True)
    assert call.room.me is not None
    server_side = server.media.sessions[call.room.me.id].pc
    link = ThinLink.on(server_side.getTransceivers()[2].sender, rate_bps=64_000)
    stream = await playing(call)
    await asyncio.sleep(3.0)
    dropped, frames, t0 = link.dropped, stream.frames_received, time.monotonic()
    await asyncio.sleep(4.0)
    fps = (stream.frames_received - frames) / (time.monotonic() - t0)
    assert 4 <= fps <= 6, f"{fps:.1f} fps in preview over 64 kbps"
    assert link.dropped == dropped, f"{link.dropped - dropped} datagrams did not fit the link"
    assert stream.size is not None and stream.size[0] <= 160 and stream.size[1] <= 90
