"""Turn the command line's device words into media objects, with one clear error per failure."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from aiortc import MediaStreamTrack

from ..errors import DeviceUnavailable
from ..tasks import log_unexpected_failure
from ._portaudio import import_sounddevice
from .camera import CameraTrack
from .drain import AudioDrain
from .filesource import FileVideoTrack
from .microphone import MicrophoneTrack
from .speaker import Speaker
from .testpattern import TestPatternTrack
from .tone import ToneTrack

log = logging.getLogger(__name__)

__all__ = ["AudioSink", "describe_devices", "open_audio_source", "open_ready", "open_speaker", "open_video_source",
           "release", "video_source_name"]

T = TypeVar("T")

#: How long opening a device may take before it is given up on (PortAudio and cameras can take seconds).
OPEN_TIMEOUT_S = 10.0
#: How long quitting waits for reader threads to release their devices.
RELEASE_TIMEOUT_S = 2.0


class AudioSink(Protocol):
    """What ``open_speaker`` returns: a ``Speaker`` or an ``AudioDrain``."""

    def start(self) -> None: ...
    def add_track(self, track: MediaStreamTrack) -> None: ...
    def remove_track(self, track: MediaStreamTrack) -> None: ...
    async def stop(self) -> None: ...


def _is_number(spec: str) -> bool:
    """ASCII digits only: ``str.isdigit()`` is also true for "²", which ``int()`` then refuses."""
    return spec.isascii() and spec.isdecimal()


def _audio_device(spec: str) -> int | str | None:
    if spec == "default":
        return None
    return int(spec) if _is_number(spec) else spec


def open_video_source(spec: str, *, label: str = "") -> MediaStreamTrack | None:
    """``none`` → None, ``test`` → test pattern, ``N`` → camera N, a path → camera node or video file.

    A camera whose node exists but cannot be opened is reported by ``await track.ready()``.
    """
    spec = spec.strip()
    if spec.lower() == "none":
        return None
    if spec.lower() == "test":
        return TestPatternTrack(label=label)
    if not spec:
        raise DeviceUnavailable("no camera given (use none, test, a camera number or a path).")
    if _is_number(spec):
        return CameraTrack(int(spec))
    if re.fullmatch(r"-\d+", spec):
        raise DeviceUnavailable(f"no camera {spec}: camera numbers start at 0.")
    spec = os.path.expanduser(spec)  # "~/clip.mp4" in quotes, or from a config
    if re.fullmatch(r"/dev/video\d+", spec) or (spec.startswith("/dev/") and not os.path.isfile(spec)):
        return CameraTrack(spec)
    if not os.path.exists(spec):
        raise DeviceUnavailable(
            f"cannot open video file {spec}: no such file (use none, test, a camera number or a path)."
        )
    if os.path.isfile(spec) and os.path.getsize(spec) == 0:
        raise DeviceUnavailable(f"cannot open video file {spec}: the file is empty.")
    return FileVideoTrack(spec)


def video_source_name(spec: str) -> str:
    """How messages name the ``--camera`` source: "camera 0", "video file clip.mp4"."""
    spec = spec.strip()
    if _is_number(spec) or spec.startswith("/dev/video"):
        return f"camera {spec}"
    return f"video file {os.path.expanduser(spec)}"


def open_audio_source(spec: str) -> MediaStreamTrack | None:
    """``none`` → None, ``test`` → 440 Hz tone, ``default``/index/name → microphone."""
    spec = spec.strip()
    if spec == "none":
        return None
    if spec == "test":
        return ToneTrack()
    return MicrophoneTrack(_audio_device(spec))


def open_speaker(spec: str) -> AudioSink:
    """``none`` → ``AudioDrain`` (tracks are still consumed), ``default``/index/name → started ``Speaker``."""
    spec = spec.strip()
    if spec == "none":
        return AudioDrain()
    speaker = Speaker(_audio_device(spec))
    speaker.start()
    return speaker


async def open_ready(opener: Callable[[], T], *, what: str = "the device", timeout: float = OPEN_TIMEOUT_S) -> T:
    """Open a device in a thread (opening can block) and wait until it works or says why not.

    A device that fails after opening (a camera that never delivers) is stopped before
    ``DeviceUnavailable`` is raised: its reader thread could otherwise open the camera later and
    keep it on, its light too, with nobody reading it. ``timeout`` bounds the whole of it, the
    opener and then the device's ``ready()``. An opener that does not return in time (a pipe nobody
    writes to blocks in open() for good) is given up on, as ``what`` that "did not open"; its
    thread is a daemon, so it holds neither the caller nor the process's exit, and what it opens
    late is stopped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    opening: asyncio.Future[T] = loop.create_future()
    threading.Thread(target=_open_in_thread, args=(opener, loop, opening), name=f"open {what}", daemon=True).start()
    try:
        async with asyncio.timeout_at(deadline):
            device = await asyncio.shield(opening)
    except TimeoutError:
        opening.add_done_callback(_stop_if_opened)
        raise DeviceUnavailable(f"{what} did not open within {timeout:g} s{_pipe_hint(what)}.") from None
    except asyncio.CancelledError:
        # Cancelled (the app quitting) while the thread still opens it: stop it once it is open,
        # or a microphone stream or a camera would stay open with nobody to close it.
        opening.add_done_callback(_stop_if_opened)
        raise
    ready = getattr(device, "ready", None)
    if ready is not None:
        try:
            async with asyncio.timeout_at(deadline):
                await ready()
        except TimeoutError:
            device.stop()  # type: ignore[attr-defined]
            raise DeviceUnavailable(f"{what} did not open within {timeout:g} s{_pipe_hint(what)}.") from None
        except BaseException:
            device.stop()  # type: ignore[attr-defined]
            raise
    return device


