"""The client library against a real server: every event, refusals, reconnects and heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Recorder, free_port, wait_until
from tests.ws_proxy import Action, MisbehavingProxy, message_type
from tuichat.client import Room, RoomEvent, RoomUpdate, Session, SessionOptions, SessionStatus
from tuichat.errors import CommandFailed, ConnectionFailed
from tuichat.server import RoomServer, ServerLimits


@pytest.fixture
async def sessions(url: str) -> AsyncIterator[list[Session]]:
    made: list[Session] = []
    yield made
    for session in made:
        await session.disconnect()


def new_session(made: list[Session], url: str, name: str, **options: object) -> Session:
    session = Session(url, name, **options)
    made.append(session)
    return session


async def joined(made: list[Session], url: str, name: str, room: str = "lobby") -> Room:
    """``name`` in ``room``, on a session the ``sessions`` fixture closes (``room.session``)."""
    session = new_session(made, url, name)
    await session.connect()
    return await session.join(room)


def record_statuses(session: Session) -> list[SessionStatus]:
    statuses: list[SessionStatus] = []
    for status in SessionStatus:
        session.on(status, lambda s: statuses.append(s.status))
    return statuses


def record_room(room_updates: Recorder, room: object) -> None:
    for event in RoomEvent:
        room.on(event, room_updates)  # type: ignore[attr-defined]


async def test_session_statuses_and_every_room_event(url: str, sessions: list[Session]) -> None:
    alice = new_session(sessions, url, "alice")
    statuses = record_statuses(alice)
    await alice.connect()
    room = await alice.join("lobby")
    assert room.me is not None and room.me.name == "alice" and room.me.is_self
    updates = Recorder()
    record_room(updates, room)

    bob = new_session(sessions, url, "bob")
    await bob.connect()
    bob_room = await bob.join("lobby")
    joined: RoomUpdate = await updates.wait_for(lambda u: u.event is RoomEvent.JOINED)
    assert joined.participant is not None and joined.participant.name == "bob"
    assert sorted(p.name for p in room.participants.values()) == ["alice", "bob"]

    await bob_room.send_message("hello [bold]all[/]")
    message = await updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE)
    assert message.message.text == "hello [bold]all[/]" and message.message.sender.name == "bob"
    assert not message.message.private

    alice_in_bobs_view = bob_room.participant_named("alice")
    assert alice_in_bobs_view is not None
    await alice_in_bobs_view.send_message("just you")
    private = await updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE and u.message.private)
    assert private.message.text == "just you" and private.message.recipient is room.me

    await bob_room.publish(audio=True, video=True)
    published = await updates.wait_for(lambda u: u.event is RoomEvent.PUBLISHED)
    assert published.participant.publishing
    await bob_room.mute(audio=True)
    updated = await updates.wait_for(lambda u: u.event is RoomEvent.UPDATED)
    assert updated.participant.audio_muted and not updated.participant.video_muted
    await bob_room.unpublish()
    unpublished = await updates.wait_for(lambda u: u.event is RoomEvent.UNPUBLISHED)
    assert not unpublished.participant.publishing and not room.participant_named("bob").publishing  # type: ignore[union-attr]

    await bob_room.leave()
    left = await updates.wait_for(lambda u: u.event is RoomEvent.LEFT)
    assert left.participant.name == "bob" and left.reason == "left"
    assert [p.name for p in room.participants.values()] == ["alice"]
    assert [m.text for m in room.history] == ["hello [bold]all[/]"]  # private ones are not history

    await alice.disconnect()
    assert statuses == [SessionStatus.PENDING, SessionStatus.ESTABLISHED, SessionStatus.DISCONNECTED]


async def test_state_carries_history_to_a_late_joiner(url: str, sessions: list[Session]) -> None:
    room = await joined(sessions, url, "alice")
    for n in range(3):
        await room.send_message(f"m{n}")
    carol_room = await joined(sessions, url, "carol")
    assert [m.text for m in carol_room.history] == ["m0", "m1", "m2"]
    assert carol_room.history[0].sender.name == "alice"


async def test_refused_join_raises_and_emits_failed(url: str, sessions: list[Session]) -> None:
    first = new_session(sessions, url, "dup")
    await first.connect()
    await first.join("lobby")
    second = new_session(sessions, url, "DUP")
    await second.connect()
    with pytest.raises(CommandFailed) as caught:
        await second.join("lobby")
    assert caught.value.code == "name_taken"
    assert "already in room 'lobby'" in caught.value.reason
    assert second.room is None
    # The session is still usable: another room works.
    other = await second.join("elsewhere")
    assert other.joined


async def test_room_full_reason_reaches_the_client() -> None:
    async with RoomServer("127.0.0.1", 0, limits=ServerLimits(max_participants=1)) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with Session(url, "a") as first, Session(url, "b") as second:
            await first.join("tiny")
            with pytest.raises(CommandFailed, match="full"):
                await second.join("tiny")


async def test_connect_to_nothing_fails_fast_with_a_reason() -> None:
    session = Session(f"ws://127.0.0.1:{free_port()}/ws", "alice")
    statuses = record_statuses(session)
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        await session.connect()
    assert statuses == [SessionStatus.PENDING, SessionStatus.FAILED]
    assert "cannot reach" in session.reason


async def test_connect_with_retry_waits_for_a_server_that_is_coming_up() -> None:
    """The first connection of the terminal app: tried again with the reconnection backoff, each
    failure DISCONNECTED with its reason and when the next attempt comes, until the server is up."""
    port = free_port()
    session = Session(f"ws://127.0.0.1:{port}/ws", "alice", backoff_initial=0.05, backoff_max=0.2)
    waits: list[tuple[SessionStatus, str, float | None]] = []
    for status in SessionStatus:
        session.on(status, lambda s: waits.append((s.status, s.reason, s.retry_in)))
    connecting = asyncio.create_task(session.connect(retry=True))
    try:
        await wait_until(lambda: connecting.done() or
                         len([w for w in waits if w[0] is SessionStatus.DISCONNECTED]) >= 4, timeout=5)
        assert not connecting.done(), connecting
        async with RoomServer("127.0.0.1", port):
            await asyncio.wait_for(connecting, 5)
            assert session.status is SessionStatus.ESTABLISHED
            assert (await session.join("lobby")).joined
            await session.disconnect()
    finally:
        connecting.cancel()
    failed = [w for w in waits if w[0] is SessionStatus.DISCONNECTED and w[2] is not None]
    assert all("cannot reach" in reason and "refused" in reason for _, reason, _ in failed), failed
    assert [w[2] for w in failed][:4] == [0.05, 0.1, 0.2, 0.2], failed  # doubling up to backoff_max
    assert SessionStatus.FAILED not in [w[0] for w in waits]
    assert waits[1][0] is SessionStatus.DISCONNECTED and "attempt 2" in waits[2][1], waits


async def test_disconnect_while_connect_with_retry_waits_stops_the_attempts() -> None:
    port = free_port()
    session = Session(f"ws://127.0.0.1:{port}/ws", "alice", backoff_initial=0.2)
    connecting = asyncio.create_task(session.connect(retry=True))
    await wait_until(lambda: session.status is SessionStatus.DISCONNECTED, timeout=5)
    await session.disconnect()
    with pytest.raises(ConnectionFailed, match="closed while connecting"):  # no attempt after it
        await asyncio.wait_for(connecting, 5)
    assert session.status is SessionStatus.DISCONNECTED


async def test_connect_with_retry_gives_up_at_once_on_a_permanent_failure() -> None:
    async with RoomServer("127.0.0.1", 0) as server:
        session = Session(f"wss://127.0.0.1:{server.port}/ws", "alice", backoff_initial=0.05)
        statuses = record_statuses(session)
        with pytest.raises(ConnectionFailed, match="does not speak TLS"):
            await asyncio.wait_for(session.connect(retry=True), 5)
        assert statuses == [SessionStatus.PENDING, SessionStatus.FAILED]


async def test_async_iteration_of_events(url: str, sessions: list[Session]) -> None:
    room = await joined(sessions, url, "alice")
    seen: list[RoomEvent] = []

    async def consume() -> None:
        async for update in room.events():
            seen.append(update.event)
            if update.event is RoomEvent.LEFT:
                return

    consumer = asyncio.create_task(consume())
    bob_room = await joined(sessions, url, "bob")
    await bob_room.send_message("hi")
    await bob_room.leave()
    await asyncio.wait_for(consumer, 5)
    assert seen == [RoomEvent.JOINED, RoomEvent.MESSAGE, RoomEvent.LEFT]


async def test_an_event_read_later_still_says_what_happened_then(url: str, sessions: list[Session]) -> None:
    """Events carry the participant as the event left them; the room's own list is the live one."""
    room = await joined(sessions, url, "alice")
    updates = room.events()
    bob = new_session(sessions, url, "bob")
    await bob.connect()
    bob_room = await bob.join("lobby")
    await bob_room.publish(audio=True, video=True)
    await bob_room.mute(audio=True)
    await bob_room.mute(audio=False, video=True)
    await wait_until(lambda: any(p.video_muted for p in room.others()), timeout=5)
    read = [await asyncio.wait_for(anext(updates), 5) for _ in range(4)]
    assert [u.event for u in read] == [RoomEvent.JOINED, RoomEvent.PUBLISHED, RoomEvent.UPDATED, RoomEvent.UPDATED]
    assert not read[0].participant.publishing and read[1].participant.publishing
    assert [(u.participant.audio_muted, u.participant.video_muted) for u in read[1:]] == [
        (False, False), (True, False), (False, True)]
    live = room.participant_named("bob")
    assert live is not None and live.video_muted and not live.audio_muted
    assert all(u.participant.id == live.id for u in read)
    await updates.aclose()


