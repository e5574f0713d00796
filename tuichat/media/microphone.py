"""The local microphone through sounddevice, handed to the loop through a bounded buffer."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import threading
from typing import Any

import numpy as np
from aiortc import AudioStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from ..errors import DeviceUnavailable
from ._portaudio import device_label, import_sounddevice, resolve_device

__all__ = ["MicrophoneTrack"]

log = logging.getLogger(__name__)


class MicrophoneTrack(AudioStreamTrack):
    """48 kHz mono s16 frames of ``blocksize`` samples from a sounddevice ``InputStream``.

    The PortAudio callback appends each block to a deque of at most ``max_blocks`` (dropping the
    oldest: a consumer that falls behind hears the present, not an ever-growing past) and wakes the
    loop. The stream is opened in the constructor, so a missing device fails at once, and started on
    the first ``recv()``. ``pts`` counts device samples, so dropped blocks show up as a jump.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = 48_000,
        blocksize: int = 960,
        max_blocks: int = 10,
    ) -> None:
        super().__init__()
        sd = import_sounddevice("microphone")
        self.device = device
        self.sample_rate, self.blocksize = sample_rate, blocksize
        self.time_base = fractions.Fraction(1, sample_rate)
        self.blocks_dropped = 0
        self._blocks: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=max_blocks)
        self._lock = threading.Lock()
        self._block_index = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        index = resolve_device(sd, device, "input", "microphone")
        try:
            self._stream: Any = sd.InputStream(
                samplerate=sample_rate,
                channels=1,
                dtype="int16",
                blocksize=blocksize,
                device=index,
                callback=self._callback,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceUnavailable(f"cannot open microphone {device_label(device)}: {exc}.") from exc
        self._started = False

    @property
    def buffered_blocks(self) -> int:
        """Blocks captured but not yet returned by ``recv()`` (at most ``max_blocks``)."""
        return len(self._blocks)

    def _callback(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: copy, append, wake the loop; never block.
        with self._lock:
            if len(self._blocks) == self._blocks.maxlen:
                self.blocks_dropped += 1
            self._blocks.append((self._block_index, bytes(indata)))
            self._block_index += frames
        loop, event = self._loop, self._event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
                loop.call_soon_threadsafe(event.set)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._started:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            try:
                self._stream.start()
            except Exception:
                log.exception("cannot start microphone %s; the track ends", device_label(self.device))
                self.stop()
                raise MediaStreamError from None
            self._started = True
        assert self._event is not None
        while True:
            with self._lock:
                if self._blocks:
                    pts, data = self._blocks.popleft()
                    break
                self._event.clear()
            await self._event.wait()
            if self.readyState != "live":
                raise MediaStreamError
        samples = np.frombuffer(data, dtype=np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = pts
        frame.time_base = self.time_base
        return frame

    def stop(self) -> None:
        """End the track and close the device (idempotent)."""
        super().stop()
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)
        if self._event is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._event.set)
