"""Plays any number of remote audio tracks, mixed, on one output device."""

from __future__ import annotations

import logging
import threading
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from ..errors import DeviceUnavailable
from ._handoff import SampleFifo
from ._portaudio import device_label, import_sounddevice, resolve_device
from ._tasks import TrackTasks

__all__ = ["Speaker"]

log = logging.getLogger(__name__)


class Speaker:
    """Mixes remote audio tracks into a sounddevice ``OutputStream``.

    Each track is read by its own task, resampled to 48 kHz mono s16 and written to a per-track
    ``SampleFifo`` of ``buffer_ms`` (full: the oldest audio is dropped, so latency stays bounded).
    The device callback sums the buffers with clipping; an empty buffer plays silence and waits for
    ``prefill_ms`` before resuming, so network jitter does not become constant crackle.

    Tracks may be added before ``start()``; the device is opened by ``start()``.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = 48_000,
        blocksize: int = 960,
        buffer_ms: int = 200,
        prefill_ms: int = 60,
    ) -> None:
        self.device = device
        self.sample_rate, self.blocksize = sample_rate, blocksize
        self.capacity = sample_rate * buffer_ms // 1000
        self.prefill = min(self.capacity, sample_rate * prefill_ms // 1000)
        self.frames_received = 0
        self.callbacks = 0
        self._buffers: dict[MediaStreamTrack, SampleFifo] = {}
        self._buffers_lock = threading.Lock()
        self._resamplers: dict[MediaStreamTrack, tuple[tuple[int, str, str], av.AudioResampler]] = {}
        self._tasks = TrackTasks(self._on_frame, "speaker", on_end=self._on_end)
        self._stream: Any = None

    @property
    def frame_errors(self) -> int:
        """Frames dropped because they could not be played (a resampler refusing them, say)."""
        return self._tasks.frame_errors

    def buffer_for(self, track: MediaStreamTrack) -> SampleFifo | None:
        """The jitter buffer of ``track`` (for statistics and tests)."""
        return self._buffers.get(track)

    def start(self) -> None:
        """Open and start the output device; raises ``DeviceUnavailable`` (idempotent)."""
        if self._stream is not None:
            return
        sd = import_sounddevice("speaker")
        index = resolve_device(sd, self.device, "output", "speaker")
        try:
            stream = sd.OutputStream(
                samplerate=self.sample_rate,
                channels=1,
                dtype="int16",
                blocksize=self.blocksize,
                device=index,
                callback=self._callback,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceUnavailable(f"cannot open speaker {device_label(self.device)}: {exc}.") from exc
        try:
            stream.start()
        except BaseException as exc:
            # Opened but not started: close it, or the device stays held with nobody to close it.
            try:
                stream.close(ignore_errors=True)
            except Exception:
                log.exception("closing speaker %s after it failed to start failed", device_label(self.device))
            if isinstance(exc, (sd.PortAudioError, ValueError)):
                raise DeviceUnavailable(f"cannot open speaker {device_label(self.device)}: {exc}.") from exc
            raise
        self._stream = stream

    def add_track(self, track: MediaStreamTrack) -> None:
        """Play ``track`` mixed with the others (needs a running loop)."""
        with self._buffers_lock:
            self._buffers.setdefault(track, SampleFifo(self.capacity, self.prefill))
        self._tasks.add(track)

    def remove_track(self, track: MediaStreamTrack) -> None:
        """Stop playing ``track`` and forget its buffer."""
        self._tasks.remove(track)
        self._resamplers.pop(track, None)
        with self._buffers_lock:
            self._buffers.pop(track, None)

    async def stop(self) -> None:
        """Stop every track's task and close the device (idempotent)."""
        await self._tasks.close()
        self._resamplers.clear()
        with self._buffers_lock:
            self._buffers.clear()
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close(ignore_errors=True)
            except Exception:
                log.exception("closing speaker %s failed", device_label(self.device))

    def _on_frame(self, track: MediaStreamTrack, frame: Frame | Packet) -> None:
        fifo = self._buffers.get(track)
        if fifo is None or not isinstance(frame, av.AudioFrame):
            return
        self.frames_received += 1
        # A server slot's track can pass from one publisher to another whose audio differs (8 kHz
        # PCMU after 48 kHz Opus): PyAV's resampler refuses a frame unlike its first, so a new
        # input shape gets a new resampler instead of silencing the track for good.
        shape = (frame.sample_rate, frame.layout.name, frame.format.name)
        known = self._resamplers.get(track)
        if known is None or known[0] != shape:
            known = self._resamplers[track] = (
                shape, av.AudioResampler(format="s16", layout="mono", rate=self.sample_rate))
        for out in known[1].resample(frame):
            fifo.write(np.asarray(out.to_ndarray(), dtype=np.int16).reshape(-1))

    def _on_end(self, track: MediaStreamTrack) -> None:
        # Let the device play out the tail; without a running device nobody would, so drop it.
        self._resamplers.pop(track, None)
        with self._buffers_lock:
            fifo = self._buffers.get(track)
            if fifo is None:
                return
            fifo.close()
            if self._stream is None:
                del self._buffers[track]

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: sum every buffer in int32, clip to int16; never block for long.
        self.callbacks += 1
        with self._buffers_lock:
            items = list(self._buffers.items())
        mix = np.zeros(frames, dtype=np.int32)
        for track, fifo in items:
            mix += fifo.read(frames)
            if fifo.drained:  # the track ended and its tail has been played
                with self._buffers_lock:
                    if self._buffers.get(track) is fifo:
                        del self._buffers[track]
        outdata[:, 0] = np.clip(mix, -32768, 32767).astype(np.int16)
