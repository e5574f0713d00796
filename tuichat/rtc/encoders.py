"""Per-sender encoders: a VP8 encoder with its own bit-rate cap, an Opus encoder with a settable rate.

aiortc picks each sender's encoder lazily (``get_encoder(codec)`` on the first frame) and keeps it
in the private ``RTCRtpSender.__encoder``; its VP8 bit-rate bounds are module constants shared by
every sender (250 kbps – 1.5 Mbps) and the receiver's REMB feedback overwrites any runtime change.
``install_encoder`` puts our own instance there before the first frame, so every sender has its own:

* ``CappedVp8Encoder`` follows REMB (it still backs off under congestion) but never above the cap
  of its ``VideoBudget`` for the frame size it is encoding. The budget is a small mutable object the
  owner (the server's slot) changes at any time; the next frame picks it up (aiortc rebuilds the
  libvpx context when the rate moves by more than 10%: a keyframe).
* ``UplinkVp8Encoder`` is the publisher's: it also scales the camera down a ladder of sizes while
  the uplink estimate is low, and sets its audio budget with it. On a thin uplink (~100 kbps) a
  640×480 stream never recovers: libvpx cannot go below ~70 kbps there, every loss asks for a
  keyframe that alone overflows the link, and the picture freezes for good; at 160×120 and 16
  kbps Opus the same link carries 15 fps with no loss. It climbs back when the estimate allows.
* ``TunableOpusEncoder`` encodes at ``AudioBudget.bitrate`` (aiortc's ``OpusEncoder`` is fixed at
  96 kbps) and reopens libopus when it changes; RTP timestamps count samples across reopenings.
  It returns at most one Opus packet per frame: aiortc's sender stamps everything one ``encode``
  returns with one RTP timestamp, so two packets from one call reach receivers as one frame
  (aiortc's joins their bytes, a browser's drops one as a duplicate).

Encoders run on aiortc's executor thread; budgets are read there (plain attribute reads).
"""

from __future__ import annotations

import collections
import fractions
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc.codecs import vpx
from aiortc.codecs.base import Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import convert_timebase
from av import AudioFifo, AudioFrame, AudioResampler, CodecContext, VideoFrame
from av.frame import Frame
from av.packet import Packet

__all__ = [
    "PUBLISH_LADDER",
    "AudioBudget",
    "CappedVp8Encoder",
    "PublishRung",
    "TunableOpusEncoder",
    "UplinkVp8Encoder",
    "VideoBudget",
    "install_encoder",
    "sender_codec",
]

log = logging.getLogger(__name__)

OPUS_SAMPLE_RATE = 48_000
OPUS_SAMPLES_PER_FRAME = 960  # 20 ms, as aiortc
#: The longest Opus packet (RFC 6716: 120 ms), in 20 ms frames: the decoded frames of any Opus
#: publisher the server relays fit in one packet.
OPUS_MAX_FRAMES_PER_PACKET = 6
#: Input the Opus encoder may hold back (input arriving faster than one packet per call).
OPUS_MAX_BACKLOG_S = 0.2
#: Calls whose input the Opus packet length must fit: longer input lengthens packets at once, shorter
#: input shortens them after this many calls (a second of 20 ms frames), so input whose frame length
#: wavers does not reopen libopus on every call.
OPUS_SHRINK_AFTER_CALLS = 50
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_SAMPLE_RATE)
#: Where RTCRtpSender keeps its encoder (name-mangled private attribute of aiortc 1.16).
_ENCODER_ATTRIBUTE = "_RTCRtpSender__encoder"


@dataclass
class VideoBudget:
    """A video sender's bit-rate cap: ``bits_per_pixel`` × width × height × ``fps``, within bounds."""

    fps: float = 15.0
    bits_per_pixel: float = 1.5
    min_bps: int = 48_000
    max_bps: int = 250_000

    def cap(self, width: int, height: int) -> int:
        """The cap in bits per second for frames of ``width``×``height``."""
        wanted = round(width * height * self.fps * self.bits_per_pixel)
        return max(self.min_bps, min(wanted, self.max_bps))


