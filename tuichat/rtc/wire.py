"""Bytes as they cross the network, for the bitrate tests and bench/network.py.

aiortc counts RTP payloads and transport datagrams; budgets like "64 kbps on the network" are about
packets on the wire, so these add the headers aiortc leaves out.
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection

#: IPv4 + UDP headers, which the transport's byte count leaves out.
IP_UDP_BYTES = 28
#: SRTP's authentication tag, at most (AES-GCM; 10 bytes with AES-CM/HMAC-SHA1-80).
SRTP_TAG_BYTES = 16


class SsrcBytes:
    """RTP bytes per SSRC as on the wire (RTP header and extensions, payload, SRTP tag, IP/UDP).

    Wraps the DTLS transport's private RTP handler (aiortc <1.17) to count before decryption."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.bytes: dict[int, int] = {}
        transport: Any = pc.getTransceivers()[0].receiver.transport
        original = transport._handle_rtp_data

        async def counting(data: bytes, arrival_time_ms: int) -> None:
            ssrc = int.from_bytes(data[8:12], "big")
            self.bytes[ssrc] = self.bytes.get(ssrc, 0) + len(data) + SRTP_TAG_BYTES + IP_UDP_BYTES
            await original(data, arrival_time_ms)

        transport._handle_rtp_data = counting

    def of(self, *receivers: Any) -> int:
        """Bytes received so far on the streams of ``receivers``."""
        ssrcs = {s.source for r in receivers for s in r.getSynchronizationSources()}
        return sum(self.bytes.get(ssrc, 0) for ssrc in ssrcs)


async def connection_bytes(pc: RTCPeerConnection | None) -> int:
    """Everything the peer connection received, as on the wire: datagrams plus IP/UDP headers."""
    if pc is None:
        return 0
    total = 0
    for stats in (await pc.getStats()).values():
        if stats.type == "transport":
            total += stats.bytesReceived + IP_UDP_BYTES * stats.packetsReceived
    return total


async def sent_payload_bytes(pc: RTCPeerConnection) -> dict[str, int]:
    """RTP payload bytes our own first two senders (the published video and audio) sent so far, by kind."""
    sent = {}
    for transceiver in pc.getTransceivers()[:2]:
        for stats in (await transceiver.sender.getStats()).values():
            if stats.type == "outbound-rtp":
                sent[transceiver.kind] = stats.bytesSent
    return sent
