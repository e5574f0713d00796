"""Media fan-out on the server: decode each published track once, re-encode per subscriber.

``VideoFanout`` reads one received video track and keeps only its newest decoded frame (with a
sequence number); ``SlotVideoTrack`` is what the server sends on one subscriber slot: it takes the
newest frame of whichever fanout feeds it, paced to the subscriber's frame rate and scaled to fit
the subscriber's view. Audio is not dropped so eagerly: ``AudioFanout`` copies every frame into
each subscriber's bounded deque (about 200 ms; the oldest goes first), which ``SlotAudioTrack`` sends.

Slot tracks live as long as their peer connection and never end on their own: an idle slot's
``recv()`` simply waits, so the sender sends nothing. Switching publishers keeps timestamps
increasing (a per-slot clock), so the subscriber's decoder and jitter buffer see one stream.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import time
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, MediaStreamError
from av import AudioFrame, VideoFrame

from tuichat.rtc.encoders import fit_size

__all__ = [
    "AUDIO_QUEUE_FRAMES",
    "AudioFanout",
    "SlotAudioTrack",
    "SlotVideoTrack",
    "VideoFanout",
    "fit_size",
]

log = logging.getLogger(__name__)

#: Audio frames (20 ms each) a subscriber may lag before the oldest are dropped: 200 ms.
AUDIO_QUEUE_FRAMES = 10
#: A frame may arrive this fraction of a frame interval early and still be sent (absorbs jitter).
PACING_TOLERANCE = 0.3
#: swscale's area filter: 0.09 ms for 640×480 → 120×90 here, against 1.5 ms for render.resize_area.
SCALE_INTERPOLATION = "AREA"

EndedCallback = Callable[[str], None]
Clock = Callable[[], float]


class _Wakeable:
    """A single waiter woken by ``_wake()``; no queue, just 'something changed, look again'."""

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class _Fanout:
    """Reads one received track in a task until it ends; subclasses decide what to keep."""

    kind = ""

    def __init__(self, track: MediaStreamTrack, name: str, on_ended: EndedCallback | None = None) -> None:
        self.track = track
        self.name = name
        self.on_ended = on_ended
        self.ended = False
        self.frames_received = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading (needs a running loop; idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.kind} fanout {self.name}")

    async def close(self) -> None:
        """Stop reading (idempotent); ``on_ended`` is not called for a close."""
        self.on_ended = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._finish()

    async def _run(self) -> None:
        reason = "the track ended"
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    break
                self.frames_received += 1
                self._accept(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s fanout %s failed", self.kind, self.name)
            reason = f"reading the track failed: {exc}"
        self._finish()
        callback, self.on_ended = self.on_ended, None
        if callback is not None:
            try:
                callback(reason)
            except Exception:
                log.exception("on_ended callback of %s fanout %s failed", self.kind, self.name)

    def _accept(self, frame: object) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        self.ended = True


class VideoFanout(_Fanout):
    """Keeps only the newest decoded frame of one track, numbered by ``seq``; wakes its subscribers."""

    kind = "video"

    def __init__(self, track: MediaStreamTrack, name: str, on_ended: EndedCallback | None = None) -> None:
        super().__init__(track, name, on_ended)
        self.frame: VideoFrame | None = None
        self.seq = 0
        self._subscribers: set[SlotVideoTrack] = set()

    def subscribe(self, slot: SlotVideoTrack) -> None:
        self._subscribers.add(slot)

    def unsubscribe(self, slot: SlotVideoTrack) -> None:
        self._subscribers.discard(slot)

    def _accept(self, frame: object) -> None:
        if not isinstance(frame, VideoFrame):
            return
        self.frame = frame
        self.seq += 1
        for slot in list(self._subscribers):
            slot._wake()


class AudioFanout(_Fanout):
    """Pushes every decoded frame of one track into each subscriber's bounded deque."""

    kind = "audio"

    def __init__(self, track: MediaStreamTrack, name: str, on_ended: EndedCallback | None = None) -> None:
        super().__init__(track, name, on_ended)
        self._subscribers: set[SlotAudioTrack] = set()

    def subscribe(self, slot: SlotAudioTrack) -> None:
        self._subscribers.add(slot)

    def unsubscribe(self, slot: SlotAudioTrack) -> None:
        self._subscribers.discard(slot)

    def _accept(self, frame: object) -> None:
        if not isinstance(frame, AudioFrame):
            return
        for slot in list(self._subscribers):
            slot._push(frame)