@dataclass
class AudioBudget:
    """An audio sender's Opus bit rate in bits per second."""

    bitrate: int = 32_000


class CappedVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder whose target is min(REMB estimate, the budget's cap), floored at ``min_bps``."""

    def __init__(self, budget: VideoBudget) -> None:
        super().__init__()
        self.budget = budget
        self._estimate = vpx.DEFAULT_BITRATE
        self._size: tuple[int, int] | None = None

    def _cap(self) -> int:
        budget = self.budget
        return budget.cap(*self._size) if self._size is not None else budget.max_bps

    @property  # type: ignore[override]
    def target_bitrate(self) -> int:
        return min(self._cap(), max(self._estimate, self.budget.min_bps))

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        # Called by RTCRtpSender for each REMB: remember the estimate; the getter applies the cap.
        self._estimate = int(bitrate)

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, Frame)
        self._size = (frame.width, frame.height)  # type: ignore[attr-defined]
        # The parent sizes libvpx's buffer from its private copy: keep it equal to the capped target.
        self._Vp8Encoder__target_bitrate = self.target_bitrate
        return super().encode(frame, force_keyframe)


@dataclass(frozen=True)
class PublishRung:
    """A size the publisher sends at, the video cap there, the uplink estimate it needs, and Opus's rate."""

    width: int
    height: int
    max_bps: int
    min_estimate: int
    audio_bps: int


#: Largest first. The top rung's cap is the budget's; each lower rung's cap leaves the estimate
#: room to grow past 1.1× the rung above's need (aiortc's estimator grows to at most 1.5× what it
#: receives + 10 kbps), so a link that recovers gets the larger size back.
PUBLISH_LADDER: tuple[PublishRung, ...] = (
    PublishRung(640, 480, 500_000, 160_000, 48_000),
    PublishRung(320, 240, 120_000, 60_000, 24_000),
    PublishRung(160, 120, 60_000, 0, 16_000),
)
#: After stepping down, wait this long before stepping up; doubled by each step down after the
#: first switch (up to ``MAX_HOLD_S``), so a link on the edge between two rungs does not flap
#: (each switch is a keyframe).
HOLD_S = 8.0
MAX_HOLD_S = 64.0


class UplinkVp8Encoder(CappedVp8Encoder):
    """The publisher's VP8: the budget's cap, and a size from ``ladder`` that the uplink can carry.

    The rung follows the REMB estimate: down at once when it falls below the rung's need, up one
    rung when it reaches 1.1× the need of the rung above and the hold time has passed. Only rungs
    that shrink the source count (a 320×240 camera goes from its own size to 160×120), and the top
    rung's need scales with what the source costs there. ``audio`` (the publisher's Opus budget)
    is set to the rung's rate. Frames larger than the rung's box are scaled into it, keeping their
    aspect.
    """

    def __init__(self, budget: VideoBudget, audio: AudioBudget | None = None,
                 ladder: Sequence[PublishRung] = PUBLISH_LADDER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(budget)
        self.audio = audio
        self.ladder = tuple(ladder)
        self.rung = 0
        self.switches = 0
        self._clock = clock
        self._hold = HOLD_S
        self._since = clock()
        self._set_audio()

    def _cap(self) -> int:
        rung = self.ladder[self.rung]
        return min(super()._cap(), rung.max_bps) if self.rung == 0 else rung.max_bps

    def _set_audio(self) -> None:
        if self.audio is not None:
            self.audio.bitrate = self.ladder[self.rung].audio_bps

    def _usable(self, width: int, height: int) -> list[int]:
        """The rungs that apply to a width×height source: the top one and those that shrink it."""
        return [0] + [k for k, r in enumerate(self.ladder) if k and (r.width < width or r.height < height)]

    def _need(self, rung: int, width: int, height: int) -> float:
        """The estimate ``rung`` needs for this source: the top rung's scales with its cap there."""
        box = self.ladder[rung]
        if rung:
            return box.min_estimate
        w, h = fit_size(width, height, box.width, box.height)
        nominal = min(self.budget.cap(box.width, box.height), box.max_bps)
        return box.min_estimate * min(self.budget.cap(w, h), box.max_bps) / max(nominal, 1)

    def _climb(self, width: int, height: int) -> None:
        now, estimate = self._clock(), self._estimate
        usable = self._usable(width, height)
        at = next((i for i, k in enumerate(usable) if k >= self.rung), len(usable) - 1)
        if at + 1 < len(usable) and estimate < self._need(usable[at], width, height):
            while at + 1 < len(usable) and estimate < self._need(usable[at], width, height):
                at += 1
            self._hold = min(self._hold * 2, MAX_HOLD_S) if self.switches else self._hold
        elif (at > 0 and estimate >= 1.1 * self._need(usable[at - 1], width, height)
              and now - self._since >= self._hold):
            at -= 1
        if usable[at] != self.rung:
            self.rung, self._since = usable[at], now
            self.switches += 1
            self._set_audio()

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, VideoFrame)
        self._climb(frame.width, frame.height)
        box = self.ladder[self.rung]
        width, height = fit_size(frame.width, frame.height, box.width, box.height)
        if (width, height) != (frame.width, frame.height):
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            frame = scaled
        return super().encode(frame, force_keyframe)