async def test_event_iterators_end_with_the_room_and_are_not_kept_for_a_dropped_consumer(
        url: str, sessions: list[Session]) -> None:
    room = await joined(sessions, url, "alice")
    dropped = room.events()
    del dropped
    gc.collect()
    kept = room.events()
    assert list(room._iterators) == [kept]
    await room.leave()
    assert [update async for update in kept] == []
    assert [update async for update in room.events()] == []  # made after leaving: ends at once


async def test_closing_an_event_iterator_ends_a_consumer_waiting_in_another_task(
        url: str, sessions: list[Session]) -> None:
    room = await joined(sessions, url, "alice")
    updates = room.events()
    consumer_started = asyncio.Event()

    async def consume() -> int:
        consumer_started.set()
        return len([update async for update in updates])

    consumer = asyncio.create_task(consume())
    await consumer_started.wait()
    await updates.aclose()
    assert await asyncio.wait_for(consumer, 2) == 0
    await room.leave()  # the room's own end after that changes nothing


async def test_connect_between_automatic_attempts_does_not_open_a_second_connection(
        server: RoomServer, url: str, sessions: list[Session]) -> None:
    """DISCONNECTED is also the status between reconnection attempts: connect() then opened a second
    socket and a second reconnect loop beside the first, and the session rejoined twice."""
    alice = new_session(sessions, url, "alice", backoff_initial=0.3)
    await alice.connect()
    await alice.join("lobby")
    connection = next(c for c in server.connections if c.member is not None)
    await connection.ws.close(code=1011, message=b"drop")
    await wait_until(lambda: alice.status is SessionStatus.DISCONNECTED)
    runner = alice._runner
    await alice.connect()
    assert alice._runner is runner
    await wait_until(lambda: alice.status is SessionStatus.ESTABLISHED and alice.room is not None
                     and alice.room.joined, timeout=5)
    await wait_until(lambda: len(server.connections) == 1, timeout=2)  # the dropped one is gone, no second


