"""Per-sender encoders: a VP8 encoder with its own bit-rate cap, an Opus encoder with a settable rate.

aiortc picks each sender's encoder lazily (``get_encoder(codec)`` on the first frame) and keeps it
in the private ``RTCRtpSender.__encoder``; its VP8 bit-rate bounds are module constants shared by
every sender (250 kbps – 1.5 Mbps) and the receiver's REMB feedback overwrites any runtime change.
``install_encoder`` puts our own instance there before the first frame, so every sender has its own:

* ``CappedVp8Encoder`` follows REMB (it still backs off under congestion) but never above the cap
  of its ``VideoBudget`` for the frame size it is encoding. The budget is a small mutable object the
  owner (the server's slot) changes at any time; the next frame picks it up (aiortc rebuilds the
  libvpx context when the rate moves by more than 10%: a keyframe).
* ``TunableOpusEncoder`` encodes at ``AudioBudget.bitrate`` (aiortc's ``OpusEncoder`` is fixed at
  96 kbps) and reopens libopus when it changes; RTP timestamps count samples across reopenings.

Encoders run on aiortc's executor thread; budgets are read there (plain attribute reads).
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Any

from aiortc.codecs import vpx
from aiortc.codecs.base import Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import convert_timebase
from av import AudioFrame, AudioResampler, CodecContext
from av.frame import Frame
from av.packet import Packet

__all__ = [
    "AudioBudget",
    "CappedVp8Encoder",
    "TunableOpusEncoder",
    "VideoBudget",
    "install_encoder",
    "sender_codec",
]

OPUS_SAMPLE_RATE = 48_000
OPUS_SAMPLES_PER_FRAME = 960  # 20 ms, as aiortc
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

    @property  # type: ignore[override]
    def target_bitrate(self) -> int:
        budget = self.budget
        cap = budget.cap(*self._size) if self._size is not None else budget.max_bps
        return min(cap, max(self._estimate, budget.min_bps))

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


class TunableOpusEncoder(Encoder):
    """Opus at ``budget.bitrate`` (VoIP mode, constrained VBR, 20 ms frames), reopened when the rate changes."""

    def __init__(self, budget: AudioBudget) -> None:
        self.budget = budget
        self.codec: Any = None
        self.bitrate: int | None = None
        self.resampler = AudioResampler(format="s16", layout="stereo", rate=OPUS_SAMPLE_RATE,
                                        frame_size=OPUS_SAMPLES_PER_FRAME)
        self._timestamp = 0

    def _open(self, bitrate: int) -> None:
        codec: Any = CodecContext.create("libopus", "w")
        codec.bit_rate = bitrate
        codec.format = "s16"
        codec.layout = "stereo"
        codec.sample_rate = OPUS_SAMPLE_RATE
        codec.time_base = OPUS_TIME_BASE
        # Constrained VBR: plain VBR spends up to twice the target on tonal sound (a 32 kbps
        # target gave 52 kbps on a test tone), which a 64 kbps preview budget cannot absorb.
        codec.options = {"application": "voip", "vbr": "constrained"}
        self.codec, self.bitrate = codec, bitrate

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        if self.codec is None or self.bitrate != self.budget.bitrate:
            self._open(self.budget.bitrate)
        packets: list[Packet] = []
        for chunk in self.resampler.resample(frame):
            packets += self.codec.encode(chunk)
        if not packets:
            return [], None  # type: ignore[return-value]  # aiortc's OpusEncoder does the same
        timestamp = self._timestamp
        self._timestamp += OPUS_SAMPLES_PER_FRAME * len(packets)
        return [bytes(p) for p in packets], timestamp

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
