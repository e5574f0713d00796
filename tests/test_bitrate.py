"""Per-subscriber bit rates through a real server: normal and preview viewers of one publisher."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection

from tests.conftest import wait_until
from tuichat.client import Session
from tuichat.client.call import PUBLISH_AUDIO_BPS, PUBLISH_VIDEO, Call
from tuichat.client.stream import PlayedStream, PlayStatus
from tuichat.media import AudioDrain, TestPatternTrack, ToneTrack
from tuichat.protocol.limits import PREVIEW_MAX_KBPS
from tuichat.rtc.encoders import AudioBudget, CappedVp8Encoder, TunableOpusEncoder
from tuichat.rtc.wire import SsrcBytes, connection_bytes, sent_payload_bytes
from tuichat.server.bitrate import NORMAL, PREVIEW, ViewSpec, plan

pytestmark = pytest.mark.timeout(60)

NORMAL_VIDEO_MAX_KBPS = 300


wire_bytes = connection_bytes


@dataclass
class Rates:
    video: float  # RTP payload
    audio: float  # RTP payload
    wire: float  # this participant's video and audio RTP packets with every header (IP, UDP, SRTP)
    connection: float  # all the peer connection received (RTCP of idle slots, STUN... included)
    frames: int


async def measure(call: Call, stream: PlayedStream, seconds: float) -> Rates:
    """Received kbps (video payload, audio payload, everything on the wire) over ``seconds``."""
    assert call.pc is not None
    slot = call._slots[stream.slot]
    counter = COUNTERS.get(call.pc) or COUNTERS.setdefault(call.pc, SsrcBytes(call.pc))
    receivers = (slot.video.receiver, slot.audio.receiver)
    v0, a0, f0 = slot.counter.bytes, slot.audio_counter.bytes, stream.frames_received
    s0, c0 = counter.of(*receivers), await wire_bytes(call.pc)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    span = time.monotonic() - t0
    v1, a1, s1, c1 = slot.counter.bytes, slot.audio_counter.bytes, counter.of(*receivers), await wire_bytes(call.pc)
    kbps = 8 / 1000 / span
    return Rates((v1 - v0) * kbps, (a1 - a0) * kbps, (s1 - s0) * kbps, (c1 - c0) * kbps, stream.frames_received - f0)


COUNTERS: weakref.WeakKeyDictionary[RTCPeerConnection, SsrcBytes] = weakref.WeakKeyDictionary()


class Viewers:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sessions: list[Session] = []
        self.calls: list[Call] = []
        self.drains: list[AudioDrain] = []
        self.tracks: list[object] = []

    async def join(self, name: str, *, publish: bool = False, view: tuple[int, int, int] = (320, 180, 15),
                   preview: bool = False, camera: tuple[int, int] = (640, 480)) -> Call:
        session = Session(self.url, name)
        self.sessions.append(session)
        await session.connect()
        room = await session.join("bitrate")
        video = TestPatternTrack(*camera, 15, label=name) if publish else None
        audio = ToneTrack() if publish else None
        self.tracks += [t for t in (video, audio) if t is not None]
        drain = AudioDrain()
        self.drains.append(drain)
        call = Call(room, video=video, audio=audio, audio_sink=drain, view=view, preview=preview)
        self.calls.append(call)
        await asyncio.wait_for(call.start(), 15)
        return call

    async def close(self) -> None:
        for call in self.calls:
            with contextlib.suppress(Exception):
                await call.close()
        for drain in self.drains:
            await drain.stop()
        for track in self.tracks:
            track.stop()  # type: ignore[attr-defined]
        for session in self.sessions:
            await session.disconnect()


@pytest.fixture
async def viewers(url: str) -> AsyncIterator[Viewers]:
    made = Viewers(url)
    try:
        yield made
    finally:
        await made.close()


async def playing(call: Call) -> PlayedStream:
    await wait_until(lambda: any(s.status is PlayStatus.PLAYING for s in call.streams.values()), timeout=10)
    return next(iter(call.streams.values()))


def test_plan_caps_normal_and_preview_views() -> None:
    normal = plan(ViewSpec(320, 180, 15))
    assert (normal.width, normal.height, normal.fps) == (320, 180, 15)
    assert normal.video.cap(320, 180) * 1.15 < NORMAL_VIDEO_MAX_KBPS * 1000  # room for libvpx's overshoot
    assert normal.video.cap(1920, 1080) == NORMAL.max_video_bps
    preview = plan(ViewSpec(640, 360, 30, preview=True))
    assert (preview.width, preview.height, preview.fps) == (PREVIEW.max_width, PREVIEW.max_height, PREVIEW.max_fps)
    assert preview.video.cap(160, 90) <= PREVIEW.max_video_bps and preview.audio.bitrate == PREVIEW.audio_bps


async def test_normal_and_preview_viewers_get_their_own_rates_and_switch_within_two_seconds(
        viewers: Viewers) -> None:
    await viewers.join("alice", publish=True)
    normal = await viewers.join("bob", view=(320, 180, 15))
    preview = await viewers.join("carol", view=(320, 180, 15), preview=True)
    normal_stream, preview_stream = await playing(normal), await playing(preview)
    await asyncio.sleep(1.5)  # first keyframes and REMB settle
    n, p = await asyncio.gather(measure(normal, normal_stream, 3.0), measure(preview, preview_stream, 3.0))
    assert n.video <= NORMAL_VIDEO_MAX_KBPS and n.frames >= 30, n
    assert p.wire <= PREVIEW_MAX_KBPS and p.frames >= 8, p
    # The whole connection fits the thin link too: idle slots send no RTCP (see test below).
    assert p.connection <= PREVIEW_MAX_KBPS, p
    # The publisher sends a pure tone, on which plain Opus VBR spent 52 kbps for a 32 kbps target.
    assert n.audio <= plan(ViewSpec(320, 180, 15)).audio.bitrate / 1000 * 1.15, n
    assert p.video * 3 < n.video and p.audio * 1.5 < n.audio, (n, p)  # one viewer's mode is not the other's
    assert normal_stream.size == (240, 180) and preview_stream.size == (120, 90)

    # Swap modes mid-call: each viewer's rate follows within 2 s, the calls stay up, frames keep coming.
    await asyncio.gather(normal.set_preview(True), preview.set_preview(False))
    await asyncio.sleep(1.0)
    n2, p2 = await asyncio.gather(measure(normal, normal_stream, 1.0), measure(preview, preview_stream, 1.0))
    assert n2.video * 2 < n.video and p2.video > 2 * p.video, (n2, p2)
    assert n2.frames >= 3 and p2.frames >= 8, (n2, p2)
    assert normal.pc is not None and normal.pc.connectionState == "connected"
    assert preview.pc is not None and preview.pc.connectionState == "connected"
    await asyncio.sleep(1.0)
    n3 = await measure(normal, normal_stream, 3.0)
    assert n3.wire <= PREVIEW_MAX_KBPS, n3
    assert normal_stream.size == (120, 90) and preview_stream.size == (240, 180)


def test_a_slots_opus_encoder_takes_a_publisher_whose_sound_differs_from_the_last() -> None:
    """Review: a slot's encoder is set up by its first publisher's sound (48 kHz stereo Opus); a
    PCMU publisher next (8 kHz mono) made PyAV's resampler refuse every frame, which ended the
    sender and left that slot silent for everyone who came after."""
    encoder = TunableOpusEncoder(AudioBudget(32_000))

    def frame(rate: int, layout: str, seconds: float = 0.1) -> av.AudioFrame:
        channels = 2 if layout == "stereo" else 1
        samples = np.zeros((1, round(rate * seconds) * channels), dtype=np.int16)
        made = av.AudioFrame.from_ndarray(samples, format="s16", layout=layout)
        made.sample_rate = rate
        return made

    for rate, layout in ((48_000, "stereo"), (8_000, "mono"), (16_000, "mono"), (48_000, "stereo")):
        packets = []
        for _ in range(3):
            packets += encoder.encode(frame(rate, layout))[0]
        assert packets, (rate, layout)


def test_view_preview_is_optional_on_the_wire() -> None:
    from tuichat.protocol.codec import decode_command, encode
    from tuichat.protocol.messages import View
    from tuichat.server.media import ViewPrefs

    on = '{"type":"view","id":3,"width":160,"height":90,"fps":5,"participant":"p1","preview":true}'
    assert encode(View(id=3, width=160, height=90, fps=5, participant="p1", preview=True)) == on
    assert '"preview"' not in encode(View(id=4, width=160, height=90, fps=5))  # what older servers accept
    prefs = ViewPrefs()
    command = decode_command(on)
    assert isinstance(command, View)
    prefs.set((command.width, command.height, command.fps, command.preview), command.participant)
    off = decode_command('{"type":"view","id":5,"width":320,"height":180,"fps":15}')
    assert isinstance(off, View)
    prefs.set((off.width, off.height, off.fps, off.preview), off.participant)
    assert prefs.for_participant("p1") == ViewSpec(160, 90, 5, True)
    assert prefs.for_participant("p2") == ViewSpec(320, 180, 15, False)


async def test_idle_slots_send_nothing(viewers: Viewers) -> None:
    """A viewer alone in a room receives no RTCP from its seven idle slots' fourteen senders.

    aiortc's senders report every ~1 s from the start (~14 kbps for a room connection): on a 64 kbps
    link that is a fifth of the budget spent on slots that show nobody."""
    call = await viewers.join("dave")
    assert call.pc is not None
    await asyncio.sleep(2.0)  # past the first report interval (0.5–1.5 s)
    before, t0 = await wire_bytes(call.pc), time.monotonic()
    await asyncio.sleep(4.0)
    kbps = (await wire_bytes(call.pc) - before) * 8 / 1000 / (time.monotonic() - t0)
    assert kbps < 1.5, f"{kbps:.1f} kbps received by a connection with no one to show"  # STUN checks only


async def test_the_publisher_sends_what_the_server_can_use(viewers: Viewers) -> None:
    """The server re-encodes at most 250 + 32 kbps per viewer: the uplink stays near what it needs.

    aiortc's stock encoders send 500 kbps of VP8 from the first frame (climbing to 1.5 Mbps) and
    96 kbps of Opus whatever the camera."""
    camera = await viewers.join("erin", publish=True, camera=(320, 240))
    await playing(await viewers.join("frank"))
    await asyncio.sleep(1.0)
    assert camera.pc is not None
    before, t0 = await sent_payload_bytes(camera.pc), time.monotonic()
    await asyncio.sleep(3.0)
    after, span = await sent_payload_bytes(camera.pc), time.monotonic() - t0
    video, audio = ((after[k] - before[k]) * 8 / span for k in ("video", "audio"))
    # A test pattern is too easy for VP8 to fill even aiortc's rate: check the encoder's target too.
    encoder = getattr(camera._sender_video.sender if camera._sender_video else None, "_RTCRtpSender__encoder", None)
    assert isinstance(encoder, CappedVp8Encoder) and encoder.target_bitrate <= PUBLISH_VIDEO.cap(320, 240), encoder
    assert video <= PUBLISH_VIDEO.cap(320, 240) * 1.3, f"{video / 1000:.0f} kbps of video sent"
    assert video >= PUBLISH_VIDEO.cap(320, 240) * 0.3, f"{video / 1000:.0f} kbps of video sent"
    assert audio <= PUBLISH_AUDIO_BPS * 1.1, f"{audio / 1000:.0f} kbps of audio sent"