async def test_a_first_join_cut_off_by_a_drop_joins_after_reconnecting(url: str, sessions: list[Session]) -> None:
    """The join went out as the connection dropped: join() raised, the session reconnected by
    itself, and nobody joined again (the app said it could not join, for good)."""
    def drop_the_first_join(connection: int, direction: str, text: str) -> Action:
        return "close" if connection == 1 and direction == "up" and message_type(text) == "join" else "pass"

    async with MisbehavingProxy(url, drop_the_first_join) as proxied:
        alice = new_session(sessions, proxied, "alice", backoff_initial=0.05)
        await alice.connect()
        room = await asyncio.wait_for(alice.join("lobby"), 10)
        assert room.joined and room.me is not None and alice.room is room
        bob = new_session(sessions, url, "bob")
        await bob.connect()
        bob_room = await bob.join("lobby")
        assert sorted(p.name for p in bob_room.participants.values()) == ["alice", "bob"]


async def test_a_first_join_left_unanswered_starts_over_and_leaves_no_ghost(
        url: str, sessions: list[Session]) -> None:
    """The server took alice in but its answer never came: she was told the join failed while
    everyone else saw her in the room. Now the session starts over and joins once."""
    def lose_the_answer(connection: int, direction: str, text: str) -> Action:
        return "hold" if connection == 1 and direction == "down" and message_type(text) in ("ack", "state") else "pass"

    async with MisbehavingProxy(url, lose_the_answer) as proxied:
        bob = new_session(sessions, url, "bob")
        await bob.connect()
        bob_room = await bob.join("lobby")
        updates = Recorder()
        record_room(updates, bob_room)
        alice = new_session(sessions, proxied, "alice", backoff_initial=0.05, command_timeout=1.0)
        await alice.connect()
        room = await asyncio.wait_for(alice.join("lobby"), 10)
        assert room.joined and [p.name for p in room.others()] == ["bob"]
        await wait_until(lambda: sorted(p.name for p in bob_room.participants.values()) == ["alice", "bob"])
        # Bob saw the unanswered alice come and go, then the one who is really there.
        await updates.wait_for(lambda u: u.event is RoomEvent.LEFT)
        await wait_until(lambda: [u.event for u in updates.items if u.event in (RoomEvent.JOINED, RoomEvent.LEFT)]
                         == [RoomEvent.JOINED, RoomEvent.LEFT, RoomEvent.JOINED])


