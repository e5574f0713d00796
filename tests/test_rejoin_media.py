"""A publisher who rejoins is seen again: after their WebSocket drops, and after the server restarts.

Real server, real sessions reconnecting by themselves, real peer connections. What is asserted is
what a person sees: the other participants' tile of the rejoined publisher reaches PLAYING and
frames keep arriving, and someone who joins afterwards plays them too.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import pytest

from tests.conftest import free_port, wait_until
from tests.test_call import Peer, Peers, peers  # noqa: F401  (the fixture)
from tuichat.client import RoomEvent, RoomUpdate
from tuichat.client.call import Call, CallEvent, CallStatus
from tuichat.client.stream import PlayedStream, PlayStatus, PublishStatus
from tuichat.errors import CommandFailed
from tuichat.server import RoomServer, ServerLimits
from tuichat.server import room as room_module

pytestmark = pytest.mark.timeout(90)

LIMITS = ServerLimits(heartbeat=2.0)


async def rejoined(peer: Peer, old_id: str, *, publishing: bool = True, timeout: float = 15.0) -> str:
    """Wait until ``peer`` is back in the room under a new id, its call connected (and publishing)."""
    await peer.room_updates.wait_for(
        lambda u: u.event is RoomEvent.STATE and peer.room.me is not None and peer.room.me.id != old_id,
        timeout=timeout)
    new_id = peer.room.me.id  # type: ignore[union-attr]
    await wait_until(lambda: peer.call.status is CallStatus.CONNECTED
                     and (peer.call.published.status is PublishStatus.PUBLISHING or not publishing)
                     and peer.room.me is not None and peer.room.me.id == new_id, timeout=timeout)
    return new_id


async def sees(call: Call, participant_id: str, *, name: str | None = None, frames: int = 10,
               timeout: float = 8.0) -> PlayedStream:
    """Wait until ``call`` plays ``participant_id`` (called ``name``) and ``frames`` more pictures of them arrived."""
    async def watch() -> PlayedStream:
        while True:
            stream = call.streams.get(participant_id)
            if stream is not None and stream.status is PlayStatus.PLAYING:
                break
            await asyncio.sleep(0.02)
        target = stream.frames_received + frames
        while stream.frames_received < target:
            if stream.status is not PlayStatus.PLAYING:
                raise AssertionError(f"{stream} left PLAYING: {stream.reason}")
            await asyncio.sleep(0.02)
        return stream

    try:
        stream = await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise AssertionError(f"{participant_id} never played within {timeout:g} s; streams: {call.streams}") from None
    if name is not None:
        assert stream.name == name, f"the tile of {name} ({participant_id}) says {stream.name!r}"
    return stream


def drop_websocket(peer: Peer) -> None:
    """Cut the client's TCP connection to the server abruptly (no close frame), as a dead link would."""
    ws = peer.session._ws
    assert ws is not None
    connection = ws._response.connection
    assert connection is not None and connection.transport is not None
    connection.transport.abort()


async def test_a_publisher_whose_websocket_drops_is_seen_again(peers: Peers) -> None:  # noqa: F811
    dave = await peers.join("dave", publish=True)
    frank = await peers.join("frank", publish=True)
    frank_id, dave_id = frank.room.me.id, dave.room.me.id  # type: ignore[union-attr]
    await sees(dave.call, frank_id)
    await sees(frank.call, dave_id)

    drop_websocket(frank)
    new_id = await rejoined(frank, frank_id)

    # Dave's tile of frank plays again, and frank plays dave again.
    await sees(dave.call, new_id, name="frank")
    await sees(frank.call, dave_id)
    # Someone joining afterwards plays both.
    erin = await peers.join("erin")
    await sees(erin.call, new_id)
    await sees(erin.call, dave_id)
    # The camera and microphone lived through the drop; closing the call is what ends them.
    assert all(track.readyState == "live" for track in frank.tracks)
    await frank.call.close()
    assert all(track.readyState == "ended" for track in frank.tracks)


