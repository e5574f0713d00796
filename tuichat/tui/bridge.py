"""The call's client side on its own thread, reporting to the UI through Textual messages.

Messages go up (the bridge posts snapshots of session and room state, `tuichat.tui.snapshots`),
commands go down (the app awaits ``bridge.run(...)``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from textual.message import Message as TextualMessage
from textual.message_pump import MessagePump

from tuichat.client import Room, RoomEvent, RoomUpdate, Session, SessionOptions, SessionStatus
from tuichat.client.call import Call, CallEvent, CallStatus, CallUpdate
from tuichat.client.loop_thread import LoopThread
from tuichat.errors import CommandFailed, ConnectionFailed, DeviceUnavailable
from tuichat.protocol import ErrorCode
from tuichat.protocol.limits import PREVIEW_MAX_FPS
from tuichat.tasks import log_unexpected_failure
from tuichat.tui.snapshots import MessageView, ParticipantView, PublishView, StreamFrames, StreamView

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

log = logging.getLogger(__name__)
T = TypeVar("T")


#: The frame rate asked for and drawn outside the preview.
DEFAULT_FPS = 15


@dataclass(frozen=True)
class MediaOptions:
    """Which devices to open and how to reach peers; ``tuichat connect`` flags map onto this."""

    camera: str = "0"
    mic: str = "default"
    speaker: str = "default"
    preview: bool = False
    fps: int = DEFAULT_FPS
    ice_servers: tuple[Any, ...] = ()


#: Preview mode: the subscribed picture is this fraction of the tile, at this frame rate, and no
#: larger than `PREVIEW_BOX` pixels: the picture the video widget draws in preview
#: (`PREVIEW_MAX_CELLS`, a cell is 1×2 pixels), so frames are drawn 1:1 and a 4:3 or 16:9 camera
#: gives the same frame size whatever box the tile had (no redraw from a rounding difference).
PREVIEW_SCALE = 0.5
PREVIEW_FPS = PREVIEW_MAX_FPS
PREVIEW_BOX = (64, 36)
#: A participant who is not shown (another one is focused) is fetched this small and slow.
HIDDEN_VIEW = (64, 48, 2)
#: After the server refused views for the command rate: about what refills room for a request.
RATE_LIMITED_WAIT_S = 0.5


class DeviceNotice(TextualMessage):
    """A device could not be used; ``reason`` is one sentence naming it."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__()
        self.kind = kind
        self.reason = reason


class CallChanged(TextualMessage):
    """The call's state after a change (or a periodic stats refresh)."""

    def __init__(self, status: CallStatus, reason: str, published: PublishView | None,
                 streams: tuple[StreamView, ...], event: CallEvent | None = None) -> None:
        super().__init__()
        self.status = status
        self.reason = reason
        self.published = published
        self.streams = streams
        self.event = event


class SessionChanged(TextualMessage):
    """The session's status; ``retry_in``: the connection is tried again in so many seconds."""

    def __init__(self, status: SessionStatus, reason: str, retry_in: float | None = None) -> None:
        super().__init__()
        self.status = status
        self.reason = reason
        self.retry_in = retry_in


class RoomChanged(TextualMessage):
    """A room event, with the participant list as it stands after it."""

    def __init__(self, event: RoomEvent, participants: tuple[ParticipantView, ...], *,
                 participant: ParticipantView | None = None, message: MessageView | None = None,
                 history: tuple[MessageView, ...] = (), reason: str = "", public_url: str | None = None,
                 code: str = "") -> None:
        super().__init__()
        self.event = event
        #: For FAILED: the server's error code (``name_taken``, ``room_full``...), to say what to do next.
        self.code = code
        self.public_url = public_url
        self.participants = participants
        self.participant = participant
        self.message = message
        self.history = history
        self.reason = reason


