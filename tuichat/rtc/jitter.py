"""A video jitter buffer that hands a frame to the decoder as soon as its last packet is in.

aiortc's ``JitterBuffer`` knows a frame is complete only when a packet of the *next* frame (another
RTP timestamp) arrives, so every receiving hop adds one frame interval (67 ms at 15 fps; two hops
through the server). Senders, aiortc's included, set the RTP marker bit on a video frame's last
packet (RFC 7741 for VP8, RFC 6184 for H.264): ``MarkerJitterBuffer`` releases the frame at the
origin when the packets from the origin up to one with the marker bit are all present.

Everything else is aiortc's: the fallback release when the timestamp changes (a sender that never
sets the marker), misordered and duplicate packets, and capacity overflow after a loss (``smart_remove``
plus a PLI). A gap (a lost packet) holds its frame while NACK retransmission may still fill it, but
not for ever: aiortc waits until 512 packets pile up behind it, which at the bit rates of a thin
link is a minute of frozen picture (measured: a publisher behind a 100 kbps uplink lost a few
packets to a burst, their retransmissions were lost too, and nothing was decoded again). After
``STALL_TIMEOUT_S`` without a frame the stalled frame is dropped up to the next frame that starts
after the gap, and a PLI asks the sender for a keyframe to decode from. Audio keeps aiortc's buffer:
every Opus packet carries the marker bit, and audio needs the prefetch.

aiortc's receiver takes at most one frame per packet added. After a hole is filled, several
complete frames can be waiting, and with single-packet frames (small pictures: most frames here)
that backlog would never drain: the latency would step up by a frame interval per loss. So
``use_marker_release`` also wraps the receiver's packet handler to hand every further complete
frame to the decoder at once (``MarkerJitterBuffer.pop_ready``), as aiortc's handler does with one.

The decoder queue behind it (aiortc's, a thread's input) has no bound: a sender faster than the
decoder (a crafted or huge stream, a starved CPU) would grow it without limit, and the delay with
it. Past ``MAX_DECODE_BACKLOG`` frames the backlog is dropped and a PLI asks for a keyframe: the
picture skips ahead instead of falling behind for good.

Installed per receiver with ``use_marker_release(receiver)`` (server: the publisher's video; client:
each receive slot's video), before media flows. ``enabled = False`` (before peer connections are
made) keeps aiortc's buffer, for before/after benchmarks.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

__all__ = ["MAX_DECODE_BACKLOG", "STALL_TIMEOUT_S", "MarkerJitterBuffer", "enabled", "shed_backlog",
           "use_marker_release"]

log = logging.getLogger(__name__)

#: aiortc's video jitter buffer size (``RTCRtpReceiver.__init__``), kept.
VIDEO_CAPACITY = 512
#: How long a gap may hold frames back: several round trips for NACK, well short of a frozen call.
STALL_TIMEOUT_S = 0.5
#: Encoded frames the decoder may have waiting before they are dropped for a keyframe (2 s at 15 fps).
MAX_DECODE_BACKLOG = 30
#: Where RTCRtpReceiver keeps its buffer (name-mangled private attribute of aiortc 1.16).
_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"

#: Set to False to keep aiortc's buffer in receivers set up afterwards (benchmarks compare both).
enabled = True


def _frame(packets: list[RtpPacket], timestamp: int) -> JitterFrame:
    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` (video, no prefetch) that also releases a frame on its marker packet."""

    def __init__(self, capacity: int = VIDEO_CAPACITY, *, stall_timeout: float = STALL_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=True)
        #: Frames released on their marker packet / on the next frame's first packet (aiortc's way).
        self.released_on_marker = 0
        self.released_on_next = 0
        #: Stalled frames dropped after a gap that was not filled in time.
        self.skipped = 0
        #: Payload type of the last packet added (after RTX unwrapping): the codec of waiting frames.
        self.payload_type: int | None = None
        self.stall_timeout = stall_timeout
        self._clock = clock
        self._progress = clock()  # when a frame was last released (or the buffer last checked)
        self._newest: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.payload_type = packet.payload_type
        sequence = packet.sequence_number
        if self._origin is None or self._newest is None or self._restarts(sequence):
            # aiortc's buffer (re)starts at this packet: a sender that restarted its sequence numbers
            # lower. Keeping the old newest would leave the stall check off for up to 32k packets.
            self._newest = sequence
        elif 0 < (sequence - self._newest) % 65536 < 32768:
            self._newest = sequence
        pli, frame = super().add(packet)
        now = self._clock()
        if frame is not None:
            self._progress = now
        elif now - self._progress > self.stall_timeout:
            self._progress = now
            if self._skip_stalled():
                self.skipped += 1
                return True, self.pop_ready()
        return pli, frame

    def _restarts(self, sequence: int) -> bool:
        """Whether aiortc's ``add`` will empty the buffer and restart it at ``sequence``: a packet
        further behind the origin than misordering explains (``MAX_MISORDER``)."""
        assert self._origin is not None
        behind = (self._origin - sequence) % 65536
        return MAX_MISORDER <= behind < (sequence - self._origin) % 65536

    def _skip_stalled(self) -> bool:
        """Drop from the origin past the first gap to the first packet known to start a frame."""
        if self._origin is None or self._newest is None:
            return False
        span = (self._newest - self._origin) % 65536 + 1
        if span > self._capacity:
            return False
        slots = [self._packets[(self._origin + i) % self._capacity] for i in range(span)]
        if all(p is not None for p in slots):
            return False  # no gap: a frame still arriving, not a stall
        seen_gap, cut = False, span
        for i, packet in enumerate(slots):
            if packet is None:
                seen_gap = True
            elif seen_gap and i > 0 and (previous := slots[i - 1]) is not None and (
                    previous.marker or previous.timestamp != packet.timestamp):
                cut = i
                break
        log.debug("jitter buffer: a gap held frames back for %.1f s; dropping %d packets", self.stall_timeout, cut)
        self.remove(cut)
        if cut == span:
            self._origin = None  # nothing left: start again at the next packet
        return True

    def pop_ready(self) -> JitterFrame | None:
        """The next frame if it is already complete (after ``add`` released one), else None."""
        frame = None if self._origin is None else self._remove_frame(self._origin)
        if frame is not None:
            self._progress = self._clock()
        return frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: wait for the packet (or a retransmission) to arrive
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The next frame started without a marker on this one: aiortc's rule.
                self.remove(count)
                self.released_on_next += 1
                return _frame(packets, timestamp)
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                self.released_on_marker += 1
                return _frame(packets, timestamp)
        return None


