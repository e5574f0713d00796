"""Adaptations of aiortc (pinned ``>=1.16,<1.17``) that tuichat installs per object, never globally.

``jitter``: a video jitter buffer that releases a frame when its last packet (RTP marker) arrives.
``encoders``: a VP8 encoder whose bit rate is capped per sender, the publisher's VP8 encoder that
steps down a ladder of sizes on a thin uplink, and an Opus encoder with a settable bit rate.
``rtcp``: sender reports only from senders that send (idle slots stay silent).
They reach into aiortc's private attributes, and fail loudly if those move.
"""

from tuichat.rtc.encoders import (
    PUBLISH_LADDER,
    AudioBudget,
    CappedVp8Encoder,
    TunableOpusEncoder,
    UplinkVp8Encoder,
    VideoBudget,
    install_encoder,
    sender_codec,
)
from tuichat.rtc.jitter import MarkerJitterBuffer, use_marker_release
from tuichat.rtc.rtcp import send_reports_only_when_sending

__all__ = [
    "PUBLISH_LADDER",
    "AudioBudget",
    "CappedVp8Encoder",
    "MarkerJitterBuffer",
    "TunableOpusEncoder",
    "UplinkVp8Encoder",
    "VideoBudget",
    "install_encoder",
    "send_reports_only_when_sending",
    "sender_codec",
    "use_marker_release",
]
