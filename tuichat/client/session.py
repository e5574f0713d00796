"""A Session: one WebSocket to a room server, kept alive across drops.

Statuses follow the seed API: NEW → PENDING → ESTABLISHED; when the connection drops the session
goes DISCONNECTED, then PENDING while it retries with backoff, and back to ESTABLISHED, rejoining its
room (the room emits a fresh STATE). FAILED means it gave up (or could not connect at all);
DISCONNECTED with no retry means ``disconnect()`` was called.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

import aiohttp
import msgspec

from tuichat.client.events import Callback, Emitter, SessionStatus
from tuichat.client.room import Room
from tuichat.errors import CommandFailed, ConnectionFailed, ProtocolError
from tuichat.protocol.codec import decode_server_message, encode
from tuichat.protocol.limits import FRAME_MAX_BYTES
from tuichat.protocol.messages import Ack, Command, Error, ErrorCode, Join, Leave
from tuichat.tasks import log_unexpected_failure

log = logging.getLogger(__name__)

#: How long after ``join()`` returns the events that came with STATE wait for a listener.
HAND_OVER_TIMEOUT_S = 1.0


@dataclass(frozen=True, kw_only=True)
class SessionOptions:
    """Timeouts and retry policy, each finite by default."""

    connect_timeout: float = 10.0
    command_timeout: float = 10.0
    #: Ping the server this often; no pong within half of it (aiohttp's rule) and the connection is lost.
    heartbeat: float = 8.0
    reconnect: bool = True
    #: None retries for as long as the session lives; people in a call would rather wait than be dropped.
    max_reconnect_attempts: int | None = None
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    ssl: ssl.SSLContext | bool | None = None


class Session:
    def __init__(self, url: str, username: str, options: SessionOptions | None = None, **overrides: object) -> None:
        self.url = url
        self.username = username
        self.options = replace(options or SessionOptions(), **overrides)  # type: ignore[arg-type]
        self.status = SessionStatus.NEW
        self.reason = ""
        self.reconnect_attempt = 0
        #: While DISCONNECTED and about to reconnect: seconds from then to the next attempt.
        self.retry_in: float | None = None
        self.room: Room | None = None
        self._emitter: Emitter[SessionStatus] = Emitter()
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._send_lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Ack]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._rejoin_task: asyncio.Task[None] | None = None
        #: Leaving a room whose join() was given up midway (see ``join``).
        self._leaving: asyncio.Task[None] | None = None
        #: Why we closed a live connection ourselves (a rejoin the server never answered).
        self._abandon_reason: str | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"<Session {self.username!r} {self.url} {self.status.name}>"

    def on(self, status: SessionStatus, callback: Callback) -> Callable[[], None]:
        """Call ``callback(session)`` when the session enters ``status``."""
        return self._emitter.on(status, callback)

    async def connect(self, *, retry: bool = False) -> None:
        """Open the connection; raises ConnectionFailed (and goes FAILED) when the server can't be reached.

        With ``retry``, a failure that may pass (refused, timed out, server busy) is tried again with
        the reconnection backoff, as a person waiting for a server to come up would want; between
        attempts the session is DISCONNECTED with the reason and ``retry_in``. A permanent failure
        (unknown host, not a tuichat server, TLS mismatch) or ``max_reconnect_attempts`` ends it.
        """
        if self.status not in (SessionStatus.NEW, SessionStatus.DISCONNECTED, SessionStatus.FAILED):
            return
        if self._runner is not None and not self._runner.done() and not self._closing:
            return  # DISCONNECTED between automatic attempts: the reconnect loop is on it already
        self._closing = False
        delay = self.options.backoff_initial
        attempt = 1
        while True:
            self._set_status(SessionStatus.PENDING, f"connecting to {self.url}" if attempt == 1
                             else f"connecting to {self.url} (attempt {attempt})")
            try:
                await self._open()
                break
            except ConnectionFailed as exc:
                limit = self.options.max_reconnect_attempts
                if not retry or exc.permanent or self._closing or (limit is not None and attempt > limit):
                    self._set_status(SessionStatus.FAILED, str(exc))
                    await self._close_http()
                    raise
                self._set_status(SessionStatus.DISCONNECTED, str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            if self._closing:  # disconnect() while waiting: no more attempts
                raise ConnectionFailed("the session was closed while connecting")
            delay = min(delay * 2, self.options.backoff_max)
            attempt += 1
        self._set_status(SessionStatus.ESTABLISHED, "connected")
        self._runner = asyncio.create_task(self._run(), name=f"session {self.username}")
        self._runner.add_done_callback(log_unexpected_failure)

    async def join(self, room_name: str) -> Room:
        """Join ``room_name``; returns once STATE has arrived. Raises CommandFailed with the server's reason.

        A connection lost on the way (or a join the server does not answer in time) is not the
        end while the session reconnects: it joins again once reconnected, and this waits for that.
        ConnectionFailed only when the session gives up or is closed, or does not reconnect.
        """
        if self.status is not SessionStatus.ESTABLISHED:
            raise ConnectionFailed(f"cannot join: the session is {self.status.name.lower()}")
        if self.room is not None:
            raise CommandFailed(ErrorCode.ALREADY_IN_ROOM, f"already in room {self.room.name!r}")
        if self._leaving is not None and not self._leaving.done():
            await asyncio.shield(self._leaving)  # the server must see that Leave before this Join
        room = Room(self, room_name)
        self.room = room
        try:
            try:
                await self.command(Join(id=0, room=room_name, name=self.username))
            except ConnectionFailed as exc:
                if not self.options.reconnect or self._closing:
                    raise
                await self._join_after_reconnecting(room, exc)
        except CommandFailed as exc:
            self._forget(room)
            if not room._ended:  # a rejoin after a drop may have failed it already
                room._fail(exc.code, exc.reason)
            raise
        except BaseException as exc:  # cancelled (a caller's timeout, a UI's cancel), or a bug
            self._forget(room)
            if not room._ended:
                room._fail(ErrorCode.SERVER_ERROR, str(exc) or type(exc).__name__)
            # The Join may be on the wire or taken in already: unless we leave, the others see us
            # in a room we gave up on, and every later join() here is refused (review).
            self._leave_given_up_join()
            raise
        # Events that came with STATE wait for the caller to listen (see ``Room.on``), not forever.
        asyncio.get_running_loop().call_later(HAND_OVER_TIMEOUT_S, room._hand_over)
        return room

    async def _join_after_reconnecting(self, room: Room, lost: ConnectionFailed) -> None:
        """The first join did not get through: the reconnect loop joins ``room`` again (it rejoins
        whatever ``self.room`` is); wait for STATE or the room's failure."""
        ws = self._ws
        if ws is not None and not ws.closed:
            # The socket is up but the server did not answer: start over, so that a server that
            # did take us in drops us instead of keeping a person who was told the join failed.
            log.warning("join unanswered (%s); reconnecting", lost)
            self._abandon_reason = f"the server did not answer the join within {self.options.command_timeout:g} s"
            await ws.close()
        else:
            log.info("connection lost while joining (%s); joining again after reconnecting", lost)
        await room._wait_settled()
        if room.joined:
            return
        failure = room.failure
        if failure is None:
            raise ConnectionFailed("the session was closed while joining")
        if failure.code == ErrorCode.SERVER_ERROR:
            raise ConnectionFailed(failure.reason)
        raise CommandFailed(failure.code, failure.reason)

    async def command(self, command: Command) -> Ack:
        """Send a command with a fresh id and wait for its acknowledgement."""
        ws = self._ws
        if ws is None or ws.closed or self.status is not SessionStatus.ESTABLISHED:
            raise ConnectionFailed(f"not connected (the session is {self.status.name.lower()})")
        command_id = next(self._ids)
        command = msgspec.structs.replace(command, id=command_id)
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            async with self._send_lock:
                await ws.send_str(encode(command))
            return await asyncio.wait_for(future, self.options.command_timeout)
        except TimeoutError:
            raise ConnectionFailed(f"the server did not answer within {self.options.command_timeout:g} s") from None
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionFailed(f"connection lost: {exc}") from None
        finally:
            self._pending.pop(command_id, None)

    async def disconnect(self) -> None:
        """Leave the room and close for good (idempotent)."""
        if self._closing:
            return
        self._closing = True
        room, self.room = self.room, None
        if room is not None and room.joined and self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(room.leave(), 2.0)
        if room is not None:
            room._left_by_us()
        if self._ws is not None:
            await self._ws.close()
        tasks = [task for task in (self._leaving, self._rejoin_task, self._runner) if task is not None]
        for task in tasks:
            task.cancel()
        # Their own failures are logged by their done-callbacks; closing goes on regardless.
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_http()
        self._fail_pending("the session was closed")
        if self.status is not SessionStatus.FAILED:
            self._set_status(SessionStatus.DISCONNECTED, "disconnected")

    async def __aenter__(self) -> Session:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    # --- internals ------------------------------------------------------------------------------

    def _set_status(self, status: SessionStatus, reason: str, retry_in: float | None = None) -> None:
        self.reason, self.retry_in = reason, retry_in
        if status is self.status and status is not SessionStatus.PENDING:
            return
        self.status = status
        log.info("session %s: %s (%s)", self.username, status.name, reason)
        self._emitter.emit(status, self)

    async def _open(self) -> None:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        try:
            self._ws = await asyncio.wait_for(
                self._http.ws_connect(
                    self.url,
                    heartbeat=self.options.heartbeat,
                    max_msg_size=FRAME_MAX_BYTES,
                    ssl=self.options.ssl if self.options.ssl is not None else True,
                ),
                self.options.connect_timeout,
            )
        except TimeoutError:
            raise ConnectionFailed(f"no answer from {self.url} within {self.options.connect_timeout:g} s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            # OpenSSL's text ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: …
            # (_ssl.c:1006)") says what is wrong only at the end: keep that part.
            error = exc.certificate_error
            why = str(getattr(error, "verify_message", None) or getattr(error, "reason", None) or error)
            if "mismatch" in why.lower():  # trusted maybe, but made out to another name or address
                hint = ("connect by a name or address the certificate lists (its subjectAltName), "
                        "or make it for this one")
            else:
                hint = "pass --ca-file with the server's CA, or --insecure for a self-signed test server"
            raise ConnectionFailed(f"the certificate of {self.url} is not trusted ({why.rstrip('.')}); {hint}",
                                   permanent=True) from None
        except aiohttp.ClientConnectorSSLError as exc:
            # errno 1 is OpenSSL's, not the OS's "operation not permitted".
            reason = getattr(exc.os_error, "reason", None)
            if reason == "WRONG_VERSION_NUMBER":  # the answer to our TLS hello was not TLS
                why = "the server does not speak TLS (use ws:// or HOST:PORT)"
            else:
                why = f"TLS failed ({(reason or str(exc.os_error)).replace('_', ' ').lower()})"
            raise ConnectionFailed(f"cannot reach {self.url}: {why}", permanent=True) from None
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 503:  # the server's connection limits (see ServerLimits): worth another try
                raise ConnectionFailed(f"{self.url} is too busy to take another connection (HTTP 503)") from None
            raise ConnectionFailed(f"{self.url} is not a tuichat server (HTTP {exc.status})", permanent=True) from None
        except aiohttp.ClientConnectorDNSError as exc:
            raise ConnectionFailed(f"cannot reach {self.url}: unknown host {exc.host}", permanent=True) from None
        except aiohttp.ServerDisconnectedError:
            hint = " (a TLS server? then wss://)" if self.url.startswith("ws://") else ""
            raise ConnectionFailed(f"cannot reach {self.url}: the server closed the connection{hint}") from None
        except aiohttp.ClientConnectorError as exc:
            # aiohttp's text repeats the address and the socket call: the OS's reason is the news.
            error = exc.os_error
            reason = os.strerror(error.errno).lower() if error.errno else str(error)
            raise ConnectionFailed(f"cannot reach {self.url}: {reason}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionFailed(f"cannot reach {self.url}: {exc}") from None

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _run(self) -> None:
        """Read until the connection drops, then reconnect and rejoin, until closed or out of attempts."""
        while True:
            try:
                reason = await self._read_loop()
            except Exception as exc:  # a bug: dealt with as a lost connection, not a silent dead reader
                log.exception("reading from the server failed")
                reason = f"internal error ({type(exc).__name__}; see the log)"
                if self._ws is not None:
                    await self._ws.close()
            if self._closing:
                return
            if self._abandon_reason is not None:
                reason, self._abandon_reason = self._abandon_reason, None
            self._fail_pending(f"connection lost: {reason}")
            if not self.options.reconnect:
                self._set_status(SessionStatus.FAILED, f"connection lost: {reason}")
                self._fail_room(f"connection lost: {reason}")
                return
            self._set_status(SessionStatus.DISCONNECTED, f"connection lost: {reason}",
                             retry_in=self.options.backoff_initial)
            if not await self._reconnect():
                return
            if self.room is not None:
                self._rejoin_task = asyncio.create_task(self._rejoin(self.room), name=f"rejoin {self.username}")
                self._rejoin_task.add_done_callback(log_unexpected_failure)

    async def _reconnect(self) -> bool:
        delay = self.options.backoff_initial
        self.reconnect_attempt = 0
        while not self._closing:
            self.reconnect_attempt += 1
            limit = self.options.max_reconnect_attempts
            if limit is not None and self.reconnect_attempt > limit:
                self._set_status(SessionStatus.FAILED, f"gave up after {limit} reconnection attempts")
                self._fail_room("the connection to the server was lost")
                return False
            await asyncio.sleep(delay)
            self._set_status(SessionStatus.PENDING, f"reconnecting (attempt {self.reconnect_attempt})")
            try:
                await self._open()
            except ConnectionFailed as exc:
                log.info("reconnect attempt %d failed: %s", self.reconnect_attempt, exc)
                delay = min(delay * 2, self.options.backoff_max)
                self._set_status(SessionStatus.DISCONNECTED, str(exc), retry_in=delay)  # why, and when next
                continue
            self._set_status(SessionStatus.ESTABLISHED, "reconnected")
            return True
        return False

    async def _rejoin(self, room: Room) -> None:
        join = Join(id=0, room=room.name, name=self.username, resume=room.resume_token)
        try:
            await self.command(join)
        except CommandFailed as exc:
            if self.room is room:
                self.room = None
            was_in = room.resume_token is not None  # not so for a first join that the drop interrupted
            room._fail(exc.code, f"could not rejoin after reconnecting: {exc.reason}" if was_in else exc.reason)
        except ConnectionFailed as exc:
            ws = self._ws
            if ws is None or ws.closed or self._closing:
                log.info("rejoin interrupted: %s", exc)  # the read loop has seen the drop and will retry
                return
            # The socket is up but the server never answered: start over rather than sit in a room
            # the server does not know we are in.
            log.warning("rejoin unanswered (%s); reconnecting", exc)
            self._abandon_reason = f"the server did not answer the rejoin within {self.options.command_timeout:g} s"
            await ws.close()

    async def _read_loop(self) -> str:
        ws = self._ws
        assert ws is not None
        close_message = ""  # the server's reason ("server shutting down", "too slow to read messages")
        while True:
            frame = await ws.receive()
            if frame.type == aiohttp.WSMsgType.TEXT:
                try:
                    self._dispatch(decode_server_message(frame.data))
                except ProtocolError as exc:
                    log.warning("%s", exc)
                except Exception:  # a bug in handling one message must not end the reading for good
                    log.exception("handling a message from the server failed; it is skipped")
            elif frame.type == aiohttp.WSMsgType.CLOSE:
                close_message = frame.extra if isinstance(frame.extra, str) else ""
                break
            elif frame.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        error = ws.exception()
        if isinstance(error, aiohttp.ServerTimeoutError):  # aiohttp's "No PONG received after …"
            return f"the server stopped answering (no reply to a ping within {self.options.heartbeat / 2:g} s)"
        if isinstance(error, ConnectionResetError):  # aiohttp's "Cannot write to closing transport"
            return "the connection dropped"
        if error is not None:
            return f"{error}"
        if close_message:
            return f"the server closed the connection ({close_message})"
        if ws.close_code in (1000, 1001):
            return "the server closed the connection"
        if ws.close_code == 1006:  # no closing handshake: the server process or the network went away
            return "the connection dropped"
        return f"connection closed (code {ws.close_code})"

    def _dispatch(self, message: object) -> None:
        if isinstance(message, Ack):
            future = self._pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, Error):
            future = self._pending.get(message.id) if message.id is not None else None
            if future is not None and not future.done():
                future.set_exception(CommandFailed(message.code, message.reason))
            else:
                log.warning("server error: %s (%s)", message.reason, message.code)
        elif self.room is not None:
            self.room._handle(message)  # type: ignore[arg-type]

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionFailed(reason))
        self._pending.clear()

    def _leave_given_up_join(self) -> None:
        ws = self._ws
        if ws is None or ws.closed or self.status is not SessionStatus.ESTABLISHED or self._closing:
            return  # no connection: the server forgets us with it (a resume token is never used)

        async def leave() -> None:
            with contextlib.suppress(CommandFailed, ConnectionFailed):  # not taken in after all: fine
                await self.command(Leave(id=0))

        self._leaving = asyncio.get_running_loop().create_task(leave(), name=f"leave {self.username}")
        self._leaving.add_done_callback(log_unexpected_failure)

    def _fail_room(self, reason: str) -> None:
        """The room is lost with the connection: failed, and forgotten, so that a ``connect()`` by
        hand can ``join()`` again (it was refused as already in the room, for good; review)."""
        room, self.room = self.room, None
        if room is not None:
            room._fail(ErrorCode.SERVER_ERROR, reason)

    def _forget(self, room: Room) -> None:
        if self.room is room:
            self.room = None
