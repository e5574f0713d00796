"""A sine-wave microphone: audio that needs no device and is easy to recognise at the far end."""

from __future__ import annotations

import fractions

import numpy as np
from aiortc import AudioStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from ._clock import Pacer

__all__ = ["ToneTrack"]


class ToneTrack(AudioStreamTrack):
    """A continuous sine tone as 48 kHz mono s16 frames of 20 ms, paced in real time."""

    def __init__(
        self,
        frequency: float = 440.0,
        amplitude: float = 0.3,
        *,
        sample_rate: int = 48_000,
        samples_per_frame: int = 960,
    ) -> None:
        super().__init__()
        if not 0.0 <= amplitude <= 1.0:
            raise ValueError("amplitude must be between 0 and 1")
        self.frequency, self.amplitude = frequency, amplitude
        self.sample_rate, self.samples_per_frame = sample_rate, samples_per_frame
        self.time_base = fractions.Fraction(1, sample_rate)
        self._pacer = Pacer(sample_rate / samples_per_frame)
        self._pts = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._pts = await self._pacer.next_slot() * self.samples_per_frame
        if self.readyState != "live":
            raise MediaStreamError
        # Phase from the absolute sample index, so the tone stays continuous across frames and skips.
        n = np.arange(self._pts, self._pts + self.samples_per_frame, dtype=np.float64)
        wave = self.amplitude * 32767 * np.sin(2 * np.pi * self.frequency * n / self.sample_rate)
        frame = AudioFrame.from_ndarray(wave.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self.time_base
        return frame
