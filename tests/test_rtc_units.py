"""tuichat.rtc's small parts with real aiortc and PyAV objects: ICE server URLs, the Opus encoder's packets."""

from __future__ import annotations

import asyncio
import fractions
import itertools

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamTrack

from tuichat.media import ToneTrack
from tuichat.rtc.encoders import OPUS_MAX_BACKLOG_S, AudioBudget, TunableOpusEncoder, install_encoder, sender_codec
from tuichat.rtc.ice import check_ice_url, ice_server_list

pytestmark = pytest.mark.timeout(10)

TONE_HZ = 440.0


# --- ICE servers -------------------------------------------------------------------------------------


def test_a_bare_url_is_one_server_not_one_per_character() -> None:
    """Review: 'stun:example.org:3478' made 21 servers, one per character."""
    assert ice_server_list("stun:example.org:3478") == [RTCIceServer(urls="stun:example.org:3478")]
    ready = RTCIceServer(urls="turn:turn.example.org:3478", username="u", credential="p")
    assert ice_server_list(ready) == [ready]
    assert ice_server_list(["stuns:a.example.org", ready]) == [RTCIceServer(urls="stuns:a.example.org"), ready]
    assert ice_server_list(()) == []


@pytest.mark.parametrize(("url", "message"), [
    ("http://nope", "'http://nope' is not a STUN or TURN URL: it must start with stun:, stuns:, turn: or turns:"),
    ("STUN:example.org", "'STUN:example.org' is not a STUN or TURN URL"),  # aiortc takes lower case only
    ("example.org:3478", "'example.org:3478' is not a STUN or TURN URL"),
    ("stun:", "'stun:' is not a usable stun: URL (expected stun:HOST[:PORT])"),
    ("stun:example.org:99999", "(port 99999 is not from 1 to 65535)"),
    ("stun:example.org?transport=udp", "(stun must not contain transport)"),
    ("turn:example.org?transport=sctp", "(aiortc supports transport=udp or tcp only)"),  # aiortc skips it silently
])
def test_a_url_aiortc_cannot_use_is_refused_by_name(url: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        ice_server_list([url])
    assert message in str(error.value)
    with pytest.raises(ValueError, match="is not a"):  # the same inside a ready RTCIceServer (the CLI makes those)
        ice_server_list([RTCIceServer(urls=["stun:ok.example.org", url])])


def test_a_url_of_the_other_kind_is_refused_where_only_one_kind_goes() -> None:
    """For the CLI: --stun takes stun:/stuns: URLs, --turn turn:/turns: ones."""
    assert check_ice_url("stuns:example.org:5349", ("stun", "stuns")) == "stuns:example.org:5349"
    with pytest.raises(ValueError, match=r"^'turn:example.org' is not a STUN URL: it must start with stun: or stuns:"):
        check_ice_url("turn:example.org", ("stun", "stuns"))
    with pytest.raises(ValueError, match="has no URL"):
        ice_server_list([RTCIceServer(urls=[])])


# --- Opus: one packet per call -----------------------------------------------------------------------


def tone(start: int, samples: int, rate: int = 48_000, layout: str = "mono") -> av.AudioFrame:
    """Samples ``start`` to ``start + samples`` of a continuous 440 Hz tone."""
    n = np.arange(start, start + samples, dtype=np.float64)
    wave = (0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * n / rate)).astype(np.int16)
    channels = 2 if layout == "stereo" else 1
    frame = av.AudioFrame.from_ndarray(np.repeat(wave, channels).reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = rate
    frame.pts, frame.time_base = start, fractions.Fraction(1, rate)
    return frame


def run(encoder: TunableOpusEncoder, frame_samples: int, calls: int, rate: int = 48_000,
        ) -> list[tuple[int, int, np.ndarray]]:
    """(RTP timestamp, decoded samples, decoded left channel) per packet; fails on a call with two."""
    decoder = OpusDecoder()  # aiortc's receiving side (libopus through PyAV)
    out = []
    for k in range(calls):
        payloads, timestamp = encoder.encode(tone(k * frame_samples, frame_samples, rate))
        assert len(payloads) <= 1, f"call {k} returned {len(payloads)} packets for one RTP timestamp"
        assert encoder.buffered_samples <= OPUS_MAX_BACKLOG_S * 48_000
        for payload in payloads:
            decoded = decoder.decode(JitterFrame(payload, timestamp))
            assert len(decoded) == 1
            out.append((timestamp, decoded[0].samples, decoded[0].to_ndarray().reshape(-1, 2)[:, 0]))
    return out


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 48_000 / len(samples))


