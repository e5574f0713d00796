"""A call: one RTCPeerConnection to the room server, signalled over the room's WebSocket.

The offer has fixed transceivers (see ``tuichat.server.media``): our sendonly video and audio, then
``room.media_slots`` pairs of recvonly video + audio. Nothing is ever renegotiated: the camera and
microphone are switched with ``sender.replaceTrack``, and the server tells us with ``streams``
which participant is on which receive slot. When the session rejoins after a drop (the room emits
STATE again) the call makes a new peer connection by itself, and forgets streams and views of ids
the new STATE does not have. Peer connections only borrow the camera and microphone (aiortc ends a
sender's track with the sender), so both live through every reconnection; ``close`` ends them. No
UI here, and nothing blocks the loop: opening devices is the caller's job.

Receive slots' video receivers release a frame on its last packet (``tuichat.rtc.jitter``), which
takes one frame interval off the latency. Our own senders encode within ``PUBLISH_VIDEO`` and
``PUBLISH_AUDIO_BPS``: the server re-encodes for each viewer, so more would only fill the uplink.
``set_view``/``set_preview`` ask the server for a picture size, frame rate and normal or
low-bandwidth preview mode, per participant or for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy

from tuichat.client.events import Callback, Emitter, RoomEvent, RoomUpdate, SessionStatus
from tuichat.client.room import Room
from tuichat.client.stream import PlayedStream, PlayStatus, PublishedStream, PublishStatus, StreamEvent
from tuichat.errors import CommandFailed, ConnectionFailed, TuichatError
from tuichat.media import AudioSink, LatestFrameSink
from tuichat.protocol.messages import Answer, ErrorCode, Offer, Streams, View
from tuichat.protocol.names import name_key
from tuichat.rtc.encoders import (
    PUBLISH_LADDER,
    AudioBudget,
    TunableOpusEncoder,
    UplinkVp8Encoder,
    VideoBudget,
    install_encoder,
    sender_codec,
)
from tuichat.rtc.ice import ice_server_list
from tuichat.rtc.jitter import use_marker_release
from tuichat.rtc.rtcp import send_reports_only_when_sending
from tuichat.tasks import BackgroundTasks, log_unexpected_failure

__all__ = ["REJOIN_RESTART_REASON", "Call", "CallEvent", "CallStatus", "CallUpdate"]

log = logging.getLogger(__name__)

#: Offer sent → peer connection connected.
CONNECT_TIMEOUT_S = 10.0
#: How often the received bit rate is computed.
STATS_INTERVAL_S = 1.0
#: Pause before making a new peer connection after one failed.
RESTART_DELAY_S = 1.0
#: What we publish. The server decodes it and re-encodes for each viewer at no more than 250 kbps of
#: video and 32 kbps of Opus, so a source about twice as good is all that helps; aiortc's stock
#: encoders climb to 1.5 Mbps of VP8 and send 96 kbps of Opus, which only fills the uplink. On a
#: thin uplink the size and the Opus rate step down ``PUBLISH_LADDER`` (``UplinkVp8Encoder``), and
#: the VP8 target follows the uplink estimate down to ``min_bps``.
PUBLISH_VIDEO = VideoBudget(fps=15.0, bits_per_pixel=0.1, min_bps=16_000, max_bps=500_000)
PUBLISH_AUDIO_BPS = PUBLISH_LADDER[0].audio_bps
#: Why the call restarts after the session rejoined the room (the UI has said that already).
REJOIN_RESTART_REASON = "rejoined after a drop"
#: A media restart the server refused as too fast ("slow down") is tried again, waiting this long and
#: doubling, this many times in all.
RESTART_RATE_LIMITED_WAIT_S = 0.5
RESTART_ATTEMPTS = 5


class CallStatus(enum.Enum):
    NEW = "NEW"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    RECONNECTING = "RECONNECTING"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class CallEvent(enum.Enum):
    STATUS = "STATUS"
    STREAM_ADDED = "STREAM_ADDED"
    STREAM_REMOVED = "STREAM_REMOVED"
    PLAY_STATUS = "PLAY_STATUS"
    RESIZED = "RESIZED"
    PUBLISH_STATUS = "PUBLISH_STATUS"
    #: Our camera or microphone ended by itself (unplugged, a file that failed): ``kind`` says which;
    #: the call goes on without it.
    SOURCE_ENDED = "SOURCE_ENDED"


@dataclass(frozen=True)
class CallUpdate:
    """One call event: the call's status, a played stream (added, removed, status, resized) or ours."""

    event: CallEvent
    status: CallStatus
    stream: PlayedStream | None = None
    published: PublishedStream | None = None
    reason: str = ""
    #: For SOURCE_ENDED: "video" or "audio".
    kind: str = ""


