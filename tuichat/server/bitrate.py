"""What one subscriber's view costs on the network: the server's bit-rate policy per receive slot.

A subscriber's ``view`` (box, frame rate, ``preview``) decides, for each slot, the box and frame
rate the server sends at, the VP8 cap (``VideoBudget``: bits per pixel per frame, clamped) and the
Opus rate (``AudioBudget``). Normal mode keeps video of a view under 300 kbps (never above
250 kbps before overshoot) but spends generously on the tiny pictures a terminal shows: at 120×90
and 15 fps, 1.5 bits per pixel is 243 kbps, and libvpx gets there only on busy footage. Codec
noise is not free downstream: every block that shimmers re-sends terminal cells, and on the webcam
clip a 48 kbps stream cost the viewer's terminal ~20% more bytes than a 250 kbps one (~270 vs ~225
KB/s: two megabits more over SSH to save a fifth of one on the wire). Preview mode holds a
participant's video and audio together under 64 kbps on the wire, IP/UDP/SRTP headers included:
the box is at most 160×90, at most 5 fps, video 10–20 kbps, Opus 12 kbps (20 ms packets carry about
27 kbps of headers of their own: that, not the codec, is most of preview's audio cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from tuichat.protocol.limits import (
    PREVIEW_MAX_FPS,
    PREVIEW_MAX_HEIGHT,
    PREVIEW_MAX_WIDTH,
    VIEW_MAX_FPS,
    VIEW_MAX_HEIGHT,
    VIEW_MAX_WIDTH,
)
from tuichat.rtc.encoders import AudioBudget, VideoBudget

__all__ = ["NORMAL", "PREVIEW", "Mode", "SlotPlan", "ViewSpec", "plan"]


class ViewSpec(NamedTuple):
    """What a subscriber asked for with ``view``."""

    width: int
    height: int
    fps: int
    preview: bool = False


@dataclass(frozen=True)
class Mode:
    """Bounds of one mode; ``max_*`` clamp the subscriber's view."""

    max_width: int
    max_height: int
    max_fps: int
    bits_per_pixel: float
    min_video_bps: int
    max_video_bps: int
    audio_bps: int


NORMAL = Mode(max_width=VIEW_MAX_WIDTH, max_height=VIEW_MAX_HEIGHT, max_fps=VIEW_MAX_FPS, bits_per_pixel=1.5,
              min_video_bps=48_000, max_video_bps=250_000, audio_bps=32_000)
PREVIEW = Mode(max_width=PREVIEW_MAX_WIDTH, max_height=PREVIEW_MAX_HEIGHT, max_fps=PREVIEW_MAX_FPS,
               bits_per_pixel=0.2, min_video_bps=10_000, max_video_bps=20_000, audio_bps=12_000)


@dataclass(frozen=True)
class SlotPlan:
    """What the server sends on one slot: the box and rate the slot track fits to, and the budgets."""

    width: int
    height: int
    fps: int
    video: VideoBudget
    audio: AudioBudget


def plan(view: ViewSpec) -> SlotPlan:
    """The slot plan for a subscriber's view of one participant."""
    mode = PREVIEW if view.preview else NORMAL
    fps = min(view.fps, mode.max_fps)
    return SlotPlan(
        width=min(view.width, mode.max_width),
        height=min(view.height, mode.max_height),
        fps=fps,
        video=VideoBudget(fps=fps, bits_per_pixel=mode.bits_per_pixel,
                          min_bps=mode.min_video_bps, max_bps=mode.max_video_bps),
        audio=AudioBudget(bitrate=mode.audio_bps),
    )
