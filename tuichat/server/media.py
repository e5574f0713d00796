"""The server's side of calls: one RTCPeerConnection per client, fixed slots, never renegotiated.

Transceiver scheme (the client's offer, in m-line order; the same order on both sides):

====================  ===========  ==============================================================
m-lines               offer dir.   meaning
====================  ===========  ==============================================================
0: video              sendonly     the client's own camera (sendonly even with no track yet: the
1: audio              sendonly     client attaches one later with ``sender.replaceTrack``)
2 + 2k: video         recvonly     receive slot ``k`` (k = 0 .. S-1), S = ``State.media_slots``
3 + 2k: audio         recvonly     = ``max_participants - 1``
====================  ===========  ==============================================================

For each offer the server makes a peer connection, ``setRemoteDescription(offer)`` (aiortc creates
one ``recvonly`` transceiver per m-line), then for each slot transceiver sets
``sender.replaceTrack(slot_track)`` with a persistent ``SlotVideoTrack``/``SlotAudioTrack`` and
``direction = "sendonly"``. aiortc answers each m-line with ``and_direction(transceiver.direction,
offer direction reversed)`` (``createAnswer`` in ``rtcpeerconnection.py``), so the slots are answered
``sendonly`` and the client's own m-lines ``recvonly``. Slot tracks live as long as the connection;
``MediaHub`` switches what feeds them (a publisher's fanout, or nothing) as people publish,
unpublish and leave, and tells the client with a ``streams`` event which participant is in which
slot. Slots are handed out in join order, the lowest free one first, but a freed slot rests for
``SLOT_REST_S`` before it is given to someone else: the last frames of the previous publisher may
still be in the encoder or on the wire when the ``streams`` event reaches the client, and would be
drawn as the new one's. While the slot is unassigned the client drops whatever arrives on it, so
a newcomer waits only when every other slot is taken (a full room). Only publishers whose own
peer connection is up get a slot. An idle slot sends nothing, not even RTCP sender reports.

Each slot's senders get their own encoders (``tuichat.rtc.encoders``): VP8 capped by the slot's
``VideoBudget`` and Opus at the slot's ``AudioBudget``, both set from the subscriber's ``view`` of
the participant on that slot (``tuichat.server.bitrate``: normal or preview) and changed in place
when the view changes, so one subscriber's settings never touch another's. Video receivers release
a frame on its marker packet (``tuichat.rtc.jitter``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import SessionDescription

from tuichat.errors import CommandFailed
from tuichat.protocol.limits import DEFAULT_VIEW
from tuichat.protocol.messages import ErrorCode, SlotAssignment, Streams
from tuichat.rtc.encoders import (
    AudioBudget,
    CappedVp8Encoder,
    TunableOpusEncoder,
    VideoBudget,
    install_encoder,
    sender_codec,
)
from tuichat.rtc.ice import ice_server_list
from tuichat.rtc.jitter import use_marker_release
from tuichat.rtc.rtcp import send_reports_only_when_sending
from tuichat.server.bitrate import ViewSpec, plan
from tuichat.server.relay import AudioFanout, SlotAudioTrack, SlotVideoTrack, VideoFanout
from tuichat.server.room import Deliver, Member, Registry, Room, is_publishing

__all__ = ["SLOT_REST_S", "MediaHub", "PeerSession", "ViewPrefs", "ViewSpec"]

log = logging.getLogger(__name__)

#: Offer → answer, including ICE gathering.
NEGOTIATE_TIMEOUT_S = 10.0
#: A freed slot's rest before reuse: longer than a frame spends in the server's encoder, on the wire,
#: in the client's jitter buffer and decoder on any link a call survives (tens of ms on a LAN).
SLOT_REST_S = 1.0



@dataclass
class ViewPrefs:
    """What one subscriber asked for with ``view``: a default and per-participant overrides."""

    default: ViewSpec = field(default_factory=lambda: ViewSpec(*DEFAULT_VIEW))
    per_participant: dict[str, ViewSpec] = field(default_factory=dict)

    def set(self, view: tuple[int, int, int] | tuple[int, int, int, object], participant: str | None) -> None:
        """Record (width, height, fps[, preview]) for ``participant`` (None: the default for all).

        ``preview`` is on only when it is ``True`` (the protocol leaves it unset when off)."""
        spec = ViewSpec(view[0], view[1], view[2], len(view) > 3 and view[3] is True)
        if participant is None:
            self.default = spec
        else:
            self.per_participant[participant] = spec

    def forget_absent(self, present: Iterable[str]) -> None:
        """Drop overrides for participants no longer in the room (ids are never reused: they would
        only pile up over a long call with people coming and going)."""
        keep = set(present)
        for participant in [p for p in self.per_participant if p not in keep]:
            del self.per_participant[participant]

    def for_participant(self, participant: str) -> ViewSpec:
        return self.per_participant.get(participant, self.default)


def _check_offer(sdp: str, max_slots: int) -> int:
    """The number of receive slots in a well-formed offer; CommandFailed(media_failed) otherwise."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:
        raise CommandFailed(ErrorCode.MEDIA_FAILED, f"unreadable SDP offer: {str(exc) or type(exc).__name__}") from None
    if any(m.kind not in ("audio", "video") for m in description.media):
        kinds = sorted({m.kind for m in description.media} - {"audio", "video"})
        raise CommandFailed(ErrorCode.MEDIA_FAILED, f"the offer may have only audio and video m-lines, not {kinds}")
    mids = [m.rtp.muxId for m in description.media]
    if len(set(mids)) != len(mids) or not all(mids):
        raise CommandFailed(ErrorCode.MEDIA_FAILED, "every m-line of the offer needs its own a=mid")
    media = description.media
    layout = [(m.kind, m.direction) for m in media]
    if layout[:2] != [("video", "sendonly"), ("audio", "sendonly")]:
        raise CommandFailed(ErrorCode.MEDIA_FAILED,
                            f"the offer must start with sendonly video and sendonly audio, got {layout[:2]}")
    rest = layout[2:]
    if len(rest) % 2 or any(pair != ("video", "recvonly") for pair in rest[0::2]) or any(
        pair != ("audio", "recvonly") for pair in rest[1::2]
    ):
        raise CommandFailed(ErrorCode.MEDIA_FAILED,
                            "after the first two m-lines the offer must have pairs of recvonly video + audio")
    slots = len(rest) // 2
    if slots > max_slots:
        raise CommandFailed(ErrorCode.MEDIA_FAILED, f"the offer has {slots} receive slots; the limit is {max_slots}")
    return slots


