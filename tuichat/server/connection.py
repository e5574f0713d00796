"""One client's WebSocket: read commands, answer each, push events, clean up whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from tuichat.errors import CommandFailed
from tuichat.protocol.codec import BadMessage, decode_command, encode_bytes
from tuichat.protocol.messages import (
    Ack,
    Answer,
    Command,
    Error,
    ErrorCode,
    Join,
    Leave,
    Mute,
    Offer,
    Publish,
    Say,
    ServerMessage,
    State,
    Unpublish,
    View,
)
from tuichat.server.media import ViewPrefs
from tuichat.server.ratelimit import TokenBucket
from tuichat.tasks import BackgroundTasks, log_unexpected_failure

if TYPE_CHECKING:
    from tuichat.server.app import ServerLimits
    from tuichat.server.media import MediaHub
    from tuichat.server.room import Member, Registry

log = logging.getLogger(__name__)


class Connection:
    """Owns one WebSocket. Outgoing messages go through a bounded queue drained by a writer task;
    a client too slow to drain it is disconnected rather than allowed to hold memory or the room."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        registry: Registry,
        limits: ServerLimits,
        peer: str,
        *,
        media: MediaHub | None = None,
        public_url: str | None = None,
    ) -> None:
        self.ws = ws
        #: The server's address for invite links, told to the client in STATE.
        self.public_url = public_url
        self.registry = registry
        self.limits = limits
        self.peer = peer
        self.media = media
        self.views = ViewPrefs()
        self.member: Member | None = None
        self._media_tasks = BackgroundTasks()
        self._close_task: asyncio.Task[bool] | None = None
        # Encoded on the way in, so what waits is counted in bytes as well as in messages.
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=limits.outbox_size)
        self._outbox_bytes = 0
        # Chat and call control are counted apart: a chat flood (a pasted log, a script) must not
        # refuse the same client's media restart or view change (it left a bot's call FAILED).
        self._chat_bucket = TokenBucket(limits.rate_per_second, limits.rate_burst)
        self._control_bucket = TokenBucket(limits.rate_per_second, limits.rate_burst)
        self._closing = False

    def send(self, message: ServerMessage) -> None:
        """Queue a message without waiting; a full queue means the client is not keeping up."""
        if self._closing:
            return
        if self.public_url is not None and isinstance(message, State) and message.public_url is msgspec.UNSET:
            message = msgspec.structs.replace(message, public_url=self.public_url)
        data = encode_bytes(message)
        if self._outbox_bytes + len(data) > self.limits.outbox_bytes or self._outbox.full():
            log.warning("%s is not reading its messages; disconnecting", self.peer)
            self._begin_close(WSCloseCode.POLICY_VIOLATION, "too slow to read messages")
            return
        self._outbox.put_nowait(data)
        self._outbox_bytes += len(data)

    def _begin_close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        # Not now: this runs inside whatever was being sent (a broadcast, a slot refresh), and
        # leaving in the middle of it had the members after us told UNPUBLISHED and LEFT, then
        # the rest of it: PUBLISHED for someone gone, or a slot for them. Right after it instead.
        asyncio.get_running_loop().call_soon(self._leave, reason)
        self._close_task = asyncio.get_running_loop().create_task(
            self.ws.close(code=code, message=reason.encode()), name=f"close {self.peer}")
        self._close_task.add_done_callback(log_unexpected_failure)

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"writer {self.peer}")
        try:
            async for frame in self.ws:
                if self._closing:  # frames already read when it was told to go: none acts any more
                    continue
                if frame.type == WSMsgType.TEXT:
                    self._handle_text(frame.data)
                elif frame.type == WSMsgType.BINARY:
                    self._refuse(BadMessage(ErrorCode.BAD_MESSAGE, "binary frames are not part of the protocol"))
                elif frame.type == WSMsgType.ERROR:
                    log.info("%s: connection error: %s", self.peer, self.ws.exception())
                    break
        finally:
            if self._closing:
                reason = "disconnected"
            elif self.ws.close_code in (WSCloseCode.OK, WSCloseCode.GOING_AWAY):
                reason = "left"  # closed on purpose (a browser tab closed, a client quitting)
            else:
                reason = "connection lost"
            try:
                self._leave(reason)
            finally:  # whatever leaving raised, the writer and media tasks must not outlive us
                self._closing = True
                with contextlib.suppress(asyncio.QueueFull):
                    self._outbox.put_nowait(None)
                writer.cancel()
                await asyncio.gather(writer, self._media_tasks.close(), return_exceptions=True)

    async def _write_loop(self) -> None:
        while (data := await self._outbox.get()) is not None:
            self._outbox_bytes -= len(data)
            try:
                await self.ws.send_frame(data, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError) as exc:
                log.info("%s: send failed: %s", self.peer, exc)
                return

    def _refuse(self, bad: BadMessage) -> None:
        """Unreadable frames (text or binary) are counted as call control: past the rate, the
        answer says to slow down, and a client that never reads them is disconnected."""
        if self._control_bucket.take():
            if bad.__cause__ is not None:  # the codec met an exception it did not expect: worth a look
                log.warning("%s: unreadable frame: %s", self.peer, bad.reason, exc_info=bad.__cause__)
            self.send(Error(id=bad.command_id, code=bad.code, reason=bad.reason))
        else:
            self.send(Error(id=bad.command_id, code=ErrorCode.RATE_LIMITED, reason="too many bad messages; slow down"))

    def _handle_text(self, data: str) -> None:
        try:
            command = decode_command(data)
        except BadMessage as exc:
            self._refuse(exc)
            return
        if not (self._chat_bucket if isinstance(command, Say) else self._control_bucket).take():
            self.send(Error(id=command.id, code=ErrorCode.RATE_LIMITED, reason="too many commands; slow down"))
            return
        try:
            acked_later = self._dispatch(command)
        except CommandFailed as exc:
            self.send(Error(id=command.id, code=ErrorCode(exc.code), reason=exc.reason))
        except Exception:
            log.exception("%s: command %r failed", self.peer, command)
            self.send(Error(id=command.id, code=ErrorCode.SERVER_ERROR, reason="internal server error"))
        else:
            if not acked_later:
                self.send(Ack(id=command.id))

    def _dispatch(self, command: Command) -> bool:
        """Carry out ``command``; True when a task will send its ack (or error) later."""
        match command:
            case Join():
                if self.member is not None:
                    raise CommandFailed(ErrorCode.ALREADY_IN_ROOM, f"already in room {self.member.room.name!r}"
                                        if self.member.room else "already in a room")
                # STATE must precede the ack, so the joiner's view is complete when join() returns.
                self.member = self.registry.join(command.room, command.name, self.send, resume=command.resume)
                self.views.forget_absent(self.member.room.members if self.member.room else ())
                self.member.evict = lambda reason: self._begin_close(WSCloseCode.OK, reason)
            case Leave():
                self._leave("left", require=True)
            case Say():
                member = self._require_member()
                assert member.room is not None
                member.room.say(member, command.text, command.to)
            case Publish():
                self.registry.publish(self._require_member(), audio=command.audio, video=command.video)
            case Unpublish():
                self.registry.unpublish(self._require_member())
            case Mute():
                self.registry.mute(self._require_member(), audio=command.audio, video=command.video)
            case Offer():
                member = self._require_member()
                if self.media is None:
                    raise CommandFailed(ErrorCode.MEDIA_FAILED, "this server does not relay media")
                self._media_tasks.spawn(self._offer(member, command), f"offer {self.peer}")
                return True
            case View():
                member = self._require_member()
                room = member.room
                if command.participant is not None and (room is None or command.participant not in room.members):
                    raise CommandFailed(ErrorCode.UNKNOWN_PARTICIPANT,
                                        f"nobody with id {command.participant!r} is in this room")
                if room is not None:
                    self.views.forget_absent(room.members)
                self.views.set((command.width, command.height, command.fps, command.preview), command.participant)
                if self.media is not None:
                    self.media.view_changed(member)
        return False

    async def _offer(self, member: Member, command: Offer) -> None:
        """Answer an offer: ANSWER, then the slot assignment (STREAMS), then the ack."""
        assert self.media is not None
        try:
            answer = await self.media.offer(member, command.sdp, self.views, self.send)
        except CommandFailed as exc:
            self.send(Error(id=command.id, code=ErrorCode(exc.code), reason=exc.reason))
            return
        except Exception:
            log.exception("%s: offer failed", self.peer)
            self.send(Error(id=command.id, code=ErrorCode.MEDIA_FAILED, reason="internal server error"))
            return
        self.send(Answer(sdp=answer))
        self.media.activate(member)
        self.send(Ack(id=command.id))

    def _require_member(self) -> Member:
        if self.member is None or self.member.room is None:
            raise CommandFailed(ErrorCode.NOT_IN_ROOM, "join a room first")
        return self.member

    def _leave(self, reason: str, *, require: bool = False) -> None:
        if self.member is None:
            if require:
                raise CommandFailed(ErrorCode.NOT_IN_ROOM, "not in a room")
            return
        member, self.member = self.member, None
        self.registry.leave(member, reason=reason)
