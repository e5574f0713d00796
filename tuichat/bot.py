"""A headless participant: room events out as JSON lines on stdout, stdin lines in as chat.

With media on (the default; off with ``--chat-only``) it also joins the call: it publishes
``camera``/``mic`` (the test pattern labelled with its name and a tone by default; neither with
``none``), plays everyone into an ``AudioDrain``, and prints stream events (PUBLISH, PLAY, DEVICE).
Built on the client library only; never imports the TUI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

from aiortc import MediaStreamTrack

from tuichat.client import Message, Participant, Room, RoomEvent, RoomUpdate, Session, SessionOptions, SessionStatus
from tuichat.client.call import Call, CallEvent, CallUpdate
from tuichat.client.chatline import PRIVATE_USAGE, LineKind, parse_line
from tuichat.client.stream import PlayStatus
from tuichat.errors import CommandFailed, ConnectionFailed, DeviceUnavailable, TuichatError
from tuichat.protocol.messages import ErrorCode
from tuichat.tasks import BackgroundTasks

#: A line the server refused as too fast is sent again after this long, doubling up to the max.
RATE_LIMITED_WAIT_S = 0.2
RATE_LIMITED_MAX_WAIT_S = 2.0
#: What a line starting with '/' can be in the bot (the terminal client's /help is a help screen).
BOT_COMMANDS = "the bot's commands are /msg NAME TEXT and /quit (or /exit)"
#: Stdin lines read ahead of the ones being sent.
STDIN_READ_AHEAD = 64
#: Line breaks by Unicode's rules (str.splitlines, many tools) that json.dumps(ensure_ascii=False)
#: leaves raw: escaped, so one event stays one line whatever the text in it (the rest are escaped already).
_LINE_BREAKS_ESCAPED = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


@dataclass
class BotOptions:
    url: str
    name: str
    room: str
    say: list[str] = field(default_factory=list)
    echo: bool = False
    read_stdin: bool = True
    session: SessionOptions = field(default_factory=SessionOptions)
    #: Join the call at all (False: a chat-only bot).
    media: bool = True
    #: Specs for ``tuichat.media.open_video_source``/``open_audio_source``: none, test, an index, a path.
    camera: str = "test"
    mic: str = "test"
    #: Remote audio is drained, never played: a bot has no ears.
    speaker: str = field(default="none", init=False)
    #: The pixel box (width, height) and fps asked of the server for every remote participant.
    view: tuple[int, int, int] = (160, 90, 15)
    ice_servers: list[Any] = field(default_factory=list)  # RTCIceServer objects or URL strings


def participant_json(participant: Participant | None) -> dict[str, Any]:
    if participant is None:
        return {}
    data: dict[str, Any] = {"participant": participant.name, "participant_id": participant.id}
    if participant.stream is not None:
        stream = participant.stream
        data["stream"] = {"audio": stream.audio, "video": stream.video,
                          "audio_muted": stream.audio_muted, "video_muted": stream.video_muted}
    return data


def message_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"id": message.id, "ts": message.timestamp, "from": message.sender.name,
                            "from_id": message.sender.id, "text": message.text, "private": message.private}
    if message.recipient is not None:
        data["to"] = message.recipient.name
    return data


def update_json(update: RoomUpdate) -> dict[str, Any]:
    """One room event as the JSON object the bot prints."""
    data: dict[str, Any] = {"event": update.event.value}
    if update.event is RoomEvent.STATE:
        data["participants"] = [{"name": p.name, "id": p.id, "self": p.is_self} for p in update.participants]
        data["history"] = [message_json(m) for m in update.history]
    elif update.event is RoomEvent.MESSAGE and update.message is not None:
        data.update(message_json(update.message))
    elif update.event is RoomEvent.FAILED and update.failure is not None:
        data.update(code=update.failure.code, reason=update.failure.reason)
    else:
        data.update(participant_json(update.participant))
        if update.reason:
            data["reason"] = update.reason
    return data


class Bot:
    def __init__(self, options: BotOptions, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.out = out
        self.session = Session(options.url, options.name, options.session)
        self.room: Room | None = None
        self.call: Call | None = None
        self._stop = asyncio.Event()
        self.failure: str | None = None
        self._tracks: list[MediaStreamTrack] = []
        self._audio_sink: Any = None
        self._replies = BackgroundTasks()  # --echo's answers, sent while events go on arriving
        #: Whoever read our output has gone (``tuichat bot ... | head -2``): print nothing more.
        self.out_gone = False

    def emit(self, data: dict[str, Any]) -> None:
        if self.out_gone:
            return
        try:
            self.out.write(json.dumps(data, ensure_ascii=False).translate(_LINE_BREAKS_ESCAPED) + "\n")
            self.out.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        """Stop as on EOF, like a Unix filter whose reader went away: quietly, leaving the room.

        What is still buffered for the dead pipe would fail again when the interpreter flushes stdout
        at exit ("Exception ignored ... BrokenPipeError"), so the descriptor is pointed at devnull, as
        the Python docs advise for SIGPIPE (only our own stream's, and only if it has one).
        """
        self.out_gone = True
        self.stop()
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.out.fileno())
            finally:
                os.close(devnull)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        for status in SessionStatus:
            self.session.on(status, lambda s: self.emit({"event": "SESSION", "status": s.status.value,
                                                         "reason": s.reason}))
        try:
            await self.session.connect()
            self.room = await self._join()
        except (ConnectionFailed, CommandFailed) as exc:
            if isinstance(exc, CommandFailed):  # the room refused us: the FAILED room event
                self.emit({"event": RoomEvent.FAILED.value, "code": exc.code, "reason": exc.reason})
            print(f"tuichat bot: {exc}", file=sys.stderr)
            await self.session.disconnect()
            return 1
        try:
            if self.options.media:
                await self._start_call(self.room)
            for text in self.options.say:
                if self._stop.is_set():  # /quit in a --say, or nobody reads us any more
                    break
                await self._say(text)
            if self.options.read_stdin:
                await self._pump_stdin()
            else:
                await self._stop.wait()
        finally:
            await self._replies.close()
            await self._stop_call()
            await self.session.disconnect()
        if self.failure is not None:
            print(f"tuichat bot: {self.failure}", file=sys.stderr)
            return 1
        return 0

    async def _open_device(self, kind: str, spec: str) -> MediaStreamTrack | None:
        """A missing device is reported and the bot goes receive-only for it."""
        from tuichat.media import open_audio_source, open_ready, open_video_source, video_source_name

        try:
            if kind == "camera":
                track = await open_ready(lambda: open_video_source(spec, label=self.options.name),
                                         what=video_source_name(spec))
            else:
                track = await open_ready(lambda: open_audio_source(spec), what=f"microphone {spec}")
        except DeviceUnavailable as exc:
            self.emit({"event": "DEVICE", "kind": kind, "status": "UNAVAILABLE", "reason": str(exc)})
            return None
        if track is not None:
            self._tracks.append(track)
        return track

    async def _start_call(self, room: Room) -> None:
        from tuichat.media import open_speaker

        video = await self._open_device("camera", self.options.camera)
        audio = await self._open_device("mic", self.options.mic)
        self._audio_sink = open_speaker(self.options.speaker)
        call = self.call = Call(room, video=video, audio=audio, audio_sink=self._audio_sink,
                                view=self.options.view, ice_servers=self.options.ice_servers)
        call.on(CallEvent.PUBLISH_STATUS, self._on_publish)
        call.on(CallEvent.PLAY_STATUS, self._on_play)
        call.on(CallEvent.RESIZED, self._on_play)
        call.on(CallEvent.SOURCE_ENDED, self._on_source_ended)
        try:
            await call.start()
        except (TuichatError, TimeoutError) as exc:
            self.emit({"event": "CALL", "status": "FAILED", "reason": str(exc)})
        except Exception:  # logged by the call; its reason says "internal error (…; see the log)"
            self.emit({"event": "CALL", "status": "FAILED", "reason": call.reason})

    def _on_source_ended(self, update: CallUpdate) -> None:
        """A device that stopped mid-call, reported as one that could not be opened is."""
        kind = "camera" if update.kind == "video" else "mic"
        self.emit({"event": "DEVICE", "kind": kind, "status": "ENDED", "reason": update.reason})

    async def _stop_call(self) -> None:
        if self.call is not None:
            await self.call.close()
        if self._audio_sink is not None:
            await self._audio_sink.stop()
        if self._tracks:
            from tuichat.media import release

            await release(self._tracks)

    def _on_publish(self, update: CallUpdate) -> None:
        published = update.published
        if published is None:
            return
        data: dict[str, Any] = {"event": "PUBLISH", "status": published.status.value,
                                "audio": published.audio, "video": published.video}
        if published.reason:
            data["reason"] = published.reason
        self.emit(data)

    def _on_play(self, update: CallUpdate) -> None:
        stream = update.stream
        if stream is None:
            return
        status = "RESIZED" if update.event is CallEvent.RESIZED else stream.status.value
        data: dict[str, Any] = {"event": "PLAY", "participant": stream.name, "participant_id": stream.participant_id,
                                "status": status}
        if stream.size is not None and stream.status is PlayStatus.PLAYING:
            data.update(width=stream.size[0], height=stream.size[1])
        if stream.reason and status in ("STOPPED", "FAILED"):
            data["reason"] = stream.reason
        self.emit(data)

    async def _join(self) -> Room:
        room = await self.session.join(self.options.room)
        # STATE arrived before join() returned; report it from the room's current view.
        self.emit(update_json(RoomUpdate(RoomEvent.STATE, participants=tuple(room.participants.values()),
                                         history=tuple(room.history))))
        for event in RoomEvent:
            room.on(event, self._on_update)
        return room

    def _on_update(self, update: RoomUpdate) -> None:
        self.emit(update_json(update))
        message = update.message
        if update.event is RoomEvent.FAILED:
            self.failure = update.reason
            self._stop.set()
        if self.options.echo and message is not None and not message.sender.is_self:
            to = message.sender if message.private else None
            self._replies.spawn(self._send(f"{message.sender.name} said: {message.text}", to=to), "echo")

    async def _say(self, line: str) -> None:
        """A line as the terminal client reads it: ``/msg NAME TEXT`` goes to NAME alone, ``/quit`` stops
        the bot; any other line starting with '/' is not sent but reported, so a script sees why."""
        parsed = parse_line(line)
        if parsed.kind is LineKind.TEXT:
            await self._send(parsed.text, patient=True)
        elif parsed.kind is LineKind.QUIT:
            self.stop()
        elif parsed.kind is LineKind.PRIVATE:
            to = self.room.participant_named(parsed.name) if self.room is not None else None
            if to is None:
                self.emit({"event": "ERROR", "text": line[:80],
                           "reason": f"nobody called {parsed.name!r} is in the room"})
                return
            await self._send(parsed.text, to=to, patient=True)
        elif parsed.kind is LineKind.HELP:  # the terminal client's help screen: here, the commands
            self.emit({"event": "ERROR", "text": line[:80], "reason": f"not sent: {BOT_COMMANDS}"})
        else:
            reason = parsed.problem if parsed.problem == PRIVATE_USAGE else f"{parsed.problem}; {BOT_COMMANDS}"
            self.emit({"event": "ERROR", "text": line[:80], "reason": reason})

    async def _send(self, text: str, to: Participant | None = None, *, patient: bool = False) -> None:
        """Send one chat message; ``patient``: when the server says slow down, wait and send it again
        (stdin is read no faster than it is sent, so a flood piped in loses nothing)."""
        if self.room is None:
            return
        delay = RATE_LIMITED_WAIT_S
        while True:
            try:
                await self.room.send_message(text, to=to)
                return
            except (CommandFailed, ConnectionFailed) as exc:
                if not (patient and isinstance(exc, CommandFailed) and exc.code == ErrorCode.RATE_LIMITED.value):
                    self.emit({"event": "ERROR", "text": text[:80], "reason": str(exc)})
                    return
            await asyncio.sleep(delay)
            delay = min(2 * delay, RATE_LIMITED_MAX_WAIT_S)

    async def _pump_stdin(self) -> None:
        """Read stdin in a thread (works for ttys, pipes and files alike) and chat each line.

        The thread never waits on the loop: it takes one of ``STDIN_READ_AHEAD`` slots per line and
        hands the line over with ``call_soon_threadsafe``. Once the pump is done (``/quit``, a signal)
        it stops at its next line. It used to wait on a queue put that nobody took after ``/quit``,
        which the closing loop cancelled: a traceback at exit.
        """
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        slots = threading.Semaphore(STDIN_READ_AHEAD)
        done = threading.Event()

        def hand_over(line: str | None) -> bool:
            slots.acquire()
            if done.is_set():
                return False
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the loop has closed meanwhile
                return False
            return True

        def reader() -> None:
            for line in sys.stdin:
                if not hand_over(line.rstrip("\r\n")):  # CRLF too: '\r' is no part of the text
                    return
            hand_over(None)

        threading.Thread(target=reader, name="bot-stdin", daemon=True).start()
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                get = asyncio.ensure_future(lines.get())
                done_now, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done_now:
                    get.cancel()
                    return
                line = get.result()
                slots.release()
                if line is None or self._stop.is_set():  # EOF, or stopped while this line waited
                    return
                if line.strip():
                    await self._say(line)
        finally:
            done.set()
            slots.release()  # a reader waiting for a slot wakes, sees done and ends
            stop.cancel()


def run_bot(options: BotOptions) -> int:
    """Run a bot until EOF on stdin (or a signal); 0 on a clean exit, 1 when it could not join."""

    async def main() -> int:
        bot = Bot(options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, bot.stop)
        return await bot.run()

    return asyncio.run(main())
