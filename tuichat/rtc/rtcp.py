"""Sender reports only from senders that send: idle slots cost nothing on a thin link.

aiortc's ``RTCRtpSender`` sends an RTCP compound (SR + SDES, about 120 bytes on the wire with SRTP,
UDP and IP) every 0.5–1.5 s from the moment its transceiver starts, whether or not it has sent any
RTP. A room connection has a sender per receive slot (seven video + audio pairs by default), so a
viewer with one remote participant received ~14 kbps of reports for slots that show nobody: a
fifth of the 64 kbps preview budget. An SR describes media sent (RFC 3550 §6.4: it goes out only
from a participant that sent data since its previous report), and a sendonly slot receives nothing
to report on either, so ``send_reports_only_when_sending`` drops a sender's SR compound when its
packet count has not moved since the previous one. The first report after media starts, and the
BYE when the sender stops, still go out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtp import RtcpSrPacket

__all__ = ["send_reports_only_when_sending"]

#: The sender's RTCP output method (private in aiortc 1.16: ``RTCRtpSender._send_rtcp``).
_SEND_RTCP = "_send_rtcp"


def send_reports_only_when_sending(sender: Any) -> None:
    """Make ``sender`` (an ``RTCRtpSender``) skip its periodic SR + SDES while it sends no RTP."""
    original: Callable[[list[Any]], Awaitable[None]] | None = getattr(sender, _SEND_RTCP, None)
    if original is None:
        raise RuntimeError(f"aiortc's RTCRtpSender has no {_SEND_RTCP}: the pinned aiortc version changed")
    reported = 0  # packets counted in the last report that went out (none yet)

    async def send_rtcp(packets: list[Any]) -> None:
        nonlocal reported
        report = next((p for p in packets if isinstance(p, RtcpSrPacket)), None)
        if report is not None:
            sent = report.sender_info.packet_count
            if sent == reported:
                return  # nothing sent since the last report: an idle slot stays silent
            reported = sent
        await original(packets)

    setattr(sender, _SEND_RTCP, send_rtcp)
