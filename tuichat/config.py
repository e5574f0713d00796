"""Paths and logging set-up: one place that knows where tuichat keeps its files."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import platformdirs

APP_NAME = "tuichat"


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME))


def default_log_file(command: str) -> Path:
    """Where ``tuichat COMMAND`` logs unless told otherwise, e.g. ~/.local/state/tuichat/connect.log."""
    return state_dir() / f"{command}.log"


class LogFileError(Exception):
    """The log file cannot be written (a directory, a path that cannot exist, no permission)."""


def setup_logging(log_file: Path | None, *, verbose: bool = False, to_stderr: bool = False) -> None:
    """Log to a rotating file (never to the terminal a TUI draws on), plus stderr where that is safe."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=2)
        except OSError as exc:
            raise LogFileError(f"cannot write the log file {str(log_file)!r}: "
                               f"{(exc.strerror or str(exc)).lower()}") from None
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        root.addHandler(stream)
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    # Libraries that are chatty at INFO: keep their detail for --verbose.
    for name in ("aiohttp.access", "aioice", "aiortc"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