class SlotVideoTrack(MediaStreamTrack, _Wakeable):
    """One subscriber's video slot: the newest frame of the attached fanout, paced and fitted."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 180, fps: float = 15,
                 clock: Clock = time.monotonic) -> None:
        """``clock`` paces and stamps the frames (tests pass their own to step time exactly)."""
        MediaStreamTrack.__init__(self)
        _Wakeable.__init__(self)
        self.width, self.height, self.fps = width, height, fps
        self._clock = clock
        self.fanout: VideoFanout | None = None
        self.frames_sent = 0
        self.frames_skipped = 0
        self._seq = 0
        self._due: float | None = None
        self._t0 = clock()
        self._last_pts = -1

    def attach(self, fanout: VideoFanout | None) -> None:
        """Feed this slot from ``fanout`` (None: idle). Timestamps carry on across switches."""
        if fanout is self.fanout:
            return
        if self.fanout is not None:
            self.fanout.unsubscribe(self)
        self.fanout = fanout
        self._seq = fanout.seq if fanout is not None else 0  # only frames newer than now
        if fanout is not None:
            fanout.subscribe(self)
        self._wake()

    def set_view(self, width: int, height: int, fps: float) -> None:
        """Fit pictures inside ``width``×``height`` and send at most ``fps`` frames per second."""
        if fps <= 0 or width < 2 or height < 2:
            raise ValueError(f"bad view {width}x{height}@{fps}")
        if fps != self.fps:
            self._due = None
        self.width, self.height, self.fps = width, height, fps

    def stop(self) -> None:
        if self.fanout is not None:
            self.fanout.unsubscribe(self)
            self.fanout = None
        super().stop()
        self._wake()

    async def recv(self) -> VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            fanout = self.fanout
            if fanout is not None and fanout.seq > self._seq and fanout.frame is not None:
                self._seq = fanout.seq
                now = self._clock()
                interval = 1.0 / self.fps
                if self._due is None or now >= self._due - PACING_TOLERANCE * interval:
                    # Keep to a fixed grid while frames keep up; restart it after a gap.
                    base = self._due if self._due is not None and now - self._due < interval else now
                    self._due = base + interval
                    return self._prepare(fanout.frame, now)
                self.frames_skipped += 1
            await self._sleep()

    def _prepare(self, frame: VideoFrame, now: float) -> VideoFrame:
        width, height = fit_size(frame.width, frame.height, self.width, self.height)
        out = frame.reformat(width=width, height=height, format="yuv420p", interpolation=SCALE_INTERPOLATION)
        if out is frame:  # unchanged: copy, as the encoder stamps pts and flags on the frame it gets
            out = VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
        pts = max(round((now - self._t0) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        out.pts = pts
        out.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        return out


class SlotAudioTrack(MediaStreamTrack, _Wakeable):
    """One subscriber's audio slot: frames of the attached fanout from a bounded deque, re-stamped."""

    kind = "audio"

    def __init__(self, max_frames: int = AUDIO_QUEUE_FRAMES) -> None:
        MediaStreamTrack.__init__(self)
        _Wakeable.__init__(self)
        self.fanout: AudioFanout | None = None
        self.queue: collections.deque[AudioFrame] = collections.deque(maxlen=max_frames)
        self.frames_sent = 0
        self.frames_dropped = 0
        self._pts = 0

    def attach(self, fanout: AudioFanout | None) -> None:
        """Feed this slot from ``fanout`` (None: idle); what was queued from the previous one is dropped."""
        if fanout is self.fanout:
            return
        if self.fanout is not None:
            self.fanout.unsubscribe(self)
        self.fanout = fanout
        self.queue.clear()
        if fanout is not None:
            fanout.subscribe(self)
        self._wake()

    def stop(self) -> None:
        self.attach(None)
        super().stop()
        self._wake()

    def _push(self, frame: AudioFrame) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.frames_dropped += 1
        self.queue.append(frame)
        self._wake()

    async def recv(self) -> AudioFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self.queue:
                frame = self.queue.popleft()
                # A copy: the same decoded frame goes to every subscriber, each with its own pts.
                out = AudioFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name,
                                              layout=frame.layout.name)
                out.sample_rate = frame.sample_rate
                out.pts = self._pts
                out.time_base = fractions.Fraction(1, frame.sample_rate)
                self._pts += frame.samples
                self.frames_sent += 1
                return out
            await self._sleep()
