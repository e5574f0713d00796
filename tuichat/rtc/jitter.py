"""A video jitter buffer that hands a frame to the decoder as soon as its last packet is in.

aiortc's ``JitterBuffer`` knows a frame is complete only when a packet of the *next* frame (another
RTP timestamp) arrives, so every receiving hop adds one frame interval (67 ms at 15 fps; two hops
through the server). Senders, aiortc's included, set the RTP marker bit on a video frame's last
packet (RFC 7741 for VP8, RFC 6184 for H.264): ``MarkerJitterBuffer`` releases the frame at the
origin when the packets from the origin up to one with the marker bit are all present.

Everything else is aiortc's: the fallback release when the timestamp changes (a sender that never
sets the marker), misordered and duplicate packets, and capacity overflow after a loss (``smart_remove``
plus a PLI). A gap at the origin (a lost packet) holds the frame until NACK retransmission fills it,
as before. Audio keeps aiortc's buffer: every Opus packet carries the marker bit, and audio needs the
prefetch.

aiortc's receiver takes at most one frame per packet added. After a hole is filled, several
complete frames can be waiting, and with single-packet frames (small pictures: most frames here)
that backlog would never drain: the latency would step up by a frame interval per loss. So
``use_marker_release`` also wraps the receiver's packet handler to hand every further complete
frame to the decoder at once (``MarkerJitterBuffer.pop_ready``), as aiortc's handler does with one.

Installed per receiver with ``use_marker_release(receiver)`` (server: the publisher's video; client:
each receive slot's video), before media flows. ``enabled = False`` (before peer connections are
made) keeps aiortc's buffer, for before/after benchmarks.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

__all__ = ["MarkerJitterBuffer", "enabled", "use_marker_release"]

log = logging.getLogger(__name__)

#: aiortc's video jitter buffer size (``RTCRtpReceiver.__init__``), kept.
VIDEO_CAPACITY = 512
#: Where RTCRtpReceiver keeps its buffer (name-mangled private attribute of aiortc 1.16).
_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"

#: Set to False to keep aiortc's buffer in receivers set up afterwards (benchmarks compare both).
enabled = True


def _frame(packets: list[RtpPacket], timestamp: int) -> JitterFrame:
    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` (video, no prefetch) that also releases a frame on its marker packet."""

    def __init__(self, capacity: int = VIDEO_CAPACITY) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=True)
        #: Frames released on their marker packet / on the next frame's first packet (aiortc's way).
        self.released_on_marker = 0
        self.released_on_next = 0
        #: Payload type of the last packet added (after RTX unwrapping): the codec of waiting frames.
        self.payload_type: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.payload_type = packet.payload_type
        return super().add(packet)

    def pop_ready(self) -> JitterFrame | None:
        """The next frame if it is already complete (after ``add`` released one), else None."""
        return None if self._origin is None else self._remove_frame(self._origin)

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
        queue = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
        if queue is None or getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is None:
            return
        codec = getattr(receiver, "_RTCRtpReceiver__codecs", {}).get(buffer.payload_type)
        mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
        while codec is not None and mapper is not None and (frame := buffer.pop_ready()) is not None:
            frame.timestamp = mapper.map(frame.timestamp)
            queue.put((codec, frame))

    receiver._handle_rtp_packet = handle_and_drain
    return True
