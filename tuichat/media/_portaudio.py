"""Lazy access to sounddevice/PortAudio, turning its failures into ``DeviceUnavailable``.

``import sounddevice`` itself raises ``OSError`` when libportaudio2 is missing, so nothing in
tuichat may import it at module level: a machine without audio must still run video.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any, Literal

from ..errors import DeviceUnavailable

__all__ = ["device_label", "import_sounddevice", "resolve_device"]

Kind = Literal["input", "output"]


def import_sounddevice(role: str) -> ModuleType:
    """Return the ``sounddevice`` module, or raise ``DeviceUnavailable`` naming ``role`` if it cannot load."""
    try:
        import sounddevice
    except OSError as exc:  # "PortAudio library not found"
        raise DeviceUnavailable(
            f"no {role}: the PortAudio library is not installed (install libportaudio2)."
        ) from exc
    return sounddevice


def device_label(device: int | str | None) -> str:
    """How a device spec reads in a message."""
    if device is None:
        return "the default device"
    return f"device {device}" if isinstance(device, int) else repr(device)


def resolve_device(sd: Any, device: int | str | None, kind: Kind, role: str) -> int:
    """Map a spec (``None`` = default, an index, or a name substring) to a PortAudio device index."""
    try:
        devices = list(sd.query_devices())
    except sd.PortAudioError as exc:
        raise DeviceUnavailable(f"no {role}: PortAudio cannot list devices ({exc}).") from exc
    usable = [d for d in devices if d[f"max_{kind}_channels"] > 0]
    if not usable:
        raise DeviceUnavailable(f"no {role}: no sound card found (PortAudio reports no {kind} devices).")
    if device is None:
        index = sd.default.device[0 if kind == "input" else 1]
        if index is None or index < 0:
            raise DeviceUnavailable(f"no {role}: PortAudio has no default {kind} device.")
        return int(index)
    if isinstance(device, int):
        if not 0 <= device < len(devices) or devices[device][f"max_{kind}_channels"] <= 0:
            raise DeviceUnavailable(
                f"no {role} at device index {device} (tuichat devices lists them)."
            )
        return device
    try:
        return int(sd.query_devices(device, kind)["index"])
    except ValueError as exc:
        names = ", ".join(repr(d["name"]) for d in usable)
        if "multiple" in str(exc).lower():
            raise DeviceUnavailable(f"more than one {role} matches {device!r} (known: {names}).") from exc
        raise DeviceUnavailable(f"no {role} matching {device!r} (known: {names}).") from exc


def preload() -> None:
    """Initialise PortAudio now, before a terminal UI starts drawing.

    sounddevice points file descriptor 2 at /dev/null while ``Pa_Initialize`` runs (to hide ALSA's
    chatter). Textual writes the screen to fd 2 from its own thread, so initialising PortAudio while
    the UI runs silently drops whatever the UI wrote in that window. Doing it first avoids that.
    A missing PortAudio is not an error here: opening a device will say so clearly later.
    """
    with contextlib.suppress(OSError):
        import sounddevice  # noqa: F401
