"""MarkerJitterBuffer with crafted RTP packets, and where use_marker_release installs it."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

import tuichat.rtc.jitter
from tests.conftest import FakeClock
from tuichat.rtc.jitter import MarkerJitterBuffer, use_marker_release

pytestmark = pytest.mark.timeout(10)


def packet(seq: int, ts: int, data: bytes, marker: bool = False) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq % 65536, timestamp=ts, marker=int(marker))
    p.payload = data
    p._data = data  # type: ignore[attr-defined]  # what the receiver's depayloader leaves
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[bool, JitterFrame | None]]:
    return [buffer.add(p) for p in packets]


def frames(results: list[tuple[bool, JitterFrame | None]]) -> list[tuple[int, int, bytes] | None]:
    """(index of the add that released it, timestamp, data) per released frame, None for the others."""
    return [(i, f.timestamp, f.data) if f is not None else None for i, (_, f) in enumerate(results)]


def released(results: list[tuple[bool, JitterFrame | None]]) -> list[tuple[int, int, bytes]]:
    return [r for r in frames(results) if r is not None]


def test_in_order_frame_is_released_by_its_marker_packet_not_the_next_frame() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    ours = feed(buffer, [packet(10, 1000, b"a"), packet(11, 1000, b"b"), packet(12, 1000, b"c", marker=True),
                         packet(13, 4000, b"d", marker=True), packet(14, 7000, b"e")])
    assert released(ours) == [(2, 1000, b"abc"), (3, 4000, b"d")]
    assert buffer.released_on_marker == 2 and buffer.released_on_next == 0
    # aiortc's own buffer needs the next frame's first packet for each.
    stock = feed(JitterBuffer(capacity=16, is_video=True),
                 [packet(10, 1000, b"a"), packet(11, 1000, b"b"), packet(12, 1000, b"c", marker=True),
                  packet(13, 4000, b"d", marker=True), packet(14, 7000, b"e")])
    assert released(stock) == [(3, 1000, b"abc"), (4, 4000, b"d")]


def test_without_markers_frames_are_released_as_aiortc_does() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(1, 100, b"a"), packet(2, 100, b"b"), packet(3, 200, b"c"), packet(4, 300, b"d")])
    assert released(results) == [(2, 100, b"ab"), (3, 200, b"c")]
    assert buffer.released_on_next == 2


def test_reordered_packets_release_the_frame_in_sequence_order_when_the_hole_fills() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(100, 9000, b"a"), packet(102, 9000, b"c", marker=True), packet(101, 9000, b"b"),
                            packet(104, 12000, b"e", marker=True), packet(103, 12000, b"d")])
    assert released(results) == [(2, 9000, b"abc"), (4, 12000, b"de")]


def test_a_lost_packet_holds_the_frame_until_it_is_retransmitted() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(0, 1000, b"a"), packet(2, 1000, b"c", marker=True),   # 1 is missing
                            packet(3, 2000, b"d"), packet(4, 2000, b"e", marker=True)])
    assert released(results) == []  # never a partial frame to the decoder
    results = feed(buffer, [packet(1, 1000, b"b"), packet(5, 3000, b"f", marker=True)])  # NACK's retransmission
    # One frame per add (aiortc's interface): the second complete frame goes with the next packet.
    assert released(results) == [(0, 1000, b"abc"), (1, 2000, b"de")]
    assert buffer.pop_ready() is not None and buffer.pop_ready() is None  # 3000 was waiting too


def test_pop_ready_drains_the_backlog_after_a_hole_fills() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(1, 100, b"b", marker=True), packet(2, 200, b"c", marker=True),
                            packet(3, 300, b"d", marker=True), packet(0, 0, b"a", marker=True)])
    # origin is the first packet seen (1): 0 is older and dropped as misordered, as in aiortc.
    assert released(results) == [(0, 100, b"b"), (1, 200, b"c"), (2, 300, b"d")]
    results = feed(buffer, [packet(5, 500, b"f", marker=True), packet(6, 600, b"g", marker=True),
                            packet(4, 400, b"e", marker=True)])
    assert released(results) == [(2, 400, b"e")]
    assert [buffer.pop_ready().data, buffer.pop_ready().data, buffer.pop_ready()] == [b"f", b"g", None]  # type: ignore[union-attr]


def test_a_packet_lost_for_good_is_skipped_when_the_buffer_overflows_with_a_pli() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(0, 0, b"x"), packet(2, 0, b"z", marker=True)])  # 1 never comes
    results += feed(buffer, [packet(seq, seq * 100, bytes([seq]), marker=True) for seq in range(3, 20)])
    plis = [i for i, (pli, _) in enumerate(results) if pli]
    assert plis, "overflow must ask for a keyframe"
    assert all(data != b"xz" for _, _, data in released(results))
    # One frame per add (aiortc's interface): the rest of the backlog comes out of pop_ready.
    backlog = []
    while (frame := buffer.pop_ready()) is not None:
        backlog.append(frame.data)
    assert backlog and backlog[-1] == bytes([19])
    more = feed(buffer, [packet(20, 2000, b"k", marker=True), packet(21, 2100, b"l", marker=True)])
    assert [data for _, _, data in released(more)] == [b"k", b"l"]


def test_a_gap_not_filled_in_time_drops_its_frame_and_asks_for_a_keyframe() -> None:
    """Without this, frames wait until 512 packets pile up behind the gap: a minute on a thin link."""
    clock = FakeClock()
    buffer = MarkerJitterBuffer(capacity=64, clock=clock)
    results = feed(buffer, [packet(0, 1000, b"a"), packet(2, 1000, b"c", marker=True),  # 1 is lost for good
                            packet(3, 2000, b"d"), packet(4, 2000, b"e", marker=True)])
    clock.now = 0.4
    results += feed(buffer, [packet(5, 3000, b"f", marker=True)])
    assert released(results) == [] and not any(pli for pli, _ in results)  # NACK may still fill it
    clock.now = 0.6
    pli, frame = buffer.add(packet(6, 4000, b"g", marker=True))
    assert pli and frame is not None and (frame.timestamp, frame.data) == (2000, b"de")
    assert buffer.skipped == 1
    assert [buffer.pop_ready().data, buffer.pop_ready().data, buffer.pop_ready()] == [b"f", b"g", None]  # type: ignore[union-attr]
    assert released(feed(buffer, [packet(7, 5000, b"h", marker=True)])) == [(0, 5000, b"h")]


def test_a_frame_whose_start_was_lost_is_dropped_too() -> None:
    clock = FakeClock()
    buffer = MarkerJitterBuffer(capacity=64, clock=clock)
    feed(buffer, [packet(0, 1000, b"a"), packet(2, 1000, b"c", marker=True),  # 1 lost
                  packet(4, 2000, b"e", marker=True)])  # 3, the start of frame 2000, lost too
    clock.now = 1.0
    pli, frame = buffer.add(packet(5, 3000, b"f", marker=True))
    assert pli and frame is not None and frame.data == b"f"  # never "e" alone: it is half a frame


def test_a_slow_frame_without_a_gap_is_not_dropped() -> None:
    clock = FakeClock()
    buffer = MarkerJitterBuffer(capacity=64, clock=clock)
    feed(buffer, [packet(0, 1000, b"a"), packet(1, 1000, b"b")])
    clock.now = 5.0  # e.g. a slot that was idle: nothing is missing, the rest is just late
    pli, frame = buffer.add(packet(2, 1000, b"c", marker=True))
    assert not pli and frame is not None and frame.data == b"abc" and buffer.skipped == 0


def test_duplicates_of_a_released_frame_are_dropped() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(5, 100, b"a", marker=True), packet(5, 100, b"a", marker=True),
                            packet(6, 200, b"b", marker=True)])
    assert released(results) == [(0, 100, b"a"), (2, 200, b"b")]


def test_sequence_numbers_wrap() -> None:
    buffer = MarkerJitterBuffer(capacity=16)
    results = feed(buffer, [packet(65534, 100, b"a"), packet(65535, 100, b"b"), packet(0, 100, b"c", marker=True),
                            packet(1, 200, b"d", marker=True)])
    assert released(results) == [(2, 100, b"abc"), (3, 200, b"d")]


async def test_installed_on_video_receivers_only() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        video = pc.addTransceiver("video", direction="recvonly")
        audio = pc.addTransceiver("audio", direction="recvonly")
        assert use_marker_release(video.receiver) is True
        assert use_marker_release(audio.receiver) is False
        assert isinstance(video.receiver._RTCRtpReceiver__jitter_buffer, MarkerJitterBuffer)  # type: ignore[attr-defined]
        audio_buffer = audio.receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
        assert type(audio_buffer) is JitterBuffer and audio_buffer._prefetch == 4  # audio keeps its prefetch
        tuichat.rtc.jitter.enabled = False
        other = pc.addTransceiver("video", direction="recvonly")
        assert use_marker_release(other.receiver) is False
        assert type(other.receiver._RTCRtpReceiver__jitter_buffer) is JitterBuffer  # type: ignore[attr-defined]
    finally:
        tuichat.rtc.jitter.enabled = True
        await pc.close()


def test_a_sender_that_restarts_its_sequence_lower_still_gets_stall_recovery() -> None:
    """Review: aiortc restarts its buffer at a packet far behind (a sender restarting its sequence
    numbers), but the newest sequence number stayed at the old stream's, so the span looked larger
    than the buffer and a lost packet froze the picture until the sequence caught up (~32k packets)."""
    clock = FakeClock()
    buffer = MarkerJitterBuffer(capacity=512, clock=clock)
    old = feed(buffer, [packet(seq, seq * 100, b"o", marker=True) for seq in range(1000, 1011)])
    assert len(released(old)) == 11
    results: dict[int, tuple[bool, JitterFrame | None]] = {}
    for i, seq in enumerate(range(200, 210)):  # a frame every 66 ms from 1.0 s; 202 is lost for good
        clock.now = 1.0 + 0.066 * i
        if seq != 202:
            results[seq] = buffer.add(packet(seq, seq * 100, bytes([seq - 200]), marker=True))
    data = {seq: frame.data for seq, (_, frame) in results.items() if frame is not None}
    # 201 was the last frame out (1.066 s); 209 is the first packet more than 0.5 s later (1.594 s).
    # 203 may continue 202's frame, so the picture resumes at 204 and asks for a keyframe.
    assert data == {200: b"\x00", 201: b"\x01", 209: b"\x04"} and results[209][0] and buffer.skipped == 1
    assert [buffer.pop_ready().data for _ in range(5)] == [bytes([k]) for k in range(5, 10)]  # type: ignore[union-attr]
    assert buffer.pop_ready() is None
    assert released(feed(buffer, [packet(210, 21_000, b"n", marker=True)])) == [(0, 21_000, b"n")]


def test_a_stale_packet_a_little_behind_does_not_turn_off_stall_recovery() -> None:
    """Ordinary misordering (a late copy of a released packet, under aiortc's MAX_MISORDER behind) is
    dropped by aiortc and must not be taken for a restart."""
    clock = FakeClock()
    buffer = MarkerJitterBuffer(capacity=512, clock=clock)
    feed(buffer, [packet(seq, seq * 100, b"o", marker=True) for seq in range(0, 100)])
    feed(buffer, [packet(seq, seq * 100, b"o", marker=True) for seq in range(101, 110)])  # 100 is lost
    assert buffer.add(packet(50, 5000, b"late", marker=True)) == (False, None)
    clock.now = 0.6
    pli, frame = buffer.add(packet(110, 11_000, b"k", marker=True))
    # 101 may continue 100's frame: the picture resumes at 102, with a keyframe request.
    assert pli and frame is not None and frame.timestamp == 10_200 and buffer.skipped == 1