async def test_a_publisher_who_resumes_before_the_server_noticed_the_drop_is_seen_again(
        peers: Peers, server: RoomServer) -> None:  # noqa: F811
    """The old connection still looks alive to the server when the client rejoins with its resume token."""
    dave = await peers.join("dave", publish=True)
    frank = await peers.join("frank", publish=True)
    frank_id, dave_id = frank.room.me.id, dave.room.me.id  # type: ignore[union-attr]
    await sees(dave.call, frank_id)

    old = next(c for c in server.connections if c.member is not None and c.member.id == frank_id)
    old.ws._req.transport.pause_reading()  # type: ignore[union-attr]  # the server hears nothing more of it
    drop_websocket(frank)
    new_id = await rejoined(frank, frank_id)
    await dave.room_updates.wait_for(
        lambda u: u.event is RoomEvent.LEFT and u.participant.id == frank_id
        and u.reason == "replaced by a new connection", timeout=5)

    await sees(dave.call, new_id)
    await sees(frank.call, dave_id)
    erin = await peers.join("erin")
    await sees(erin.call, new_id)
    await sees(erin.call, dave_id)


async def test_publishers_are_seen_again_after_the_server_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+C and start again on the same port: everybody rejoins a server that remembers nothing."""
    port = free_port()
    peers = Peers(f"ws://127.0.0.1:{port}/ws")  # noqa: F811  (its own server, not the fixture's)
    first: RoomServer | None = RoomServer("127.0.0.1", port, limits=LIMITS)
    second: RoomServer | None = None
    # Participant ids as a fresh server process hands them out: dave p1, frank p2, bob p3.
    monkeypatch.setattr(room_module, "_member_ids", itertools.count(1))
    try:
        await first.start()
        dave = await peers.join("dave", publish=True)
        frank = await peers.join("frank", publish=True)
        bob = await peers.join("bob")  # only watches
        ids = {p.session.username: p.room.me.id for p in (dave, frank, bob)}  # type: ignore[union-attr]
        await sees(bob.call, ids["frank"], name="frank")
        await sees(bob.call, ids["dave"], name="dave")
        await sees(dave.call, ids["frank"], name="frank")
        # Bob looks at dave bigger than at everyone else (160×90 by default).
        await bob.call.set_view(320, 240, 15, participant=ids["dave"])
        await bob.calls.wait_for(lambda u: u.event is CallEvent.RESIZED and u.stream.name == "dave"
                                 and u.stream.size == (320, 240), timeout=5)
        # Who comes back first: frank, then bob, then dave (each one's first retry comes later).
        for peer, backoff in ((frank, 0.05), (bob, 0.6), (dave, 1.2)):
            peer.session.options = replace(peer.session.options, backoff_initial=backoff)

        await first.stop()  # what Ctrl+C does
        first = None
        # A new server process numbers its participants from the start again: frank gets dave's old id.
        monkeypatch.setattr(room_module, "_member_ids", itertools.count(1))
        second = RoomServer("127.0.0.1", port, limits=LIMITS)
        await second.start()
        new = {p.session.username: await rejoined(p, ids[p.session.username], publishing=p is not bob, timeout=20)
               for p in (frank, bob, dave)}

        # Frank now has dave's old id: bob's tile of him says frank, at bob's size for everyone, not dave's.
        assert new["frank"] == ids["dave"]
        assert (await sees(bob.call, new["frank"], name="frank")).size == (120, 90)
        await sees(bob.call, new["dave"], name="dave")
        await sees(dave.call, new["frank"], name="frank")
        await sees(frank.call, new["dave"], name="dave")
        for peer in (dave, frank, bob):  # nobody keeps a tile of someone who is not sent any more
            assert {s.name for s in peer.call.streams.values()} <= {"dave", "frank"} - {peer.session.username}
            assert all(s.participant_id in new.values() for s in peer.call.streams.values()), peer.call.streams
        erin = await peers.join("erin")
        await sees(erin.call, new["frank"], name="frank")
        await sees(erin.call, new["dave"], name="dave")
    finally:
        await peers.close()
        for server in (first, second):
            if server is not None:
                await server.stop()


async def test_an_ended_camera_is_not_published_as_video(peers: Peers) -> None:  # noqa: F811
    """A call whose camera track has ended does not claim to publish video nobody will ever see."""
    frank = await peers.join("frank", publish=True, start=False)
    frank.tracks[0].stop()
    await frank.call.start()
    assert frank.call.published.status is PublishStatus.PUBLISHING
    assert (frank.call.published.audio, frank.call.published.video) == (True, False)
    dave = await peers.join("dave")
    info = dave.room.participants[frank.room.me.id]  # type: ignore[union-attr]
    assert info.stream is not None and not info.stream.video and info.stream.audio
    assert not any(u.event is CallEvent.PLAY_STATUS and u.stream.status is PlayStatus.FAILED
                   for u in dave.calls.items)



async def test_a_publisher_whose_peer_connection_the_server_closed_is_seen_again(
        peers: Peers, server: RoomServer) -> None:  # noqa: F811
    """The server gives up on someone's media (on an overloaded machine their tracks seemed to end)
    and closes their peer connection; they are still in the room, so their call is set up again."""
    dave = await peers.join("dave", publish=True)
    frank = await peers.join("frank", publish=True)
    frank_id = frank.room.me.id  # type: ignore[union-attr]
    await sees(dave.call, frank_id, name="frank")
    first_pc = frank.call.pc
    await server.media.sessions[frank_id].pc.close()
    # Dave stops seeing frank (the server unpublished him) ...
    await wait_until(lambda: (stream := dave.call.streams.get(frank_id)) is None
                     or stream.status is not PlayStatus.PLAYING, timeout=10)
    # ... until frank's call has a new peer connection and publishes again.
    await wait_until(lambda: frank.call.pc is not None and frank.call.pc is not first_pc
                     and frank.call.published.status is PublishStatus.PUBLISHING, timeout=15)
    await sees(dave.call, frank_id, name="frank", timeout=15)
    await sees(frank.call, dave.room.me.id, name="dave", timeout=15)  # type: ignore[union-attr]


async def test_a_media_restart_refused_as_too_fast_is_tried_again() -> None:
    """QA: a restart refused with rate_limited left the call FAILED for good; "slow down" passes."""
    async with RoomServer("127.0.0.1", 0, limits=replace(LIMITS, rate_per_second=2.0, rate_burst=6)) as server:
        made = Peers(f"ws://127.0.0.1:{server.port}/ws")
        try:
            carol = await made.join("carol", publish=True)
            # Spend the connection's budget for call control, as a burst of view changes would.
            refused = False
            for _ in range(12):
                try:
                    await carol.room.mute(audio=False)
                except CommandFailed as exc:
                    refused = exc.code == "rate_limited"
                    break
            assert refused, "the server never said slow down"
            # A media failure now: the new peer connection's offer is refused at first.
            await carol.call._restart("the media connection failed (test)")
            assert carol.call.status is CallStatus.CONNECTED, carol.call.reason
            assert carol.call.published.status is PublishStatus.PUBLISHING
        finally:
            await made.close()


async def test_a_muted_publisher_is_never_announced_unmuted_after_a_server_restart() -> None:
    """QA: after the server restarted, the others got PUBLISHED with mic and camera on, then UPDATED
    with both off: for a moment everyone believed a muted person could be heard and seen."""
    port = free_port()
    peers = Peers(f"ws://127.0.0.1:{port}/ws")  # noqa: F811  (its own server, not the fixture's)
    first: RoomServer | None = RoomServer("127.0.0.1", port, limits=LIMITS)
    second: RoomServer | None = None
    try:
        await first.start()
        dave = await peers.join("dave")
        frank = await peers.join("frank", publish=True)
        frank_id = frank.room.me.id  # type: ignore[union-attr]
        await frank.call.mute_audio(True)
        await frank.call.mute_video(True)
        await dave.room_updates.wait_for(lambda u: u.event is RoomEvent.UPDATED and u.participant.id == frank_id
                                         and u.participant.audio_muted and u.participant.video_muted, timeout=5)
        # Dave comes back first, to see frank arrive.
        dave.session.options = replace(dave.session.options, backoff_initial=0.05)
        frank.session.options = replace(frank.session.options, backoff_initial=1.0)

        await first.stop()
        first = None
        second = RoomServer("127.0.0.1", port, limits=LIMITS)
        await second.start()
        await rejoined(dave, dave.room.me.id, publishing=False, timeout=20)  # type: ignore[union-attr]
        announced: list[tuple[str, bool, bool]] = []

        def record(update: RoomUpdate) -> None:
            frank = update.participant
            if frank is not None and frank.name == "frank" and frank.publishing:
                announced.append((update.event.value, frank.audio_muted, frank.video_muted))

        for event in (RoomEvent.PUBLISHED, RoomEvent.UPDATED):
            dave.room.on(event, record)
        await rejoined(frank, frank_id, timeout=20)
        await wait_until(lambda: any(event == "PUBLISHED" for event, _, _ in announced), timeout=10)
        assert all(audio_muted and video_muted for _, audio_muted, video_muted in announced), announced
    finally:
        await peers.close()
        for server in (first, second):
            if server is not None:
                await server.stop()