def _preview_field(on: bool) -> bool | msgspec.UnsetType:
    """``view``'s preview as sent: left out when off, so servers that predate the field accept it."""
    return True if on else msgspec.UNSET


class _ByteCounter:
    """Counts RTP payload bytes of one receiver. aiortc's inbound-rtp stats have packetsReceived but
    no bytesReceived (1.16), so the receiver's packet handler is wrapped; one addition per packet."""

    def __init__(self, receiver: Any) -> None:
        self.bytes = 0
        original = getattr(receiver, "_handle_rtp_packet", None)
        if original is None:
            return

        async def counting(packet: Any, arrival_time_ms: int) -> None:
            self.bytes += len(packet.payload)
            await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = counting


class _Lent(MediaStreamTrack):
    """What a sender gets instead of the caller's track: aiortc stops the track it sends whenever the
    sender's loop ends (``RTCRtpSender._run_rtp``: the peer connection closed, or the server went away
    and DTLS with it), and a call outlives its peer connections. Ending this ends only the loan; the
    camera or microphone stays live for the next peer connection. One loan per sender and track."""

    def __init__(self, source: MediaStreamTrack, on_source_ended: Callable[[MediaStreamTrack], None]) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self._on_source_ended = on_source_ended

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            return await self.source.recv()
        except MediaStreamError:
            if self.readyState == "live":  # the source ended, not the loan: the device is gone
                self._on_source_ended(self.source)
            raise


def _internal_error(exc: Exception) -> str:
    """A bug here or in aiortc, for the status line: what it was, and where the traceback is."""
    return f"internal error ({type(exc).__name__}; see the log)"


def _live(track: MediaStreamTrack | None) -> bool:
    return track is not None and track.readyState == "live"


class _Slot:
    """One receive slot of one peer connection: its tracks, a frame sink and who is shown on it."""

    def __init__(self, index: int, video: RTCRtpTransceiver, audio: RTCRtpTransceiver) -> None:
        self.index = index
        self.video = video
        self.audio = audio
        self.stream: PlayedStream | None = None
        self.counter = _ByteCounter(video.receiver)
        self.audio_counter = _ByteCounter(audio.receiver)
        self.sink = LatestFrameSink(video.receiver.track, on_frame=self._on_frame)
        self._last_bytes = 0
        self._last_audio_bytes = 0
        self._last_time = time.monotonic()

    def _on_frame(self, rgb: Any) -> None:
        if self.stream is not None:
            self.stream._on_frame(rgb)

    def update_kbps(self, now: float) -> None:
        delta, span = self.counter.bytes - self._last_bytes, now - self._last_time
        audio_delta = self.audio_counter.bytes - self._last_audio_bytes
        self._last_bytes, self._last_time = self.counter.bytes, now
        self._last_audio_bytes = self.audio_counter.bytes
        if self.stream is not None and self.stream.status is PlayStatus.PLAYING and span > 0:
            self.stream.kbps = delta * 8 / 1000 / span
            self.stream.audio_kbps = audio_delta * 8 / 1000 / span