async def test_a_join_cut_off_without_reconnection_fails(url: str, sessions: list[Session]) -> None:
    def drop_joins(connection: int, direction: str, text: str) -> Action:
        return "close" if direction == "up" and message_type(text) == "join" else "pass"

    async with MisbehavingProxy(url, drop_joins) as proxied:
        alice = new_session(sessions, proxied, "alice", reconnect=False)
        await alice.connect()
        with pytest.raises(ConnectionFailed):
            await asyncio.wait_for(alice.join("lobby"), 5)
        assert alice.room is None


async def test_reconnects_and_rejoins_after_the_server_restarts() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    server = RoomServer("127.0.0.1", port)
    await server.start()
    session = Session(url, "alice", backoff_initial=0.05, backoff_max=0.2)
    statuses = record_statuses(session)
    try:
        await session.connect()
        room = await session.join("lobby")
        updates = Recorder()
        record_room(updates, room)
        await server.stop()
        await asyncio.wait_for(_until_status(session, SessionStatus.PENDING), 5)
        server = RoomServer("127.0.0.1", port)
        await server.start()
        state = await updates.wait_for(lambda u: u.event is RoomEvent.STATE, timeout=10)
        assert [p.name for p in state.participants] == ["alice"]
        assert room.joined and session.status is SessionStatus.ESTABLISHED
        assert statuses[:3] == [SessionStatus.PENDING, SessionStatus.ESTABLISHED, SessionStatus.DISCONNECTED]
        assert statuses[-1] is SessionStatus.ESTABLISHED
        assert SessionStatus.PENDING in statuses[3:]
        await room.send_message("back again")
        assert "lobby" in server.registry.rooms
    finally:
        await session.disconnect()
        await server.stop()


