"""Adaptations of aiortc (pinned ``>=1.16,<1.17``) that tuichat installs per object, never globally.

``jitter``: a video jitter buffer that releases a frame when its last packet (RTP marker) arrives.
``encoders``: a VP8 encoder whose bit rate is capped per sender, and an Opus encoder with a settable
bit rate. Both reach into aiortc's private attributes; ``install_*`` fail loudly if those move.
"""

from tuichat.rtc.encoders import (
    AudioBudget,
    CappedVp8Encoder,
    TunableOpusEncoder,
    VideoBudget,
    install_encoder,
    sender_codec,
)
from tuichat.rtc.jitter import MarkerJitterBuffer, use_marker_release

__all__ = [
    "AudioBudget",
    "CappedVp8Encoder",
    "MarkerJitterBuffer",
    "TunableOpusEncoder",
    "VideoBudget",
    "install_encoder",
    "sender_codec",
    "use_marker_release",
]