async def release(tracks: Iterable[MediaStreamTrack], timeout: float = RELEASE_TIMEOUT_S) -> None:
    """Stop ``tracks`` and wait (off the loop, together, up to ``timeout``) for their reader threads
    to let go of cameras and files: ``stop()`` returns at once, and a process that exits meanwhile
    would tear a decoder down mid-frame. A thread stuck in a read is left to the process's exit."""
    tracks = list(tracks)
    for track in tracks:
        track.stop()
    closing = [wait for track in tracks if (wait := getattr(track, "wait_closed", None)) is not None]
    if closing:
        released = await asyncio.gather(*(wait(timeout) for wait in closing))
        if not all(released):
            log.warning("%d media sources still held their device after %g s", released.count(False), timeout)


def _open_in_thread(opener: Callable[[], T], loop: asyncio.AbstractEventLoop, opening: asyncio.Future[T]) -> None:
    def settle(result: T | None, error: BaseException | None) -> None:
        if opening.done():
            return
        if error is not None:
            opening.set_exception(error)
        else:
            opening.set_result(result)  # type: ignore[arg-type]

    try:
        result, error = opener(), None
    except BaseException as exc:
        result, error = None, exc
    try:
        loop.call_soon_threadsafe(settle, result, error)
    except RuntimeError:  # the loop is gone (the app quit meanwhile): nobody will use the device
        stop = getattr(result, "stop", None)
        if stop is not None and not inspect.iscoroutinefunction(stop):
            with contextlib.suppress(Exception):
                stop()


def _pipe_hint(what: str) -> str:
    """For a source named as ``video_source_name`` names it, a hint when it is a named pipe."""
    path = what.removeprefix("video file ").removeprefix("camera ")
    with contextlib.suppress(OSError):
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return " (a pipe: is anything writing to it?)"
    return ""


def _stop_if_opened(opening: asyncio.Future[Any]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    try:
        stopped = opening.result().stop()
        if inspect.isawaitable(stopped):  # a speaker stops asynchronously
            asyncio.ensure_future(stopped).add_done_callback(log_unexpected_failure)
    except Exception:
        log.exception("stopping a device opened after it was no longer wanted failed")


def describe_devices() -> str:
    """What ``tuichat devices`` prints: cameras, then sound devices (``<`` the default input, ``>``
    the default output), each with the number ``--camera``, ``--mic`` and ``--speaker`` take."""
    return "Cameras (--camera N):\n" + describe_cameras() + "\n\nSound devices (--mic N, --speaker N, or a name):\n" + (
        describe_sound_devices())


def describe_cameras(root: str = "/dev") -> str:
    """The video device nodes, with the names the kernel gives them, or why there are none."""
    if not sys.platform.startswith("linux"):
        return "  0 and up: the cameras OpenCV finds (not listed on this system)"
    nodes = sorted((n for n in os.listdir(root) if re.fullmatch(r"video\d+", n)), key=lambda n: int(n[5:]))
    log.debug("cameras: %s has %s", root, ", ".join(nodes) or "no video* nodes")
    if not nodes:
        return f"  none: no camera found ({root}/video* does not exist)"
    lines = []
    for node in nodes:
        name = ""
        with contextlib.suppress(OSError), open(f"/sys/class/video4linux/{node}/name", encoding="utf-8",
                                                errors="replace") as file:
            name = file.read().strip()
        lines.append(f"  {int(node[5:]):2d} {root}/{node}" + (f" ({name})" if name else ""))
    return "\n".join(lines)


def describe_sound_devices() -> str:
    """A human-readable list of sound devices, or the reason there are none."""
    try:
        sd = import_sounddevice("sound devices")
    except DeviceUnavailable as exc:
        return f"  none: {exc}"
    try:
        log.debug("sound: %s; host APIs: %s", sd.get_portaudio_version()[1],
                  ", ".join(api["name"] for api in sd.query_hostapis()) or "none")
        devices = list(sd.query_devices())
    except sd.PortAudioError as exc:
        return f"  none: PortAudio cannot list devices: {exc}."
    if not devices:
        return "  none: no sound card found (PortAudio reports none)."
    default_in, default_out = sd.default.device
    lines = []
    for i, d in enumerate(devices):
        marks = ("<" if i == default_in else " ") + (">" if i == default_out else " ")
        api = sd.query_hostapis(d["hostapi"])["name"]
        channels = f"{d['max_input_channels']} in, {d['max_output_channels']} out"
        lines.append(f"{marks} {i:2d} {d['name']} ({api}, {channels})")
    return "\n".join(lines)
