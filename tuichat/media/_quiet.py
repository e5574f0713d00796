"""Keep native libraries (OpenCV, FFmpeg) from printing into the terminal, where a TUI draws.

Imported first by ``tuichat.media``; safe to call more than once.
"""

from __future__ import annotations

import os

# OpenCV reads this once, when the native module loads, so it must be set before ``import cv2``.
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")

import av.logging
import cv2


def silence_native_logs() -> None:
    """Route nothing from FFmpeg or OpenCV to stderr.

    PyAV installs a callback that drops FFmpeg's messages when its level is ``None``; any other level
    forwards them to Python ``logging``, whose last-resort handler would print to stderr. We keep
    ``None`` and also lower libav's own level, in case something restores FFmpeg's default callback.
    """
    av.logging.set_level(None)
    av.logging.set_libav_level(av.logging.PANIC)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


silence_native_logs()