class PeerSession:
    """One client's peer connection: its publication (two fanouts) and its receive slots."""

    def __init__(self, hub: MediaHub, member: Member, views: ViewPrefs, deliver: Deliver) -> None:
        self.hub = hub
        self.member = member
        self.views = views
        self.deliver = deliver
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(hub.ice_servers),
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.video_fanout: VideoFanout | None = None
        self.audio_fanout: AudioFanout | None = None
        self.slot_video: list[SlotVideoTrack] = []
        self.slot_audio: list[SlotAudioTrack] = []
        #: Per slot: the caps its senders' encoders read (changed in place by ``_plan_slot``).
        self.video_budgets: list[VideoBudget] = []
        self.audio_budgets: list[AudioBudget] = []
        #: participant id → slot index.
        self.assignments: dict[str, int] = {}
        #: Per slot: when it was last freed (monotonic seconds), for the rest before its reuse.
        self.released: list[float] = []
        self._rest_timer: asyncio.TimerHandle | None = None
        self.ready = False
        self.closed = False
        self._created = time.monotonic()
        self._close_task: asyncio.Task[None] | None = None
        self.pc.on("connectionstatechange", self._on_connection_state)

    def __repr__(self) -> str:
        return f"<PeerSession {self.member.name} ({self.member.id}) {self.pc.connectionState}>"

    def __str__(self) -> str:  # in the server's log, read by people
        return f"media of {self.member.name} ({self.member.id})"

    async def negotiate(self, sdp: str, slots: int) -> str:
        """Apply the client's offer (checked: ``slots`` receive slots) and return the answer's SDP."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # the offer's content (no ICE credentials, no codec we share…)
            raise CommandFailed(ErrorCode.MEDIA_FAILED,
                                f"the offer cannot be used: {str(exc) or type(exc).__name__}") from None
        transceivers = self.pc.getTransceivers()
        if len(transceivers) != 2 + 2 * slots:
            raise CommandFailed(ErrorCode.MEDIA_FAILED, "the offer's m-lines do not make the expected transceivers")
        use_marker_release(transceivers[0].receiver)
        name = f"{self.member.name}/{self.member.id}"
        video, audio = transceivers[0].receiver.track, transceivers[1].receiver.track
        self.video_fanout = VideoFanout(video, name, lambda reason: self._lost(f"video: {reason}"))
        self.audio_fanout = AudioFanout(audio, name, lambda reason: self._lost(f"audio: {reason}"))
        self.video_fanout.start()
        self.audio_fanout.start()
        for k in range(slots):
            video_slot, audio_slot = SlotVideoTrack(), SlotAudioTrack()
            self.slot_video.append(video_slot)
            self.slot_audio.append(audio_slot)
            self.video_budgets.append(VideoBudget())
            self.audio_budgets.append(AudioBudget())
            self.released.append(-math.inf)
            self._plan_slot(k, self.views.default)
            for transceiver, track in ((transceivers[2 + 2 * k], video_slot), (transceivers[3 + 2 * k], audio_slot)):
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
                send_reports_only_when_sending(transceiver.sender)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        for k in range(slots):  # codecs are known now; the first frame is encoded after ICE + DTLS
            self._install_encoders(transceivers[2 + 2 * k], transceivers[3 + 2 * k], k)
        self.ready = True
        return self.pc.localDescription.sdp

    def _install_encoders(self, video: Any, audio: Any, slot: int) -> None:
        video_codec, audio_codec = sender_codec(video), sender_codec(audio)
        if video_codec == "video/vp8":
            install_encoder(video.sender, CappedVp8Encoder(self.video_budgets[slot]))
        else:
            log.warning("%s: slot %d sends %s: no bit-rate cap", self, slot, video_codec or "nothing")
        if audio_codec == "audio/opus":
            install_encoder(audio.sender, TunableOpusEncoder(self.audio_budgets[slot]))
        else:
            log.warning("%s: slot %d sends %s at its codec's own rate", self, slot, audio_codec or "nothing")

    def _plan_slot(self, slot: int, view: ViewSpec) -> None:
        """Fit slot ``slot`` to ``view``: the box and frame rate, and its encoders' budgets (in place)."""
        slot_plan = plan(view)
        self.slot_video[slot].set_view(slot_plan.width, slot_plan.height, slot_plan.fps)
        video, audio = self.video_budgets[slot], self.audio_budgets[slot]
        video.fps, video.bits_per_pixel = slot_plan.video.fps, slot_plan.video.bits_per_pixel
        video.min_bps, video.max_bps = slot_plan.video.min_bps, slot_plan.video.max_bps
        audio.bitrate = slot_plan.audio.bitrate

    def apply(self, publishers: Sequence[Member]) -> None:
        """Give each of ``publishers`` (join order) a slot fed by their fanouts; tell the client if changed."""
        if not self.ready or self.closed:
            return
        wanted = {m.id for m in publishers}
        changed = False
        now = time.monotonic()
        for pid in [p for p in self.assignments if p not in wanted]:
            slot = self.assignments.pop(pid)
            self.slot_video[slot].attach(None)
            self.slot_audio[slot].attach(None)
            self.released[slot] = now
            changed = True
        for member in publishers:
            if member.id not in self.assignments:
                free = sorted(set(range(len(self.slot_video))) - set(self.assignments.values()))
                rested = [k for k in free if now - self.released[k] >= self.hub.slot_rest]
                if not rested:
                    if free:
                        self._apply_again(min(self.released[k] for k in free) + self.hub.slot_rest - now)
                    else:
                        log.warning("%s: no free receive slot for %s", self, member.id)
                    continue
                self.assignments[member.id] = rested[0]
                changed = True
            slot = self.assignments[member.id]
            source = self.hub.sessions.get(member.id)
            stream = member.stream
            self.slot_video[slot].attach(
                source.video_fanout if source is not None and stream is not None and stream.video else None)
            self.slot_audio[slot].attach(
                source.audio_fanout if source is not None and stream is not None and stream.audio else None)
            self._plan_slot(slot, self.views.for_participant(member.id))
        if changed:
            by_slot = sorted(self.assignments.items(), key=lambda item: item[1])
            self.deliver(Streams(assignments=[SlotAssignment(participant=p, slot=s) for p, s in by_slot]))

    def _apply_again(self, delay: float) -> None:
        """Run the room's slot assignment again once a resting slot may be reused."""
        if self._rest_timer is not None:
            return

        def due() -> None:
            self._rest_timer = None
            room = self.member.room
            if room is not None and not self.closed:
                self.hub.refresh(room)

        self._rest_timer = asyncio.get_running_loop().call_later(max(0.0, delay), due)

    def apply_views(self) -> None:
        for pid, slot in self.assignments.items():
            self._plan_slot(slot, self.views.for_participant(pid))

    async def close(self) -> None:
        """Detach everything, stop the fanouts and close the peer connection (idempotent)."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        self.closed = True
        self.ready = False
        if self._rest_timer is not None:
            self._rest_timer.cancel()
            self._rest_timer = None
        for video_slot, audio_slot in zip(self.slot_video, self.slot_audio, strict=True):
            video_slot.attach(None)
            audio_slot.attach(None)
        for fanout in (self.video_fanout, self.audio_fanout):
            if fanout is not None:
                await fanout.close()
        await self.pc.close()
        log.info("%s: peer connection closed", self)

    @property
    def sending(self) -> bool:
        """Its peer connection is up, so what it publishes can reach others: only then does it get
        a slot on them (one whose client never took part in ICE held a blank tile on everyone
        for a minute, until ICE gave up)."""
        return self.ready and not self.closed and self.pc.connectionState == "connected"

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        log.info("%s: peer connection %s after %.0f ms", self, state, (time.monotonic() - self._created) * 1000)
        if state == "failed":
            self._lost("the peer connection failed")
        elif state == "connected" and self.member.room is not None and self.hub.sessions.get(self.member.id) is self:
            self.hub.refresh(self.member.room)  # now a publisher others can be given

    def _lost(self, reason: str) -> None:
        if not self.closed:
            self.hub._publisher_lost(self, reason)


class MediaHub:
    """Every peer session of one server, driven by the room through ``RoomHooks``."""

    def __init__(
        self,
        registry: Registry,
        *,
        ice_servers: Iterable[RTCIceServer | str] = (),
        negotiate_timeout: float = NEGOTIATE_TIMEOUT_S,
        slot_rest: float = SLOT_REST_S,
    ) -> None:
        self.registry = registry
        self.ice_servers = ice_server_list(ice_servers)
        self.negotiate_timeout = negotiate_timeout
        #: How long a freed receive slot stays unassigned before someone else gets it.
        self.slot_rest = slot_rest
        self.max_slots = registry.max_participants - 1
        #: member id → that member's current peer session.
        self.sessions: dict[str, PeerSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        registry.hooks = self

    async def offer(self, member: Member, sdp: str, views: ViewPrefs, deliver: Deliver) -> str:
        """Negotiate a new peer session for ``member`` (replacing theirs) and return the answer's SDP.

        Raises CommandFailed(media_failed). Call ``activate(member)`` once the answer has been sent."""
        if member.room is None:
            raise CommandFailed(ErrorCode.NOT_IN_ROOM, "join a room first")
        # Checked before anything is built or torn down: a bad offer leaves the media as it was.
        slots = _check_offer(sdp, self.max_slots)
        old = self.sessions.pop(member.id, None)
        if old is not None:
            self._close_later(old)
        session = PeerSession(self, member, views, deliver)
        self.sessions[member.id] = session
        try:
            async with asyncio.timeout(self.negotiate_timeout):
                answer = await session.negotiate(sdp, slots)
        except CommandFailed as exc:
            log.info("%s: offer refused: %s", member.id, exc.reason)  # the client's doing: no traceback
            self._offer_failed(session)
            raise
        except TimeoutError:
            self._offer_failed(session)
            raise CommandFailed(ErrorCode.MEDIA_FAILED,
                                f"no answer within {self.negotiate_timeout:g} s") from None
        except Exception as exc:
            log.exception("negotiating with %s failed", member.id)
            self._offer_failed(session)
            raise CommandFailed(ErrorCode.MEDIA_FAILED, f"could not answer the offer: {exc}") from None
        if session.closed or self.sessions.get(member.id) is not session:
            raise CommandFailed(ErrorCode.MEDIA_FAILED, "the session ended while negotiating")
        return answer

    def activate(self, member: Member) -> None:
        """Assign slots to the member's new session (after its answer went out) and to everyone else."""
        if member.room is not None:
            self.refresh(member.room)

    def view_changed(self, member: Member) -> None:
        session = self.sessions.get(member.id)
        if session is not None:
            session.apply_views()

    def refresh(self, room: Room) -> None:
        """Bring every session in ``room`` in line with who publishes (cheap: a room is small)."""
        members = list(room)
        publishers = [m for m in members if is_publishing(m.stream) and m.id in self.sessions
                      and self.sessions[m.id].sending]
        for member in members:
            # Whoever left while this ran (a send can drop a member) is neither served nor shown.
            session = self.sessions.get(member.id)
            if session is not None and member.room is room:
                session.apply([p for p in publishers if p is not member and p.room is room])

    async def close(self) -> None:
        """Close every session (idempotent)."""
        sessions = list(self.sessions.values())
        self.sessions.clear()
        for session in sessions:
            self._close_later(session)
        tasks = list(self._tasks)
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- RoomHooks ------------------------------------------------------------------------------

    def published(self, room: Room, member: Member) -> None:
        self.refresh(room)

    def unpublished(self, room: Room, member: Member) -> None:
        self.refresh(room)

    def left(self, room: Room, member: Member) -> None:
        session = self.sessions.pop(member.id, None)
        if session is not None:
            self._close_later(session)
        self.refresh(room)

    # --- internals ------------------------------------------------------------------------------

    def _offer_failed(self, session: PeerSession) -> None:
        """The old session is gone and the new one failed: as when media is lost, the room stops
        expecting this member's media (others kept them on a slot fed by nothing)."""
        if self.sessions.get(session.member.id) is not session:
            self._close_later(session)  # replaced meanwhile: the newer one is in charge
            return
        self._publisher_lost(session, "the offer failed")

    def _drop(self, session: PeerSession) -> None:
        if self.sessions.get(session.member.id) is session:
            del self.sessions[session.member.id]
        self._close_later(session)

    def _publisher_lost(self, session: PeerSession, reason: str) -> None:
        member = session.member
        if self.sessions.get(member.id) is not session:
            return
        log.info("media of %s (%s) lost: %s; unpublishing", member.name, member.id, reason)
        self._drop(session)
        room = member.room
        if room is None:
            return
        if is_publishing(member.stream):
            self.registry.unpublish(member)  # tells the room, then refreshes through the hook
        else:
            self.refresh(room)

    def _close_later(self, session: PeerSession) -> None:
        task = asyncio.ensure_future(session.close())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("closing a peer session failed", exc_info=task.exception())