def shed_backlog(decoder_queue: queue.Queue[Any]) -> int:
    """Empty a decoder queue of the frames waiting in it (keeping the end-of-stream ``None`` that
    stops its thread); how many were dropped."""
    dropped, ended = 0, False
    while True:
        try:
            item = decoder_queue.get_nowait()
        except queue.Empty:
            break
        if item is None:
            ended = True
        else:
            dropped += 1
    if ended:
        decoder_queue.put(None)
    return dropped


def use_marker_release(receiver: Any) -> bool:
    """Give a video ``RTCRtpReceiver`` a ``MarkerJitterBuffer`` (before packets arrive).

    Returns False (and changes nothing) for audio receivers or when ``enabled`` is False."""
    if not enabled or getattr(receiver, "_RTCRtpReceiver__kind", None) != "video":
        return False
    current = getattr(receiver, _ATTRIBUTE, None)
    if not isinstance(current, JitterBuffer):
        raise RuntimeError(f"aiortc's RTCRtpReceiver has no {_ATTRIBUTE}: the pinned aiortc version changed")
    if isinstance(current, MarkerJitterBuffer):
        return True
    buffer = MarkerJitterBuffer(current.capacity)
    setattr(receiver, _ATTRIBUTE, buffer)
    handle = receiver._handle_rtp_packet

    async def handle_and_drain(packet: RtpPacket, arrival_time_ms: int) -> None:
        await handle(packet, arrival_time_ms=arrival_time_ms)
        # What aiortc's handler does with the one frame ``add`` returned, for the rest of the backlog.
        decoder_queue = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
        if decoder_queue is None or getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is None:
            return
        codec = getattr(receiver, "_RTCRtpReceiver__codecs", {}).get(buffer.payload_type)
        mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
        while codec is not None and mapper is not None and (frame := buffer.pop_ready()) is not None:
            frame.timestamp = mapper.map(frame.timestamp)
            decoder_queue.put((codec, frame))
        if decoder_queue.qsize() > MAX_DECODE_BACKLOG:
            dropped = shed_backlog(decoder_queue)
            log.warning("the decoder fell %d frames behind; dropped them and asked for a keyframe", dropped)
            await receiver._send_rtcp_pli(packet.ssrc)

    receiver._handle_rtp_packet = handle_and_drain
    return True