class Call:
    """Publish ``video``/``audio`` to the room and play everyone else's. See the module docstring.

    ``audio_sink`` receives every remote audio track (a ``Speaker``, or an ``AudioDrain``); it is
    the caller's to start and stop. ``view`` is (width, height, fps): the pixel box wanted for
    every remote participant until ``set_view`` changes it; ``preview`` asks for low-bandwidth
    preview of everyone (see ``set_preview``).
    """

    def __init__(
        self,
        room: Room,
        *,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        audio_sink: AudioSink,
        view: tuple[int, int, int] = (320, 180, 15),
        preview: bool = False,
        ice_servers: Iterable[RTCIceServer | str] = (),
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.room = room
        self.video = video
        self.audio = audio
        self.audio_sink = audio_sink
        self.view = view
        #: Low-bandwidth preview for everyone without their own view (``set_preview``).
        self.preview = preview
        self.ice_servers = ice_server_list(ice_servers)
        self.connect_timeout = connect_timeout
        self.status = CallStatus.NEW
        self.reason = ""
        self.published = PublishedStream()
        #: Remote participant id → what we play of them.
        self.streams: dict[str, PlayedStream] = {}
        self.pc: RTCPeerConnection | None = None
        self._participant_views: dict[str, tuple[int, int, int]] = {}
        self._participant_preview: dict[str, bool] = {}
        #: What the server has of our views on this connection (None: the default), to send only changes.
        self._views_sent: dict[str | None, tuple[int, int, int, bool]] = {}
        #: Whose id each per-participant view was set for (their name), to tell them apart after a rejoin.
        self._view_names: dict[str, str] = {}
        self._slots: list[_Slot] = []
        self._sender_video: RTCRtpTransceiver | None = None
        self._uplink_encoder: UplinkVp8Encoder | None = None
        self._sender_audio: RTCRtpTransceiver | None = None
        self._answer: asyncio.Future[str] | None = None
        self._assignment: Streams | None = None
        self._connected = asyncio.Event()
        self._emitter: Emitter[CallEvent] = Emitter()
        self._lock = asyncio.Lock()
        self._tasks = BackgroundTasks()
        self._unsubscribe: list[Callable[[], None]] = []
        self._stats_task: asyncio.Task[None] | None = None
        self._closed = False
        #: close() started by the room being left (see ``_on_room_left``).
        self._closing: asyncio.Task[None] | None = None
        self.published_once = False
        for status in PublishStatus:
            self.published.on(status, self._on_publish_status)

    def __repr__(self) -> str:
        return f"<Call {self.room.name} {self.status.name} {len(self.streams)} streams>"

    def on(self, event: CallEvent, callback: Callback) -> Callable[[], None]:
        """Call ``callback(update: CallUpdate)`` on ``event``; returns an unsubscribe function."""
        return self._emitter.on(event, callback)

    # --- public API --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and publish; raises ConnectionFailed/CommandFailed (and goes FAILED) if that fails."""
        if self.status is not CallStatus.NEW:
            return
        self._unsubscribe += [
            self.room.on_signal(self._on_signal),
            self.room.on(RoomEvent.STATE, self._on_state),
            self.room.on(RoomEvent.LEFT, self._on_left),
            self.room.on(RoomEvent.FAILED, self._on_room_failed),
            self.room._on_leave(self._on_room_left),
            self.room.session.on(SessionStatus.PENDING, self._on_session_away),
            self.room.session.on(SessionStatus.DISCONNECTED, self._on_session_away),
        ]
        self._stats_task = asyncio.get_running_loop().create_task(self._stats_loop(), name="call stats")
        async with self._lock:
            try:
                await self._connect()
            except (TuichatError, TimeoutError) as exc:
                await self._drop_pc()
                self._fail(str(exc) or "could not connect the call")
                raise
            except Exception as exc:  # a bug here or in aiortc: FAILED says so, the log has the traceback
                if self._closed:  # close() came meanwhile and dropped what this was using
                    raise ConnectionFailed("the call was closed while connecting") from exc
                log.exception("the call could not start")
                await self._drop_pc()
                self._fail(f"could not connect the call: {_internal_error(exc)}")
                raise

    async def set_view(self, width: int, height: int, fps: int, participant: str | None = None, *,
                       preview: bool | None = None) -> None:
        """Ask the server for pictures fitting ``width``×``height`` at ``fps`` (for one participant or all).

        ``preview``: True for low-bandwidth preview (the server sends at most 160×90 at 5 fps, video
        and audio under 64 kbps together), False for normal mode, None (default) to keep the mode
        this target (``participant``, or everyone) already has."""
        if participant is None:
            self.view = (width, height, fps)
            if preview is not None:
                self.preview = preview
            on = self.preview
        else:
            self._participant_views[participant] = (width, height, fps)
            person = self.room.participants.get(participant)
            self._view_names[participant] = person.name if person is not None else ""
            if preview is not None:
                self._participant_preview[participant] = preview
            on = self._participant_preview.get(participant, self.preview)
            self._participant_preview[participant] = on
        if self.status is CallStatus.CONNECTED:
            await self._send_view(participant, (width, height, fps), on)

    async def _send_view(self, participant: str | None, view: tuple[int, int, int], preview: bool) -> None:
        """Send a view unless the server has it already (on this connection): views are rate limited."""
        if self._views_sent.get(participant) == (*view, preview):
            return
        try:
            await self.room.session.command(View(id=0, width=view[0], height=view[1], fps=view[2],
                                                 participant=participant, preview=_preview_field(preview)))
        except CommandFailed as exc:
            # They left while the view was on its way (the LEFT may still be behind it): nothing to
            # show them in, and no reason to fail the call (review: a restart failed for good).
            if participant is None or exc.code != ErrorCode.UNKNOWN_PARTICIPANT:
                raise
            log.debug("view for %s dropped: they left", participant)
            self._forget_view(participant)
            return
        self._views_sent[participant] = (*view, preview)

    @property
    def participant_views(self) -> frozenset[str]:
        """The participants given a view of their own (``set_view(participant=...)``) still in force."""
        return frozenset(self._participant_views)

    async def set_preview(self, on: bool, participant: str | None = None) -> None:
        """Switch low-bandwidth preview on or off, keeping the view's box (for one participant or all).

        Takes effect within about a second, without renegotiating. For everyone (``participant``
        None) it covers participants without their own ``set_view``; those keep their own mode."""
        if participant is None:
            await self.set_view(*self.view, preview=on)
        else:
            await self.set_view(*self._participant_views.get(participant, self.view), participant=participant,
                                preview=on)

    async def set_camera(self, track: MediaStreamTrack | None) -> None:
        """Switch the camera (None: camera off) without renegotiating; the room sees it as video mute."""
        self.video = track
        if not self.published.video_muted:
            self._lend(self._sender_video, track)
        if track is not None and self.status is CallStatus.CONNECTED and not self.published.video:
            await self._publish()
        else:
            await self._send_mute(video=track is None or self.published.video_muted)

    async def mute_video(self, muted: bool) -> None:
        self.published.video_muted = muted
        self._lend(self._sender_video, None if muted else self.video)
        await self._send_mute(video=muted or self.video is None)

    async def mute_audio(self, muted: bool) -> None:
        self.published.audio_muted = muted
        self._lend(self._sender_audio, None if muted else self.audio)
        await self._send_mute(audio=muted or self.audio is None)

    async def close(self) -> None:
        """Unpublish if possible, close the peer connection, stop the frame sinks and end the camera and
        microphone tracks the call sends (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._connected.set()  # a start() waiting for the media connection stops waiting
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        stats = self._stats_task
        if stats is not None and stats is not asyncio.current_task():
            stats.cancel()
            await asyncio.gather(stats, return_exceptions=True)
        await self._tasks.close()
        if self.published.status is PublishStatus.PUBLISHING:
            if self.room.joined:  # else the server dropped it with the room
                with contextlib.suppress(TuichatError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await self.room.unpublish()
            self.published._set(PublishStatus.UNPUBLISHED, "the call was closed")
        for stream in self.streams.values():
            stream._set(PlayStatus.STOPPED, "the call was closed")
        await self._drop_pc()
        # The peer connections only ever had loans of these (``_Lent``): the call's end is theirs.
        for track in (self.video, self.audio):
            if track is not None:
                track.stop()
        self._set_status(CallStatus.CLOSED, "closed")

    async def __aenter__(self) -> Call:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connection ----------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self._set_status(CallStatus.CONNECTING if not self.published_once else CallStatus.RECONNECTING,
                         "connecting media")
        self._connected.clear()
        self._assignment = None
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.ice_servers),
                                                          bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        pc.on("connectionstatechange", lambda: self._on_connection_state(pc))
        self._sender_video = pc.addTransceiver("video", direction="sendonly")
        self._sender_audio = pc.addTransceiver("audio", direction="sendonly")
        for sender in (self._sender_video.sender, self._sender_audio.sender):
            send_reports_only_when_sending(sender)  # no camera or mic: nothing on the uplink
        # Lent, not given: the camera and microphone outlive this peer connection (see ``_Lent``).
        self._lend(self._sender_video, None if self.published.video_muted else self.video)
        self._lend(self._sender_audio, None if self.published.audio_muted else self.audio)
        pairs = [(pc.addTransceiver("video", direction="recvonly"), pc.addTransceiver("audio", direction="recvonly"))
                 for _ in range(self.room.media_slots)]
        for video, _audio in pairs:
            use_marker_release(video.receiver)
        await pc.setLocalDescription(await pc.createOffer())
        session = self.room.session
        # The server keeps our view per connection: (re)send it before the offer so slots start right.
        self._views_sent.clear()
        await self._send_view(None, self.view, self.preview)
        for pid, view in list(self._participant_views.items()):  # a LEFT meanwhile forgets views
            if pid in self._participant_views and self.room.participants.get(pid) is not None:
                await self._send_view(pid, view, self._participant_preview.get(pid, self.preview))
        await session.command(Offer(id=0, sdp=pc.localDescription.sdp))  # ANSWER arrives before the ack
        if not self._answer.done():
            raise CommandFailed(ErrorCode.MEDIA_FAILED, "the server acknowledged the offer without an answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=self._answer.result(), type="answer"))
        self._install_encoders()  # codecs are known now; the first frame is encoded after ICE + DTLS
        self._slots = [_Slot(k, video, audio) for k, (video, audio) in enumerate(pairs)]
        for slot in self._slots:
            slot.sink.start()
            self.audio_sink.add_track(slot.audio.receiver.track)
        if self._assignment is not None:
            self._apply(self._assignment)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._connected.wait()
        except TimeoutError:
            raise ConnectionFailed(f"the media connection did not come up within {self.connect_timeout:g} s "
                                   f"(state {pc.connectionState})") from None
        if self._closed:
            raise ConnectionFailed("the call was closed while connecting")
        if pc.connectionState != "connected":
            raise ConnectionFailed(f"the media connection {pc.connectionState}")
        self._set_status(CallStatus.CONNECTED, "media connected")
        await self._publish()

    def _lend(self, transceiver: RTCRtpTransceiver | None, track: MediaStreamTrack | None) -> None:
        """Send ``track`` (None: nothing) on ``transceiver`` without letting aiortc end it."""
        if transceiver is not None:
            transceiver.sender.replaceTrack(_Lent(track, self._source_ended) if track is not None else None)

    def _install_encoders(self) -> None:
        """Our senders encode within ``PUBLISH_VIDEO`` and at ``PUBLISH_AUDIO_BPS`` (other codecs: their own rate)."""
        assert self._sender_video is not None and self._sender_audio is not None
        audio = AudioBudget(PUBLISH_AUDIO_BPS)
        if sender_codec(self._sender_video) == "video/vp8":
            # The uplink estimate arrives on the video sender (REMB); the audio rate steps with it.
            self._uplink_encoder = UplinkVp8Encoder(PUBLISH_VIDEO, audio)
            install_encoder(self._sender_video.sender, self._uplink_encoder)
        if sender_codec(self._sender_audio) == "audio/opus":
            install_encoder(self._sender_audio.sender, TunableOpusEncoder(audio))

    async def _publish(self) -> None:
        # An ended track sends nothing: publishing it would leave everyone's tile pending forever.
        audio, video = _live(self.audio), _live(self.video)
        if not (audio or video):
            self.published._set(PublishStatus.UNPUBLISHED, "nothing to send")
            return
        try:
            # Mutes first: the server holds them for the publication, so the room never sees a muted
            # microphone as on (after a rejoin, PUBLISHED said "mic on" until the mute followed).
            if self.published.audio_muted or self.published.video_muted:
                await self.room.mute(audio=self.published.audio_muted, video=self.published.video_muted)
            await self.room.publish(audio=audio, video=video)
        except (TuichatError, TimeoutError) as exc:
            self.published._set(PublishStatus.FAILED, str(exc))
            raise
        changed = (self.published.audio, self.published.video) != (audio, video)
        self.published.audio, self.published.video = audio, video
        self.published_once = True
        self.published._set(PublishStatus.PUBLISHING, "", changed=changed)

    async def _send_mute(self, *, audio: bool | None = None, video: bool | None = None) -> None:
        """Tell the room; while the server is away the state is kept (``published``) and sent with the
        next publish, after the rejoin: muting must work (and never fail) whether or not it can be told."""
        if (self.status is CallStatus.CONNECTED and self.published.status is PublishStatus.PUBLISHING
                and self.room.session.status is SessionStatus.ESTABLISHED):
            try:
                await self.room.mute(audio=audio, video=video)
            except ConnectionFailed as exc:
                log.info("call: mute not sent now (%s); it goes with the next publish", exc)

    async def _drop_pc(self) -> None:
        pc, self.pc = self.pc, None
        slots, self._slots = self._slots, []
        for slot in slots:
            slot.stream = None
            with contextlib.suppress(Exception):
                self.audio_sink.remove_track(slot.audio.receiver.track)
            await slot.sink.stop()
        self._sender_video = self._sender_audio = None
        self._uplink_encoder = None
        if pc is not None:
            await pc.close()

    async def _restart(self, reason: str) -> None:
        """A new peer connection after a rejoin or a failure; played streams go STOPPED meanwhile."""
        async with self._lock:
            if self._closed:
                return
            log.info("call: restarting media (%s)", reason)
            self._set_status(CallStatus.RECONNECTING, reason)  # why, before "connecting media"
            for stream in self.streams.values():
                stream._set(PlayStatus.STOPPED, reason)
            if self.published.status is PublishStatus.PUBLISHING:
                self.published._set(PublishStatus.PENDING, reason)
            await self._drop_pc()
            for attempt in range(RESTART_ATTEMPTS):
                try:
                    await self._connect()
                    return
                except CommandFailed as exc:
                    await self._drop_pc()
                    if exc.code != ErrorCode.RATE_LIMITED or attempt + 1 == RESTART_ATTEMPTS:
                        self._fail(f"could not reconnect the call: {exc}")
                        return
                    log.info("call: restart refused (%s); trying again", exc.reason)
                    await asyncio.sleep(RESTART_RATE_LIMITED_WAIT_S * 2**attempt)  # "slow down": it will pass
                except (TuichatError, TimeoutError) as exc:
                    await self._drop_pc()
                    self._fail(f"could not reconnect the call: {exc}")
                    return
                except Exception as exc:  # as in start(): FAILED says so, not a call stuck reconnecting
                    log.exception("the call could not restart")
                    await self._drop_pc()
                    self._fail(f"could not reconnect the call: {_internal_error(exc)}")
                    return

    def _fail(self, reason: str) -> None:
        if self._closed:
            return  # CLOSED is the end: whatever failed on the way out was the closing's doing
        for stream in self.streams.values():
            stream._set(PlayStatus.FAILED, reason)
        if self.published.status in (PublishStatus.PENDING, PublishStatus.PUBLISHING):
            self.published._set(PublishStatus.FAILED, reason)
        self._set_status(CallStatus.FAILED, reason)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.spawn(coro, name)

    # --- events ------------------------------------------------------------------------------------

    def _source_ended(self, source: MediaStreamTrack) -> None:
        """Our camera or microphone ended by itself: aiortc's sender stops reading it for good, so
        the room must stop expecting it (viewers kept a frozen picture of a camera unplugged)."""
        if self._closed or source not in (self.video, self.audio):
            return  # our own doing: closing, or a camera switched away from
        kind = "video" if source is self.video else "audio"
        log.warning("call: our %s source ended; going on without it", kind)
        if kind == "video":
            self.video = None
        else:
            self.audio = None
        source.stop()  # release what is left of the device
        device = "camera" if kind == "video" else "microphone"
        reason = getattr(source, "ended_reason", None) or f"the {device} stopped sending"  # the source's own words
        self._emit(CallEvent.SOURCE_ENDED, published=self.published, kind=kind, reason=reason)
        self._spawn(self._republish(), f"republish without {kind}")

    async def _republish(self) -> None:
        """Tell the room what we still send after a source ended (nothing: unpublish)."""
        async with self._lock:
            if self._closed or self.published.status is not PublishStatus.PUBLISHING:
                return  # the next publish (after a restart) goes by what is live
            try:
                if _live(self.audio) or _live(self.video):
                    await self._publish()
                else:
                    await self.room.unpublish()
                    self.published.audio = self.published.video = False
                    self.published._set(PublishStatus.UNPUBLISHED, "nothing to send")
            except (TuichatError, TimeoutError) as exc:
                log.info("call: could not tell the room what we still send (%s); the next publish will", exc)

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self.pc:
            return
        state = pc.connectionState
        log.info("call: peer connection %s", state)
        if state in ("connected", "failed", "closed"):
            self._connected.set()
        # "closed" here is the server's doing (ours go through _drop_pc, which forgets the pc first):
        # it gave up on our media (an overloaded machine missed its keepalive), but we are still in
        # the room, so the call is set up again, as after a failure.
        if state in ("failed", "closed") and self.status is CallStatus.CONNECTED and not self._closed:
            self._spawn(self._restart_after_failure(pc), "call restart")

    async def _restart_after_failure(self, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(RESTART_DELAY_S)
        # Not if it was set up again meanwhile, nor while out of the room: the rejoin will (its
        # STATE restarts the call; a dropped WebSocket closes the peer connection too).
        if pc is self.pc and self.room.joined and self.room.session.status is SessionStatus.ESTABLISHED:
            await self._restart("the media connection failed")

    def _on_session_away(self, session: object) -> None:
        """The server is out of reach: nothing plays or is published until the rejoin restarts the call
        (the server drops our media with the connection). Saying PLAYING or PUBLISHING would be untrue."""
        if self.status is not CallStatus.CONNECTED or self._closed:
            return
        for stream in self.streams.values():
            stream._set(PlayStatus.STOPPED, "reconnecting")
        if self.published.status is PublishStatus.PUBLISHING:
            self.published._set(PublishStatus.PENDING, "reconnecting")

    def _on_state(self, update: RoomUpdate) -> None:
        # The first STATE came before the call existed: a later one means the session rejoined.
        if self.status is not CallStatus.NEW and not self._closed:
            self._forget_absent()
            self._spawn(self._restart(REJOIN_RESTART_REASON), "call restart")

    def _on_left(self, update: RoomUpdate) -> None:
        """Ids are never reused in a room: a view kept for someone who left would only pile up."""
        if update.participant is not None:
            self._forget_view(update.participant.id)

    def _forget_view(self, pid: str) -> None:
        self._participant_views.pop(pid, None)
        self._views_sent.pop(pid, None)
        self._participant_preview.pop(pid, None)
        self._view_names.pop(pid, None)

    def _forget_absent(self) -> None:
        """After a rejoin, drop the streams and per-participant views kept for ids the room (its new
        STATE) no longer has, or that now name someone else: a restarted server numbers its
        participants afresh, so an id we hold may be someone else's now. Names are unique in a room."""
        def same_person(pid: str, name: str) -> bool:
            participant = self.room.participants.get(pid)
            return participant is not None and name_key(participant.name) == name_key(name)

        for pid, stream in list(self.streams.items()):
            if not same_person(pid, stream.name):
                del self.streams[pid]
                for slot in self._slots:
                    if slot.stream is stream:
                        slot.stream = None
                stream._set(PlayStatus.STOPPED, "no longer in the room")
                self._emit(CallEvent.STREAM_REMOVED, stream=stream)
        for pid in {*self._participant_views, *self._participant_preview}:
            if not same_person(pid, self._view_names.get(pid, "")):
                self._forget_view(pid)

    def _on_room_left(self) -> None:
        """We left the room (``room.leave()``, ``session.disconnect()``): the server has dropped our
        media with it, so the call ends here too, as ``close()``."""
        if not self._closed:
            self._closing = asyncio.get_running_loop().create_task(self.close(), name="call close: room left")
            self._closing.add_done_callback(log_unexpected_failure)

    def _on_room_failed(self, update: RoomUpdate) -> None:
        self._fail(update.reason or "the room failed")
        self._spawn(self._drop_pc_when_free(), "call drop")

    async def _drop_pc_when_free(self) -> None:
        """After a start or restart in progress: pulling its peer connection from under it would
        fail it on an assertion instead of the room's reason."""
        async with self._lock:
            await self._drop_pc()

    def _on_signal(self, message: Answer | Streams) -> None:
        if isinstance(message, Answer):
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(message.sdp)
            return
        self._assignment = message
        if self._slots:
            self._apply(message)

    def _apply(self, message: Streams) -> None:
        """Follow the server's slot assignment: new streams PENDING, dropped ones STOPPED and removed."""
        assigned = {a.participant: a.slot for a in message.assignments if 0 <= a.slot < len(self._slots)}
        for pid in [p for p in self.streams if p not in assigned]:
            gone = self.streams.pop(pid)
            if self._slots[gone.slot].stream is gone:
                self._slots[gone.slot].stream = None
            gone._set(PlayStatus.STOPPED, "no longer sent")
            self._emit(CallEvent.STREAM_REMOVED, stream=gone)
        for slot in self._slots:
            if slot.stream is not None and assigned.get(slot.stream.participant_id) != slot.index:
                slot.stream = None
        for pid, index in assigned.items():
            stream = self.streams.get(pid)
            participant = self.room.participants.get(pid)
            if stream is None:
                stream = PlayedStream(pid, participant.name if participant else pid, index)
                for status in PlayStatus:
                    stream.on(status, self._on_play_status)
                stream.on(StreamEvent.RESIZED, lambda s: self._emit(CallEvent.RESIZED, stream=s))
                self.streams[pid] = stream
                self._emit(CallEvent.STREAM_ADDED, stream=stream)
            elif stream.status in (PlayStatus.STOPPED, PlayStatus.FAILED):
                stream._set(PlayStatus.PENDING, "assigned again")
            stream.slot = index
            self._slots[index].stream = stream

    def _on_play_status(self, stream: PlayedStream) -> None:
        self._emit(CallEvent.PLAY_STATUS, stream=stream, reason=stream.reason)

    def _on_publish_status(self, stream: PublishedStream) -> None:
        self._emit(CallEvent.PUBLISH_STATUS, published=stream, reason=stream.reason)

    def _set_status(self, status: CallStatus, reason: str) -> None:
        if status is self.status:
            return
        self.status, self.reason = status, reason
        log.info("call: %s (%s)", status.name, reason)
        self._emit(CallEvent.STATUS, reason=reason)

    def _emit(self, event: CallEvent, **payload: Any) -> None:
        self._emitter.emit(event, CallUpdate(event, self.status, **payload))

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            now = time.monotonic()
            for slot in self._slots:
                slot.update_kbps(now)
            encoder = self._uplink_encoder
            if encoder is not None and encoder.codec is not None:
                self.published.size = (encoder.codec.width, encoder.codec.height)
                self.published.uplink_limited = encoder.rung > 0
