"""One exception tree for the whole package, so callers can catch ``TuichatError``."""

from __future__ import annotations


class TuichatError(Exception):
    """Base of every error tuichat raises on purpose."""


class ProtocolError(TuichatError):
    """A message that does not follow the room protocol."""


class CommandFailed(TuichatError):
    """The server refused a command; ``code`` is machine-readable, ``reason`` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{reason} ({code})")
        self.code = code
        self.reason = reason


class ConnectionFailed(TuichatError):
    """The server could not be reached or the connection was lost for good.

    ``permanent``: trying again cannot help (an unknown host, not a tuichat server, an untrusted
    certificate): clients say so and stop instead of retrying.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DeviceUnavailable(TuichatError):
    """A camera, microphone or speaker is missing or failed; the message names the device."""
