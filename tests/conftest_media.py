"""Pytest plugin for the media tests: a private PulseAudio null sink for the whole session.

Load with ``-p tests.conftest_media`` or ``pytest_plugins = ["tests.conftest_media"]`` in conftest.
The ``pulse_null_sink`` fixture starts ``scripts/pulse-null-sink.sh`` in a temporary directory,
points PortAudio's ALSA backend at it (``ALSA_CONFIG_PATH`` with ``pcm.!default {type pulse}``,
``PULSE_SERVER``), waits for ``pactl info`` to answer, makes sounddevice re-scan its devices, and
undoes all of it at the end. Without pulseaudio it skips, or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pulse-null-sink.sh"
READY_TIMEOUT_S = 10.0
ENV_KEYS = ("PULSE_SERVER", "PULSE_CLIENTCONFIG", "ALSA_CONFIG_PATH")


def _missing(reason: str) -> None:
    message = f"PulseAudio null sink unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (required when CI=true)")
    pytest.skip(message)


def _rescan_portaudio() -> None:
    """PortAudio enumerates devices once at initialisation: re-initialise it if already loaded."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        if key in ENV_KEYS:
            env[key] = value
    return env


@pytest.fixture(scope="module")
def pulse_null_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running PulseAudio whose default sink is a null sink and default source its monitor.

    Yields the environment variables it set (already applied to ``os.environ``).
    """
    for tool in ("pulseaudio", "pactl"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is not installed (apt-get install pulseaudio libasound2-plugins)")
    if not any(Path("/usr").glob("lib*/**/alsa-lib/libasound_module_pcm_pulse.so")):
        _missing("the ALSA pulse plugin is not installed (apt-get install libasound2-plugins)")
    rundir = tmp_path_factory.mktemp("pulse")
    log = (rundir / "pulseaudio.log").open("wb")
    proc = subprocess.Popen(
        [str(SCRIPT), str(rundir)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        env: dict[str, str] = {}
        while True:
            if proc.poll() is not None:
                _missing(f"pulseaudio exited with {proc.returncode}: {_tail(rundir / 'pulseaudio.log')}")
            if (rundir / "env").exists() and (rundir / "native").exists():
                env = _read_env(rundir / "env")
                probe = subprocess.run(
                    ["pactl", "info"],
                    env={**os.environ, **env},
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                if probe.returncode == 0 and "tuichat_null" in probe.stdout:
                    break
            if time.monotonic() > deadline:
                log_tail = _tail(rundir / "pulseaudio.log")
                _missing(f"pactl info got no answer in {READY_TIMEOUT_S:g} s: {log_tail}")
            time.sleep(0.05)
        os.environ.update(env)
        _rescan_portaudio()
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        _rescan_portaudio()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