async def _until_status(session: Session, status: SessionStatus) -> None:
    reached = asyncio.Event()
    session.on(status, lambda s: reached.set())
    if session.status is not status:
        await reached.wait()


async def test_gives_up_after_the_configured_attempts() -> None:
    port = free_port()
    server = RoomServer("127.0.0.1", port)
    await server.start()
    session = Session(f"ws://127.0.0.1:{port}/ws", "alice", backoff_initial=0.01, max_reconnect_attempts=2)
    await session.connect()
    room = await session.join("lobby")
    failures = Recorder()
    room.on(RoomEvent.FAILED, failures)
    await server.stop()
    failed = await failures.wait_for(lambda u: True, timeout=5)
    assert "lost" in failed.failure.reason
    assert session.status is SessionStatus.FAILED
    assert "gave up after 2" in session.reason
    # Review: the failed room was kept, so once the server was back a join by hand was refused,
    # "already in room 'lobby'", for good.
    assert session.room is None and room.failure is not None
    async with RoomServer("127.0.0.1", port):
        await session.connect()
        again = await session.join("lobby")
        assert again is not room and again.joined and [p.name for p in again.participants.values()] == ["alice"]
        await session.disconnect()


@contextlib.asynccontextmanager
async def server_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """`tuichat serve` in its own process, to freeze or kill; the process and its port."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tuichat", "serve", "--host", "127.0.0.1", "--port", str(port),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stderr is not None
        while b"listening" not in await asyncio.wait_for(process.stderr.readline(), 10):
            pass
        yield process, port
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed by the test, maybe reaped already
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        await process.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="uses SIGSTOP on a server process")
async def test_a_frozen_server_is_noticed_by_heartbeat_and_the_session_recovers() -> None:
    async with server_process() as (process, port):
        session = Session(f"ws://127.0.0.1:{port}/ws", "alice", heartbeat=1.0, backoff_initial=0.05,
                          backoff_max=0.2, connect_timeout=1.0)
        await session.connect()
        room = await session.join("lobby")
        states = Recorder()
        room.on(RoomEvent.STATE, states)
        os.kill(process.pid, signal.SIGSTOP)
        await asyncio.wait_for(_until_status(session, SessionStatus.DISCONNECTED), 5)
        # Said so, not as aiohttp's "No PONG received after 0.5 seconds".
        assert session.reason == "connection lost: the server stopped answering (no reply to a ping within 0.5 s)"
        os.kill(process.pid, signal.SIGCONT)
        await states.wait_for(lambda u: True, timeout=15)
        assert session.status is SessionStatus.ESTABLISHED and room.joined
        await session.disconnect()


async def test_a_killed_server_reads_as_the_connection_dropped() -> None:
    """QA saw "connection closed (code 1006)" and aiohttp's "Cannot write to closing transport"."""
    async with server_process() as (process, port):
        session = Session(f"ws://127.0.0.1:{port}/ws", "alice", heartbeat=1.0, backoff_initial=5.0)
        await session.connect()
        await session.join("lobby")
        process.kill()
        await asyncio.wait_for(_until_status(session, SessionStatus.DISCONNECTED), 5)
        assert session.reason == "connection lost: the connection dropped"
        await session.disconnect()


async def test_the_servers_reason_for_closing_reaches_the_user() -> None:
    """aiohttp hides the close frame's text from ``async for``: the reason was always dropped."""
    port = free_port()
    server = RoomServer("127.0.0.1", port)
    await server.start()
    session = Session(f"ws://127.0.0.1:{port}/ws", "alice", backoff_initial=5.0)
    try:
        await session.connect()
        await session.join("lobby")
        await server.stop()
        await asyncio.wait_for(_until_status(session, SessionStatus.DISCONNECTED), 5)
        assert session.reason == "connection lost: the server closed the connection (server shutting down)"
    finally:
        await session.disconnect()
        await server.stop()