def fit_size(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The largest even size with ``width:height``'s aspect ratio inside the box, never upscaled
    beyond the even minimum of 2×2 that VP8 needs (the server's scaling for a subscriber and the
    publisher's uplink ladder agree on it)."""
    scale = min(box_width / width, box_height / height, 1.0)
    w = min(box_width, width, round(width * scale))
    h = min(box_height, height, round(height * scale))
    return max(2, w - w % 2), max(2, h - h % 2)


class TunableOpusEncoder(Encoder):
    """Opus at ``budget.bitrate`` (VoIP mode, constrained VBR), reopened when the rate changes.

    Each ``encode`` returns at most one packet, stamped with its first sample's index. Its length
    follows the input's frame length in 20 ms steps up to 120 ms (20 ms for the 20 ms frames of the
    microphone and the tone, and for what aiortc and browsers publish; 60 ms for a publisher that
    sends 60 ms packets), so a call's input fits in one packet and nothing piles up; 10 ms frames
    give a packet every other call. Samples that do not fill a
    packet wait in a FIFO for the next call, bounded by ``max_backlog`` seconds: input longer than
    120 ms per call drops its oldest samples (the timestamps skip them) instead of growing delay.
    """

    def __init__(self, budget: AudioBudget, *, max_backlog: float = OPUS_MAX_BACKLOG_S) -> None:
        if max_backlog * OPUS_SAMPLE_RATE < OPUS_MAX_FRAMES_PER_PACKET * OPUS_SAMPLES_PER_FRAME:
            raise ValueError(f"max_backlog must hold the longest Opus packet (0.12 s), not {max_backlog} s")
        self.budget = budget
        self.codec: Any = None
        self.bitrate: int | None = None
        #: Samples dropped because input came faster than packets could carry it.
        self.samples_dropped = 0
        self.resampler = self._new_resampler()
        #: The input's (rate, layout, format) the resampler was made for.
        self._input: tuple[int, str, str] | None = None
        self._fifo = AudioFifo()
        self._max_backlog = round(max_backlog * OPUS_SAMPLE_RATE)
        self._frames = 1  # 20 ms frames per packet, the open codec's
        self._wanted: collections.deque[int] = collections.deque(maxlen=OPUS_SHRINK_AFTER_CALLS)
        self._timestamp = 0  # the index of the FIFO's first sample

    @property
    def buffered_samples(self) -> int:
        """48 kHz samples waiting for the next packet (at most ``max_backlog`` seconds' worth)."""
        return int(self._fifo.samples)

    @staticmethod
    def _new_resampler() -> AudioResampler:
        return AudioResampler(format="s16", layout="stereo", rate=OPUS_SAMPLE_RATE)

    def _open(self, bitrate: int, frames: int) -> None:
        codec: Any = CodecContext.create("libopus", "w")
        codec.bit_rate = bitrate
        codec.format = "s16"
        codec.layout = "stereo"
        codec.sample_rate = OPUS_SAMPLE_RATE
        codec.time_base = OPUS_TIME_BASE
        # Constrained VBR: plain VBR spends up to twice the target on tonal sound (a 32 kbps
        # target gave 52 kbps on a test tone), which a 64 kbps preview budget cannot absorb.
        codec.options = {"application": "voip", "vbr": "constrained", "frame_duration": str(20 * frames)}
        self.codec, self.bitrate, self._frames = codec, bitrate, frames

    def _packet_frames(self, frame: AudioFrame) -> int:
        """20 ms frames per packet: the most any of the last ``OPUS_SHRINK_AFTER_CALLS`` inputs needed."""
        wanted = math.ceil(frame.samples * 50 / frame.sample_rate - 1e-9) if frame.sample_rate > 0 else 1
        self._wanted.append(min(max(wanted, 1), OPUS_MAX_FRAMES_PER_PACKET))
        return max(self._wanted)

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        frames = self._packet_frames(frame)
        if self.codec is None or self.bitrate != self.budget.bitrate or frames != self._frames:
            self._open(self.budget.bitrate, frames)
        # A server slot's sender carries one publisher, then another whose audio may differ (8 kHz
        # mono from a PCMU publisher after 48 kHz stereo Opus): PyAV's resampler refuses a frame
        # unlike its first, which ended the sender and left the slot silent for good (review).
        shape = (frame.sample_rate, frame.layout.name, frame.format.name)
        if shape != self._input:
            if self._input is not None:
                self.resampler = self._new_resampler()
            self._input = shape
        for chunk in self.resampler.resample(frame):
            chunk.pts = None  # the FIFO checks pts for continuity; our timestamps count samples
            self._fifo.write(chunk)
        size = self._frames * OPUS_SAMPLES_PER_FRAME
        excess = self._fifo.samples - size - self._max_backlog  # what would remain after this packet
        if excess > 0:
            self._fifo.read(excess)
            self._timestamp += excess
            self.samples_dropped += excess
            log.debug("Opus input came faster than packets: dropped the oldest %.0f ms",
                      excess * 1000 / OPUS_SAMPLE_RATE)
        if self._fifo.samples < size:
            return [], None  # type: ignore[return-value]  # aiortc's OpusEncoder does the same
        timestamp = self._timestamp
        block = self._fifo.read(size)
        assert block is not None
        block.pts, block.time_base = timestamp, OPUS_TIME_BASE
        packets: list[Packet] = self.codec.encode(block)
        self._timestamp += size
        # libopus makes one packet of frame_size samples at once; a second would share the timestamp.
        if len(packets) != 1:
            log.warning("libopus returned %d packets for one frame; sending the first only", len(packets))
            if not packets:
                return [], None  # type: ignore[return-value]
        return [bytes(packets[0])], timestamp

    def pack(self, packet: Packet) -> tuple[list[bytes], int]:
        assert packet.pts is not None and packet.time_base is not None
        return [bytes(packet)], convert_timebase(packet.pts, packet.time_base, OPUS_TIME_BASE)


def sender_codec(transceiver: Any) -> str:
    """The negotiated send codec's MIME type in lower case ("video/vp8"), "" before negotiation."""
    codecs = getattr(transceiver, "_codecs", None) or []
    return str(codecs[0].mimeType).lower() if codecs else ""


def install_encoder(sender: Any, encoder: Encoder) -> None:
    """Make ``sender`` (an ``RTCRtpSender``) encode with ``encoder``; call before its first frame."""
    if not hasattr(sender, _ENCODER_ATTRIBUTE):
        raise RuntimeError(f"aiortc's RTCRtpSender has no {_ENCODER_ATTRIBUTE}: the pinned aiortc version changed")
    setattr(sender, _ENCODER_ATTRIBUTE, encoder)