@pytest.mark.parametrize(("rate", "frame_ms", "packet_samples"), [
    (48_000, 10, 960), (48_000, 20, 960), (48_000, 40, 1920), (48_000, 60, 2880),
    (8_000, 20, 960),  # a PCMU publisher relayed by the server
    (16_000, 60, 2880),
])
def test_each_call_gives_at_most_one_packet_stamped_with_its_first_sample(
        rate: int, frame_ms: int, packet_samples: int) -> None:
    """Review: a 40 or 60 ms frame gave two or three packets that aiortc's sender sent with one RTP
    timestamp; receivers merged them (aiortc joins their bytes into one undecodable frame) or dropped them."""
    encoder = TunableOpusEncoder(AudioBudget(32_000))
    frame_samples = rate * frame_ms // 1000
    calls = 1000 // frame_ms  # a second of sound
    packets = run(encoder, frame_samples, calls, rate)
    timestamps = [t for t, _, _ in packets]
    assert timestamps[0] == 0 and len(set(timestamps)) == len(timestamps)
    # Each packet starts where the one before ended: no overlap (merged) and no hole.
    assert [t1 - t0 for t0, t1 in itertools.pairwise(timestamps)] == [n for _, n, _ in packets[:-1]]
    assert {n for _, n, _ in packets} == {packet_samples}
    sent = sum(n for _, n, _ in packets)
    expected = calls * frame_samples * 48_000 // rate
    assert encoder.samples_dropped == 0
    assert expected - 144 <= sent + encoder.buffered_samples <= expected  # the resampler holds back < 3 ms
    assert encoder.buffered_samples < packet_samples
    sound = np.concatenate([s for _, _, s in packets])[960:]  # after the codec's start-up
    assert abs(peak_hz(sound) - TONE_HZ) < 10
    assert 0.5 < np.sqrt(np.mean(sound.astype(np.float64) ** 2)) / (0.3 * 32767 / np.sqrt(2)) < 1.5


def test_input_faster_than_packets_is_bounded_and_dropped_oldest_first() -> None:
    """Frames longer than the longest Opus packet (120 ms) cannot all be sent one packet a call: the
    backlog stops at ``max_backlog`` and the timestamps skip what was dropped."""
    encoder = TunableOpusEncoder(AudioBudget(32_000))
    frame_samples, calls = 12_000, 24  # 250 ms frames, 6 s of sound
    packets = run(encoder, frame_samples, calls)
    assert len(packets) == calls and {n for _, n, _ in packets} == {5760}
    timestamps = [t for t, _, _ in packets]
    assert all(t1 >= t0 + n for (t0, n, _), t1 in zip(packets, timestamps[1:], strict=False))
    assert timestamps[-1] > timestamps[0] + 5760 * (calls - 1)  # skipped ahead over dropped samples
    assert 0 < encoder.buffered_samples <= OPUS_MAX_BACKLOG_S * 48_000
    assert 5760 * calls + encoder.samples_dropped + encoder.buffered_samples == frame_samples * calls
    # What is left is the newest sound, contiguous: the last packet ends where the backlog starts.
    assert timestamps[-1] + 5760 + encoder.buffered_samples == frame_samples * calls


def test_packets_shorten_again_when_the_input_does() -> None:
    """A slot relaying a 60 ms publisher, then a 20 ms one: back to 20 ms packets (not 40 ms more
    delay for good), without reopening libopus on every call when frame lengths waver."""
    encoder = TunableOpusEncoder(AudioBudget(32_000))
    decoder = OpusDecoder()
    lengths, t, start = [], 0, 0
    for samples in [2880] * 10 + [960, 1920] * 10 + [960] * 80:
        payloads, timestamp = encoder.encode(tone(start, samples))
        start += samples
        assert len(payloads) <= 1
        for payload in payloads:
            assert timestamp == t
            n = decoder.decode(JitterFrame(payload, timestamp))[0].samples
            lengths.append(n)
            t += n
    # 60 ms until the last 60 ms frame is 50 calls old, then 40 ms (the wavering), then 20 ms: each
    # step once, never back and forth.
    assert lengths[:29] == [2880] * 29 and 1920 in lengths and lengths[-20:] == [960] * 20
    assert lengths == sorted(lengths, reverse=True)
    assert t + encoder.buffered_samples == start and encoder.samples_dropped == 0


async def test_a_peer_receives_60_ms_frames_whole_and_in_time_order() -> None:
    """End to end through aiortc's sender and receiver: a 60 ms tone frame arrives as 60 ms of sound
    with timestamps that follow on (before, three packets with one timestamp became one garbled frame)."""
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    source = ToneTrack(samples_per_frame=2880)
    remote: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    receiver_pc.on("track", lambda track: remote.done() or remote.set_result(track))
    try:
        transceiver = sender_pc.addTransceiver(source, direction="sendonly")
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        assert sender_codec(transceiver) == "audio/opus"
        install_encoder(transceiver.sender, TunableOpusEncoder(AudioBudget(32_000)))
        track = await asyncio.wait_for(remote, 5)
        frames = [await asyncio.wait_for(track.recv(), 5) for _ in range(12)]
    finally:
        source.stop()
        await sender_pc.close()
        await receiver_pc.close()
    assert [f.samples for f in frames] == [2880] * 12
    pts = [f.pts for f in frames]
    assert [b - a for a, b in itertools.pairwise(pts)] == [2880] * 11
    sound = np.concatenate([f.to_ndarray().reshape(-1, 2)[:, 0] for f in frames[2:]])
    assert abs(peak_hz(sound) - TONE_HZ) < 10