async def test_an_unanswered_rejoin_reconnects_instead_of_sitting_in_no_room(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejoin that times out on a live socket left the room 'joined' with no server membership."""
    from tuichat.server.connection import Connection

    ignore_joins = True
    handle_text = Connection._handle_text

    def slow_server(connection: Connection, data: str) -> None:
        if not (ignore_joins and '"type":"join"' in data.replace(" ", "")):
            handle_text(connection, data)

    port = free_port()
    server = RoomServer("127.0.0.1", port)
    await server.start()
    session = Session(f"ws://127.0.0.1:{port}/ws", "alice", backoff_initial=0.05, backoff_max=0.2,
                      command_timeout=0.5)
    try:
        await session.connect()
        room = await session.join("lobby")
        reasons: list[str] = []
        session.on(SessionStatus.DISCONNECTED, lambda s: reasons.append(s.reason))
        states = Recorder()
        room.on(RoomEvent.STATE, states)
        monkeypatch.setattr(Connection, "_handle_text", slow_server)
        for connection in list(server.connections):
            await connection.ws.close()  # the drop: the session reconnects and asks to rejoin
        await asyncio.wait_for(_until_reason(reasons, "did not answer the rejoin"), 10)
        assert "connection lost: the server did not answer the rejoin within 0.5 s" in reasons
        ignore_joins = False
        state = await states.wait_for(lambda u: True, timeout=10)
        assert [p.name for p in state.participants] == ["alice"]
        assert room.joined and "lobby" in server.registry.rooms
    finally:
        await session.disconnect()
        await server.stop()


async def _until_reason(reasons: list[str], text: str) -> None:
    while not any(text in reason for reason in reasons):
        await asyncio.sleep(0.02)


async def test_commands_before_connecting_fail_clearly(url: str) -> None:
    session = Session(url, "alice")
    with pytest.raises(ConnectionFailed, match="session is new"):
        await session.join("lobby")


def test_options_are_finite_by_default() -> None:
    options = SessionOptions()
    assert options.connect_timeout < 60 and options.command_timeout < 60 and options.backoff_max < 60


async def test_participant_named_follows_the_servers_sameness_of_names(url: str, sessions: list[Session]) -> None:
    """Review: the server holds 'José' composed and decomposed (as macOS types it) to be one name,
    and fullwidth 'ｂｏｂ' to be 'bob'; `/msg José hi` found nobody (the client compared casefold())."""
    import unicodedata

    await joined(sessions, url, unicodedata.normalize("NFD", "José"))
    await joined(sessions, url, "ｂｏｂ")
    room = await joined(sessions, url, "ana")
    jose, bob = room.participant_named("José"), room.participant_named("BOB")
    assert jose is not None and jose.name == unicodedata.normalize("NFD", "José")
    assert bob is not None and bob.name == "ｂｏｂ"
    assert room.participant_named("Jose") is None


async def test_what_comes_with_state_reaches_those_who_listen_after_join(
        server: RoomServer, url: str, sessions: list[Session]) -> None:
    """Review: the server sends STATE, the join's ACK and what happened next in one burst, all read
    before join() returned the room: a private message sent to someone as they joined reached no
    callback and no iterator (and private messages are in no history). The proxy delivers the
    three together, as a busy server does."""
    alice = await joined(sessions, url, "alice")
    public = False  # the last round: a public welcome, to a newcomer who never listens

    def welcome(update: RoomUpdate) -> None:
        newcomer = None if public else alice.participants[update.participant.id]  # type: ignore[union-attr]
        asyncio.get_running_loop().create_task(alice.send_message("welcome!", to=newcomer))

    alice.on(RoomEvent.JOINED, welcome)
    welcomed = False

    def burst(_connection: int, direction: str, text: str) -> Action:
        nonlocal welcomed
        if direction == "down" and not welcomed:
            if message_type(text) in ("state", "ack"):
                return "defer"
            welcomed = message_type(text) == "message"
        return "pass"

    async with MisbehavingProxy(url, burst) as proxied:
        bob = new_session(sessions, proxied, "bob")
        await bob.connect()
        for way_in in ("awaited", "in a task"):  # join() awaited directly, or wrapped (wait_for does)
            welcomed = False
            if way_in == "awaited":
                room = await bob.join("lobby")
            else:
                room = await asyncio.create_task(bob.join("lobby"))
            messages: list[RoomUpdate] = []
            room.on(RoomEvent.MESSAGE, messages.append)
            iterator = room.events()
            assert welcomed, "the proxy did not see the message come after STATE"
            await wait_until(lambda: bool(messages), timeout=3)  # noqa: B023 - awaited in this iteration
            message = messages[0].message
            assert message is not None and message.text == "welcome!" and message.private, way_in
            async with asyncio.timeout(3):
                update = await anext(iterator)
            assert update.event is RoomEvent.MESSAGE and update.message == message
            await iterator.aclose()
            await room.leave()
        # Nobody listens: what came with STATE is applied all the same, a moment later.
        welcomed, public = False, True
        room = await bob.join("lobby")
        assert welcomed and not room.history  # held: the room reads as STATE left it
        await wait_until(lambda: [m.text for m in room.history] == ["welcome!"], timeout=3)


async def test_a_join_given_up_midway_leaves_the_room_it_may_have_entered(
        url: str, sessions: list[Session]) -> None:
    """Review: a join() cancelled after its Join went out (a caller's timeout, a UI's cancel) left
    us in the room on the server, a ghost to the others, and every later join() was refused."""
    bob = await joined(sessions, url, "bob")
    updates = Recorder()
    record_room(updates, bob)
    alice = new_session(sessions, url, "alice")
    await alice.connect()
    join = asyncio.create_task(alice.join("lobby"))
    await wait_until(lambda: bool(alice._pending))  # the Join is on the wire
    join.cancel()
    with pytest.raises(asyncio.CancelledError):
        await join
    assert alice.room is None
    left = await updates.wait_for(lambda u: u.event is RoomEvent.LEFT, timeout=5)
    assert left.participant is not None and left.participant.name == "alice"
    assert [p.name for p in bob.participants.values()] == ["bob"]
    room = await alice.join("lobby")  # waits for that Leave to go first
    assert room.joined and sorted(p.name for p in room.participants.values()) == ["alice", "bob"]


async def test_a_frame_the_client_cannot_parse_does_not_stop_it_reading(
        server: RoomServer, url: str, sessions: list[Session]) -> None:
    """Review: a server's frame nested 30,000 deep (in a field this client would skip) raised
    RecursionError in the reader: the session said ESTABLISHED for ever and every command timed out."""
    room = await joined(sessions, url, "alice")
    connection = next(c for c in server.connections if c.member is not None)
    await connection.ws.send_str('{"type": "message", "x": ' + "[" * 30000 + "]" * 30000 + "}")
    await connection.ws.send_str('{"type": "nonsense"}')  # the reader is past the bad frame
    await room.send_message("still there?")  # answered: the reader lives
    assert room.session.status is SessionStatus.ESTABLISHED
    await wait_until(lambda: [m.text for m in room.history] == ["still there?"])


async def test_what_waits_for_a_listener_is_bounded() -> None:
    """Events held between STATE and the first listener are a queue like any other: a flood in that
    moment is applied at once past EVENT_QUEUE_SIZE instead of piling up."""
    from tuichat.client.room import EVENT_QUEUE_SIZE
    from tuichat.protocol.messages import Joined, ParticipantInfo, State

    room = Room(None, "lobby")  # type: ignore[arg-type]  # the session is not used by what is tested
    me = ParticipantInfo(id="p1", name="me")
    room._handle(State(room="lobby", you=me, participants=[me], history=[], resume="r"))
    for n in range(EVENT_QUEUE_SIZE):
        room._handle(Joined(participant=ParticipantInfo(id=f"q{n}", name=f"n{n}")))
    assert len(room.participants) == 1  # held: the room reads as STATE left it
    room._handle(Joined(participant=ParticipantInfo(id="last", name="last")))
    assert len(room.participants) == EVENT_QUEUE_SIZE + 2 and room._held is None
