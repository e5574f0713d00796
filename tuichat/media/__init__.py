"""Media sources and sinks as aiortc tracks: test pattern, tone, file, camera, microphone, speaker.

No UI and no networking here. Importing this package silences OpenCV and FFmpeg, whose native
log output would otherwise land inside the terminal UI. sounddevice is imported lazily, so a
machine without PortAudio can still send and receive video.
"""

from . import _quiet  # first: sets OPENCV_LOG_LEVEL before cv2 loads
from ._portaudio import preload as preload_audio
from .camera import CameraTrack
from .devices import (
    AudioSink,
    describe_devices,
    open_audio_source,
    open_ready,
    open_speaker,
    open_video_source,
    release,
    video_source_name,
)
from .drain import AudioDrain
from .filesource import FileVideoTrack
from .latest import LatestFrameSink
from .microphone import MicrophoneTrack
from .speaker import Speaker
from .tap import FrameTap
from .testpattern import (
    BAR_BAND,
    BARS,
    COUNTER_BAND,
    COUNTER_BITS,
    COUNTER_MODULO,
    TestPatternTrack,
    read_counter,
    render_test_pattern,
    stamp_counter,
)
from .tone import ToneTrack

del _quiet

__all__ = [
    "BARS",
    "BAR_BAND",
    "COUNTER_BAND",
    "COUNTER_BITS",
    "COUNTER_MODULO",
    "AudioDrain",
    "AudioSink",
    "CameraTrack",
    "FileVideoTrack",
    "FrameTap",
    "LatestFrameSink",
    "MicrophoneTrack",
    "Speaker",
    "TestPatternTrack",
    "ToneTrack",
    "describe_devices",
    "open_audio_source",
    "open_ready",
    "open_speaker",
    "open_video_source",
    "preload_audio",
    "read_counter",
    "release",
    "render_test_pattern",
    "stamp_counter",
    "video_source_name",
]