class CallBridge:
    """Owns the Session on a LoopThread; keeps trying to connect until it joins or is stopped."""

    def __init__(self, target: MessagePump, url: str, user: str, room: str,
                 options: SessionOptions | None = None, media: MediaOptions | None = None) -> None:
        self.target = target
        self.media = media
        self.call: Call | None = None
        self.self_view: Any = None
        self.has_camera = False
        self.has_mic = False
        #: The camera and microphone were looked for (the call starts once the room is joined):
        #: until then ``has_camera``/``has_mic`` say nothing.
        self.devices_known = False
        #: Mic / camera switched off before the call started: it starts so.
        self.start_muted = {"audio": False, "video": False}
        self._audio_sink: Any = None
        #: Cameras and microphones opened for the call, stopped on quit whatever the call's state.
        self._opened_tracks: list[MediaStreamTrack] = []
        #: The latest view the UI asked for; kept so a call that starts later uses it.
        self._view_request: tuple[int, int, bool, str | None, tuple[str, ...]] | None = None
        #: A ``set_view`` is sending views; later requests only replace ``_view_request``.
        self._sending_views = False
        self._stats: asyncio.Task[None] | None = None
        self.url = url
        self.user = user
        self.room_name = room
        self.thread = LoopThread()
        self.session = Session(url, user, options)
        self.room: Room | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopped = False
        self._leave: concurrent.futures.Future[None] | None = None
        self._leave_lock = threading.Lock()

    # --- UI side ------------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()
        self.thread.submit(self._start())

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await, from the UI loop, a coroutine run on the client thread."""
        return await self.thread.run(coroutine)

    async def send_message(self, text: str, to_name: str | None = None) -> None:
        await self.run(self._send(text, to_name))

    def _leaving(self) -> concurrent.futures.Future[None]:
        """The one leave of the room, on the client thread, whoever asked first."""
        with self._leave_lock:
            self._stopped = True
            if self._leave is None:
                self._leave = self.thread.submit(self._shutdown())
            return self._leave

    def stop_now(self, timeout: float = 5.0) -> None:
        """``stop`` from any thread, without the UI's loop (which may be stuck writing to a terminal
        that is gone): leave the room cleanly on the client thread and stop it. A leave already under
        way (``stop``, or another thread) is waited for: the caller ends the process next, and ended
        it mid-goodbye when a terminal went (SIGHUP and the terminal watch both), so the room saw
        "connection lost" (QA)."""
        try:
            self._leaving().result(timeout)
        except Exception as exc:
            log.warning("leaving the room failed: %s", exc or type(exc).__name__)
        self.thread.stop()

    async def stop(self) -> None:
        """Leave the room cleanly and stop the thread (idempotent; a leave under way is waited for)."""
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._leaving()), 5.0)
        except (TimeoutError, RuntimeError, ConnectionFailed):
            log.warning("leaving the room took too long; closing anyway")
        self.thread.stop()

    # --- client thread side ---------------------------------------------------------------------

    def _post(self, message: TextualMessage) -> None:
        # Once stopping, the UI is being torn down: its widgets may be gone.
        if not self._stopped:
            self.target.post_message(message)

    async def _start(self) -> None:
        for status in SessionStatus:
            self.session.on(status, self._on_session_status)
        self._main = asyncio.create_task(self._connect_and_join(), name="connect and join")
        self._main.add_done_callback(log_unexpected_failure)

    def _on_session_status(self, session: Session) -> None:
        self._post(SessionChanged(session.status, session.reason, retry_in=session.retry_in))

    async def _connect_and_join(self) -> None:
        try:
            # Until it works: the first connection is retried like a lost one, DISCONNECTED with the
            # reason and a countdown meanwhile (FAILED would read as given up beside "retrying in 4 s").
            await self.session.connect(retry=True)
        except ConnectionFailed:
            return  # permanent: the session is FAILED with the reason, which the UI has been told
        try:
            room = await self.session.join(self.room_name)
        except CommandFailed as exc:
            self._post(RoomChanged(RoomEvent.FAILED, (), reason=exc.reason, code=exc.code))
            return
        except ConnectionFailed as exc:
            self._post(RoomChanged(RoomEvent.FAILED, (), reason=str(exc)))
            return
        self.room = room
        for event in RoomEvent:
            room.on(event, self._on_room_update)
        self._on_room_update(RoomUpdate(RoomEvent.STATE, participants=tuple(room.participants.values()),
                                        history=tuple(room.history)))
        if self.media is not None:
            await self._start_call(room, self.media)

    # --- media -------------------------------------------------------------------------------------

    async def _open(self, kind: str, spec: str, opener: Callable[[], Any]) -> Any:
        """A missing device becomes a notice and None: the call goes on without it."""
        from tuichat.media import open_ready, video_source_name

        what = video_source_name(spec) if kind == "camera" else f"{kind} {spec}"
        try:
            return await open_ready(opener, what=what)
        except DeviceUnavailable as exc:
            self._post(DeviceNotice(kind, str(exc)))
        except Exception as exc:  # a driver failing in an unexpected way must not take the call down
            log.exception("opening the %s failed", kind)
            self._post(DeviceNotice(kind, f"the {kind} failed: {exc}"))
        return None

    async def _start_call(self, room: Room, media: MediaOptions) -> None:
        from tuichat.media import AudioDrain, FrameTap, open_audio_source, open_speaker, open_video_source

        video = await self._open("camera", media.camera, lambda: open_video_source(media.camera, label=self.user))
        if video is not None:
            self._opened_tracks.append(video)  # stopped on quit, even before the call has it
        audio = await self._open("microphone", media.mic, lambda: open_audio_source(media.mic))
        if audio is not None:
            self._opened_tracks.append(audio)
        sink = await self._open("speaker", media.speaker, lambda: open_speaker(media.speaker))
        if sink is None:
            sink = AudioDrain()
            sink.start()
        self._audio_sink = sink
        self.has_camera, self.has_mic = video is not None, audio is not None
        self.devices_known = True
        self.self_view = FrameTap(video) if video is not None else None
        request = self._view_request or (320, 180, media.preview, None, ())
        width, height, fps = self.default_view(request[0], request[1], request[2])
        self.call = Call(room, video=self.self_view, audio=audio, audio_sink=sink, view=(width, height, fps),
                         ice_servers=media.ice_servers, preview=request[2])
        for event in CallEvent:
            self.call.on(event, self._on_call_update)
        if self.start_muted["audio"] and audio is not None:
            await self.call.mute_audio(True)
        if self.start_muted["video"] and video is not None:
            await self.call.mute_video(True)
        self._stats = asyncio.create_task(self._stats_loop())
        try:
            await self.call.start()
        except Exception as exc:  # the call is FAILED with its reason; the room and chat go on
            log.warning("the call could not start: %s", exc)
            self._post_call(None)
            return
        if self._view_request is not None:  # the UI may have changed its mind while we connected
            await self.set_view(*self._view_request)

    def default_view(self, width: int, height: int, preview: bool) -> tuple[int, int, int]:
        fps = self.media.fps if self.media else DEFAULT_FPS
        if preview:
            return (max(16, min(int(width * PREVIEW_SCALE), PREVIEW_BOX[0])),
                    max(16, min(int(height * PREVIEW_SCALE), PREVIEW_BOX[1])), PREVIEW_FPS)
        return width, height, fps

    def _on_call_update(self, update: CallUpdate) -> None:
        if update.event is CallEvent.SOURCE_ENDED:
            # Before the call's state: the app reads these when it redraws the status line.
            if update.kind == "video":
                self.has_camera, self.self_view = False, None
            else:
                self.has_mic = False
            self._post(DeviceNotice("camera" if update.kind == "video" else "microphone", update.reason))
        self._post_call(update.event)

    def _post_call(self, event: CallEvent | None) -> None:
        call = self.call
        if call is None:
            return
        published = call.published
        publish = PublishView(published.status, published.reason, published.audio, published.video,
                              published.audio_muted, published.video_muted, published.size, published.uplink_limited)
        streams = tuple(
            StreamView(s.participant_id, s.name, s.status, s.size, s.fps, s.kbps, s.reason, StreamFrames(s))
            for s in call.streams.values()
        )
        self._post(CallChanged(call.status, call.reason, publish, streams, event))

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._post_call(None)

    async def set_view(self, width: int, height: int, preview: bool, focused: str | None,
                       hidden: tuple[str, ...]) -> None:
        """Subscribe every shown participant at the tile's pixel size; hidden ones small and slow.

        A request is a few commands (one per target); requests made while they are being sent
        (a burst of F4 presses, a terminal being dragged) are merged, and only the latest is sent
        next. A burst once outran the server's command rate limit, which refused the requests that
        mattered: the last ones. A refusal for the rate is waited out and the latest request sent.
        """
        self._view_request = (width, height, preview, focused, hidden)
        if self.call is None or self._sending_views:
            return  # the call sends it when it starts; a running set_view sends it next
        self._sending_views = True
        try:
            sent = None
            while (request := self._view_request) != sent:
                sent = request
                try:
                    await self._send_views(*request)
                except ConnectionFailed as exc:
                    # The call keeps what it was asked and sends it when it reconnects: the newest
                    # request must reach it too, not only the one under way when the link went.
                    log.info("views not sent now (%s); they go with the reconnection", exc)
                    continue
                except CommandFailed as exc:
                    if exc.code != ErrorCode.RATE_LIMITED:
                        log.info("a view was refused: %s", exc)  # a newer request is still sent
                        continue
                    log.info("views refused for the command rate; sending the latest again in %.1f s",
                             RATE_LIMITED_WAIT_S)
                    await asyncio.sleep(RATE_LIMITED_WAIT_S)
                    sent = None
        finally:
            self._sending_views = False

    async def _send_views(self, width: int, height: int, preview: bool, focused: str | None,
                          hidden: tuple[str, ...]) -> None:
        call = self.call
        if call is None:
            return
        # Preview: the server also caps size, rate and bit rate (video and Opus) for this subscriber.
        view = self.default_view(width, height, preview)
        await call.set_view(*view, preview=preview)
        # A participant's own view outlives the focus that asked for it (the protocol cannot drop
        # one): those back in the grid are given the grid's view, now and at every later change.
        present = self.room.participants if self.room is not None else {}
        for participant in sorted(call.participant_views - set(hidden) - {focused}):
            if participant in present:
                await call.set_view(*view, participant=participant, preview=preview)
        for participant in hidden:
            await call.set_view(*HIDDEN_VIEW, participant=participant, preview=preview)
        if focused is not None:
            await call.set_view(*view, participant=focused, preview=preview)

    async def toggle_mic(self) -> bool | None:
        """Mute or unmute; returns the new muted state, or None when there is no microphone.

        Before the call starts (the room not joined yet) it sets how the call will start."""
        return await self._toggle("audio")

    async def toggle_camera(self) -> bool | None:
        """Camera off or on, as ``toggle_mic``."""
        return await self._toggle("video")

    async def _toggle(self, kind: str) -> bool | None:
        if self.call is None:
            self.start_muted[kind] = not self.start_muted[kind]
            return self.start_muted[kind]
        if not (self.has_mic if kind == "audio" else self.has_camera):
            return None
        if kind == "audio":
            muted = not self.call.published.audio_muted
            await self.call.mute_audio(muted)
        else:
            muted = not self.call.published.video_muted
            await self.call.mute_video(muted)
        return muted

    def _snapshot(self) -> tuple[ParticipantView, ...]:
        if self.room is None:
            return ()
        return tuple(ParticipantView.of(p) for p in self.room.participants.values())

    def _on_room_update(self, update: RoomUpdate) -> None:
        self._post(RoomChanged(
            update.event, self._snapshot(),
            participant=ParticipantView.of(update.participant) if update.participant else None,
            message=MessageView.of(update.message) if update.message else None,
            history=tuple(MessageView.of(m) for m in update.history),
            reason=update.reason or (update.failure.reason if update.failure else ""),
            code=update.failure.code if update.failure else "",
            public_url=self.room.public_url if self.room is not None and update.event is RoomEvent.STATE else None,
        ))

    async def _send(self, text: str, to_name: str | None) -> None:
        if self.room is None or not self.room.joined:
            raise ConnectionFailed("not in the room yet")
        recipient = None
        if to_name is not None:
            recipient = self.room.participant_named(to_name)
            if recipient is None:
                raise CommandFailed(ErrorCode.UNKNOWN_PARTICIPANT, f"nobody called {to_name!r} is in the room")
        await self.room.send_message(text, to=recipient)

    async def _shutdown(self) -> None:
        if self._main is not None:
            self._main.cancel()
            # Done before the devices are stopped: a device it opened meanwhile is then in the list.
            await asyncio.gather(self._main, return_exceptions=True)
        if self._stats is not None:
            self._stats.cancel()
        if self.call is not None:
            await self.call.close()
        if self._audio_sink is not None:
            await self._audio_sink.stop()
        if self.self_view is not None:
            self.self_view.stop()
        for track in self._opened_tracks:  # idempotent: the call stopped those it had
            track.stop()
        await self.session.disconnect()
        if self._opened_tracks:  # the room has seen us leave: now let the devices go
            from tuichat.media import release

            await release(self._opened_tracks)


