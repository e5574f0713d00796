"""A thin link for one direction of a real peer connection: a rate limit and a drop-tail queue.

These machines have no ``tc netem`` (no qdisc modules in the kernel), so the link is emulated where
every datagram of a peer connection leaves: the ICE transport's send (DTLS, SRTP and STUN alike).
Each datagram (with 28 bytes of IP and UDP header) takes its serialisation time at ``rate_bps``
after the ones before it; one that would wait more than ``queue_s`` is dropped, as a router with a
full buffer would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

IP_UDP_HEADER = 28


class ThinLink:
    """Install with ``ThinLink.on(sender_or_receiver, rate_bps)``; counts what it carried and dropped."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], rate_bps: int, queue_s: float) -> None:
        self._send = send
        self.rate_bps = rate_bps
        self.queue_s = queue_s
        self.sent_bytes = 0
        self.dropped = 0
        self._busy_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def on(cls, rtp_sender_or_receiver: Any, rate_bps: int, queue_s: float = 0.5) -> ThinLink:
        """Limit everything the peer connection of ``rtp_sender_or_receiver`` sends (one bundle)."""
        ice = rtp_sender_or_receiver.transport.transport
        link = cls(ice._send, rate_bps, queue_s)
        ice._send = link.send
        return link

    async def send(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._busy_until)
        if start - now > self.queue_s:
            self.dropped += 1
            return
        self._busy_until = start + (len(data) + IP_UDP_HEADER) * 8 / self.rate_bps
        self.sent_bytes += len(data) + IP_UDP_HEADER
        loop.call_at(self._busy_until, self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        task = asyncio.ensure_future(self._send(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
