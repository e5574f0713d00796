"""States, events and their payloads, as enums and typed objects rather than strings."""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from tuichat.client.participant import Participant

log = logging.getLogger(__name__)


class SessionStatus(enum.Enum):
    NEW = "NEW"
    PENDING = "PENDING"
    ESTABLISHED = "ESTABLISHED"
    DISCONNECTED = "DISCONNECTED"
    FAILED = "FAILED"


class RoomEvent(enum.Enum):
    STATE = "STATE"
    JOINED = "JOINED"
    LEFT = "LEFT"
    PUBLISHED = "PUBLISHED"
    UNPUBLISHED = "UNPUBLISHED"
    UPDATED = "UPDATED"
    MESSAGE = "MESSAGE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Message:
    """A chat message as the client shows it."""

    id: int
    timestamp: float
    sender: Participant
    text: str
    private: bool
    recipient: Participant | None = None


@dataclass(frozen=True)
class Failure:
    code: str
    reason: str


@dataclass(frozen=True)
class RoomUpdate:
    """One room event with its payload: a participant, a message, the full state, or a failure.

    ``participant`` and ``participants`` are snapshots as of the event (see ``Participant``)."""

    event: RoomEvent
    participant: Participant | None = None
    message: Message | None = None
    participants: tuple[Participant, ...] = ()
    history: tuple[Message, ...] = ()
    failure: Failure | None = None
    reason: str = ""


K = TypeVar("K")
Callback = Callable[[Any], None] | Callable[[Any], Awaitable[None]]


class Emitter(Generic[K]):
    """``on(key, callback)`` registration; async callbacks run as tracked tasks, errors are logged."""

    def __init__(self) -> None:
        self._handlers: dict[K, list[Callback]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, key: K, callback: Callback) -> Callable[[], None]:
        """Register ``callback`` for ``key``; returns a function that unregisters it."""
        self._handlers.setdefault(key, []).append(callback)
        return lambda: self._handlers.get(key, []).remove(callback) if callback in self._handlers.get(key, []) else None

    def emit(self, key: K, payload: Any) -> None:
        for callback in list(self._handlers.get(key, ())):
            try:
                result = callback(payload)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:
                log.exception("handler for %s failed", key)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler task failed", exc_info=task.exception())
