"""The server over real WebSockets: garbage, oversized frames, floods, slow and vanished clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode

from tests.conftest import wait_until
from tuichat.client import Session
from tuichat.errors import ConnectionFailed
from tuichat.protocol.limits import FRAME_MAX_BYTES, MESSAGE_MAX_BYTES, RATE_BURST
from tuichat.server import RoomServer


class RawClient:
    """A hand-driven protocol client, to send what a well-behaved client never would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 1

    async def send(self, **fields: Any) -> int:
        command_id = self.next_id
        self.next_id += 1
        await self.ws.send_str(json.dumps({"id": command_id, **fields}))
        return command_id

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)  # type: ignore[no-any-return]

    async def receive_until(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.receive(deadline - time.monotonic())
            if message["type"] == type_:
                return message

    async def join(self, room: str, name: str) -> dict[str, Any]:
        await self.send(type="join", room=room, name=name)
        state = await self.receive()
        assert state["type"] == "state", state
        assert (await self.receive())["type"] == "ack"
        return state


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def connect(http: aiohttp.ClientSession, url: str) -> Any:
    async def open_client(**kwargs: Any) -> RawClient:
        return RawClient(await http.ws_connect(url, **kwargs))

    return open_client


async def test_garbage_gets_an_error_and_the_connection_stays_usable(connect: Any) -> None:
    client = await connect()
    for frame in ["not json", "[]", '{"type":"join"}', '{"type":"dance","id":9}', "\x00\xff"]:
        await client.ws.send_str(frame)
        reply = await client.receive()
        assert reply["type"] == "error" and reply["code"] == "bad_message" and reply["reason"]
    await client.ws.send_bytes(b"\x01\x02")
    assert (await client.receive())["reason"] == "binary frames are not part of the protocol"
    state = await client.join("lobby", "alice")
    assert state["you"]["name"] == "alice"


async def test_binary_frames_count_against_the_rate_like_unreadable_text(connect: Any) -> None:
    """Review: binary frames were answered one by one and never counted (the README says unreadable
    frames count as call control)."""
    client = await connect()
    for _ in range(RATE_BURST * 3):
        await client.ws.send_bytes(b"x")
    codes = [(await client.receive())["code"] for _ in range(RATE_BURST * 3)]
    assert codes.count("rate_limited") >= RATE_BURST and codes[0] == "bad_message"


async def test_command_errors_carry_the_command_id(connect: Any) -> None:
    client = await connect()
    command_id = await client.send(type="message", text="hello")
    reply = await client.receive()
    assert reply == {"type": "error", "id": command_id, "code": "not_in_room", "reason": "join a room first"}


async def test_oversized_message_is_refused_and_connection_survives(connect: Any) -> None:
    client = await connect()
    await client.join("lobby", "alice")
    await client.ws.send_str(json.dumps({"type": "message", "id": 50, "text": "x" * MESSAGE_MAX_BYTES}))
    reply = await client.receive()
    assert reply["code"] == "too_large"
    await client.send(type="message", text="still here")
    assert (await client.receive_until("message"))["message"]["text"] == "still here"


async def test_frame_over_the_hard_limit_closes_with_1009(connect: Any) -> None:
    client = await connect(max_msg_size=0)
    await client.ws.send_str("x" * (FRAME_MAX_BYTES + 1))
    message = await client.ws.receive(5)
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert message.data == 1009


async def test_long_text_and_escape_sequences_are_refused_with_reasons(connect: Any) -> None:
    client = await connect()
    await client.join("lobby", "alice")
    await client.send(type="message", text="x" * 2001)
    assert "limit is 2000" in (await client.receive())["reason"]
    await client.send(type="message", text="\x1b]0;owned\x07")
    reply = await client.receive()
    assert reply["code"] == "invalid_text" and "U+001B" in reply["reason"]


async def test_deeply_nested_json_is_a_bad_message_and_the_sender_stays(connect: Any) -> None:
    """QA: 60 KB of nested arrays (under the message limit) raised RecursionError out of the codec:
    the connection ended with a traceback and the sender was dropped from the room."""
    alice, bob = await connect(), await connect()
    await alice.join("lobby", "alice")
    await bob.join("lobby", "bob")
    assert (await alice.receive())["type"] == "joined"
    await bob.ws.send_str("[" * 30_000 + "]" * 30_000)
    assert await bob.receive() == {"type": "error", "id": None, "code": "bad_message",
                                   "reason": "not valid JSON: arrays or objects are nested too deeply"}
    await bob.send(type="message", text="still here")
    event = await alice.receive()  # not LEFT: bob never went
    assert event["type"] == "message" and event["message"]["text"] == "still here", event


async def test_a_lone_surrogate_is_refused_with_the_commands_id(connect: Any) -> None:
    """QA: "\\ud83d" (JSON.stringify of an emoji cut in two) got "not valid JSON: Input data was
    truncated" without the id, so the sender's command waited for an answer that never came."""
    client = await connect()
    await client.join("lobby", "alice")
    await client.ws.send_str('{"type": "message", "id": 50, "text": "cut emoji \\ud83d"}')
    reply = await client.receive()
    assert reply == {"type": "error", "id": 50, "code": "bad_message", "reason": "not valid text: a lone "
                     "UTF-16 surrogate (half of a character, such as an emoji cut in two)"}
    await client.send(type="message", text="whole emoji \U0001f600")
    assert (await client.receive_until("message"))["message"]["text"] == "whole emoji \U0001f600"


async def test_a_flood_is_rate_limited_without_disturbing_others(connect: Any) -> None:
    flooder, bystander = await connect(), await connect()
    await flooder.join("lobby", "flooder")
    await bystander.join("lobby", "bystander")
    for n in range(RATE_BURST * 3):
        await flooder.send(type="message", text=f"spam {n}")
    answers: list[dict[str, Any]] = []
    while len(answers) < RATE_BURST * 3:  # every command is answered, by an ack or an error
        reply = await flooder.receive()
        if reply["type"] in ("ack", "error"):
            answers.append(reply)
    limited = [r for r in answers if r["type"] == "error" and r["code"] == "rate_limited"]
    assert len(limited) >= RATE_BURST  # most of the excess refused
    assert limited[0]["reason"] == "too many commands; slow down"
    # The bystander gets only what was accepted, and can still talk at once.
    started = time.monotonic()
    await bystander.send(type="message", text="can I speak?")
    mine = await bystander.receive_until("ack")
    assert mine["type"] == "ack" and time.monotonic() - started < 1.0


async def test_a_chat_flood_does_not_refuse_the_same_clients_call_control(connect: Any) -> None:
    """QA: a bot flooding chat had its media restart refused (rate_limited) and its call stayed FAILED."""
    flooder = await connect()
    await flooder.join("lobby", "flooder")
    for n in range(RATE_BURST * 2):
        await flooder.send(type="message", text=f"spam {n}")
    answers: list[dict[str, Any]] = []
    while len(answers) < RATE_BURST * 2:
        reply = await flooder.receive()
        if reply["type"] in ("ack", "error"):
            answers.append(reply)
    assert any(r["type"] == "error" and r["code"] == "rate_limited" for r in answers)  # chat is spent
    command = await flooder.send(type="mute", audio=True)
    reply = await flooder.receive()
    while reply.get("id") != command:  # the room's MUTED event may come first
        reply = await flooder.receive()
    assert reply == {"type": "ack", "id": command}, reply


async def test_views_kept_for_people_who_left_are_forgotten(connect: Any, server: RoomServer) -> None:
    """A long call with people coming and going left one view per departed id on the server."""
    viewer = await connect()
    await viewer.join("lobby", "viewer")
    for n in range(3):
        guest = await connect()
        state = await guest.join("lobby", f"guest{n}")
        command = await viewer.send(type="view", width=40, height=30, fps=5, participant=state["you"]["id"])
        while (await viewer.receive()).get("id") != command:
            pass
        await guest.ws.close()
        await viewer.receive_until("left")
    command = await viewer.send(type="view", width=80, height=60, fps=15)
    while (await viewer.receive()).get("id") != command:
        pass
    (connection,) = [c for c in server.connections if c.member is not None]
    assert connection.views.per_participant == {}
    assert connection.views.default.width == 80


async def test_a_silent_client_is_dropped_and_left_is_sent_within_ten_seconds(connect: Any) -> None:
    watcher = await connect()
    await watcher.join("lobby", "watcher")
    frozen = await connect(autoping=False, heartbeat=None)
    await frozen.join("lobby", "frozen")
    await watcher.receive_until("joined")
    started = time.monotonic()
    # ``frozen`` never reads again, so it never answers the server's pings.
    left = await watcher.receive_until("left", timeout=10)
    assert left["participant"]["name"] == "frozen"
    assert time.monotonic() - started < 10


async def test_a_clean_close_is_leaving_and_a_dropped_connection_is_not(connect: Any) -> None:
    """A browser tab closing sends close code 1001 (a client quitting, 1000): that is leaving, not
    a lost connection; a TCP connection that just goes away is."""
    watcher = await connect()
    await watcher.join("lobby", "watcher")
    for name, code in (("tab", WSCloseCode.GOING_AWAY), ("quitter", WSCloseCode.OK)):
        client = await connect()
        await client.join("lobby", name)
        await client.ws.close(code=code)
        left = await watcher.receive_until("left")
        assert (left["participant"]["name"], left["reason"]) == (name, "left")
    dropped = await connect()
    await dropped.join("lobby", "dropped")
    transport = dropped.ws._response.connection.transport  # the TCP connection under the WebSocket
    transport.abort()
    left = await watcher.receive_until("left")
    assert (left["participant"]["name"], left["reason"]) == ("dropped", "connection lost")


async def test_a_client_that_does_not_read_is_cut_off_not_buffered(server: RoomServer, connect: Any) -> None:
    talker = await connect()
    await talker.join("lobby", "talker")
    sluggard = await connect()
    await sluggard.join("lobby", "sluggard")
    connection = next(c for c in server.connections if c.member and c.member.name == "sluggard")
    # Fill the sluggard's queue directly: the network would take megabytes to do the same.
    from tuichat.protocol import Ack
    for n in range(server.limits.outbox_size + 10):
        connection.send(Ack(id=n))
    await wait_until(lambda: "sluggard" not in [m.name for m in server.registry.rooms["lobby"]])
    left = await talker.receive_until("left")
    assert left["reason"] == "too slow to read messages"


async def test_what_waits_for_a_client_that_does_not_read_is_bounded_in_bytes(
        server: RoomServer, connect: Any) -> None:
    """Adversarial QA: 512 messages of up to 60 KB each pinned ~60 MB per client that never read."""
    from tuichat.protocol import ChatMessage, MessageEvent, Sender

    talker = await connect()
    await talker.join("lobby", "talker")
    sluggard = await connect()
    await sluggard.join("lobby", "sluggard")
    connection = next(c for c in server.connections if c.member and c.member.name == "sluggard")
    big = MessageEvent(message=ChatMessage(id=1, ts=0.0, sender=Sender(id="p1", name="talker"), text="🙂" * 2000))
    count = server.limits.outbox_bytes // 8000 + 10  # ~8 KB each: well under the message count limit
    assert count < server.limits.outbox_size
    for _ in range(count):
        connection.send(big)
    await wait_until(lambda: "sluggard" not in [m.name for m in server.registry.rooms.get("lobby", ())])
    left = await talker.receive_until("left")
    assert left["reason"] == "too slow to read messages"


async def test_server_logs_joins_and_leaves(connect: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="tuichat")
    client = await connect()
    await client.join("lobby", "alice")
    await client.ws.close()
    await wait_until(lambda: any("left room lobby" in r.message for r in caplog.records))
    assert any("alice (p" in r.message and "joined room lobby" in r.message for r in caplog.records)
    assert any(r.message.startswith("connection from 127.0.0.1") for r in caplog.records)


async def test_stop_is_idempotent_and_closes_clients(connect: Any, server: RoomServer) -> None:
    client = await connect()
    await client.join("lobby", "alice")
    await server.stop()
    message = await client.ws.receive(5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await server.stop()


async def test_index_page_names_the_connect_command(http: aiohttp.ClientSession, server: RoomServer) -> None:
    async with http.get(f"http://127.0.0.1:{server.port}/") as response:
        assert response.status == 200
        assert "tuichat connect" in await response.text()


async def test_many_rooms_are_independent(connect: Any) -> None:
    clients = [await connect() for _ in range(4)]
    for n, client in enumerate(clients):
        await client.join(f"room{n % 2}", f"user{n}")
    await clients[0].send(type="message", text="only room0")
    await clients[0].receive_until("message")
    got = await clients[2].receive_until("message")
    assert got["message"]["text"] == "only room0"
    with pytest.raises(asyncio.TimeoutError):
        await clients[1].receive_until("message", timeout=0.3)


def _lan_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            return str(probe.getsockname()[0])
        except OSError:
            return None


async def test_one_address_cannot_take_every_connection() -> None:
    """Adversarial QA: 3000 idle sockets from one machine were all accepted (file descriptors run
    out long before that under the usual limit of 1024)."""
    from tuichat.server import ServerLimits

    address = _lan_address()
    if address is None or address.startswith("127."):
        pytest.skip("needs an address that is not loopback")
    limits = ServerLimits(max_connections_per_address=2, max_connections=3)
    async with RoomServer("0.0.0.0", 0, limits=limits) as server, aiohttp.ClientSession() as http:
        url = f"ws://{address}:{server.port}/ws"
        first, second = await http.ws_connect(url), await http.ws_connect(url)
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(url)
        assert caught.value.status == 503
        # Loopback (a reverse proxy on this machine) is not counted per address, only in all.
        local = await http.ws_connect(f"ws://127.0.0.1:{server.port}/ws")
        session = Session(f"ws://127.0.0.1:{server.port}/ws", "late", reconnect=False)
        with pytest.raises(ConnectionFailed) as failed:
            await session.connect()
        assert "too busy to take another connection (HTTP 503)" in str(failed.value)
        assert not failed.value.permanent  # the client tries again later
        for ws in (first, second, local):
            await ws.close()


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float) -> float:
    """Seconds until the server closes the connection (reading what it sent before)."""
    started = time.monotonic()
    while await asyncio.wait_for(reader.read(65536), timeout):
        pass
    return time.monotonic() - started


async def test_connections_that_send_no_request_are_closed() -> None:
    """aiohttp waits for a request's headers for ever: idle and trickling sockets (slowloris) held
    file descriptors until the server had none left. WebSockets and slow downloads are not touched."""
    from tuichat.server import ServerLimits

    limits = ServerLimits(request_timeout=1.0)
    async with RoomServer("127.0.0.1", 0, limits=limits) as server, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"ws://127.0.0.1:{server.port}/ws")
        idle_reader, _idle = await asyncio.open_connection("127.0.0.1", server.port)  # kept: GC would close it
        trickle_reader, trickle = await asyncio.open_connection("127.0.0.1", server.port)

        async def trickle_headers() -> None:
            trickle.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            for _ in range(40):
                await asyncio.sleep(0.1)
                trickle.write(b"X")
                await trickle.drain()

        trickling = asyncio.create_task(trickle_headers())
        # Kept alive after a whole request, then silent.
        kept_reader, kept = await asyncio.open_connection("127.0.0.1", server.port)
        kept.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        waits = await asyncio.gather(_closed_by_server(idle_reader, 5), _closed_by_server(trickle_reader, 5),
                                     _closed_by_server(kept_reader, 5))
        assert all(0.9 <= wait < 3.5 for wait in waits), waits
        trickling.cancel()
        # A response still on its way is not cut off: the wait starts once it is out.
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", server.port)
        for n in range(30):
            slow.write(f"GET /static/main.js?{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await slow.drain()
        await asyncio.sleep(2.0)  # nothing read meanwhile: the responses wait in the buffers
        body = b""
        while chunk := await asyncio.wait_for(slow_reader.read(65536), 5):
            body += chunk
        assert body.count(b"HTTP/1.1 200 OK") == 30
        # The WebSocket, silent all along, was left alone.
        client = RawClient(ws)
        await client.send(type="join", room="lobby", name="alice")
        await client.receive_until("state")
        await ws.close()


async def test_one_address_cannot_hold_many_connections_without_a_request() -> None:
    from tuichat.server import ServerLimits

    address = _lan_address()
    if address is None or address.startswith("127."):
        pytest.skip("needs an address that is not loopback")
    limits = ServerLimits(request_timeout=30.0, max_waiting_per_address=4)
    async with RoomServer("0.0.0.0", 0, limits=limits) as server:
        opened = [await asyncio.open_connection(address, server.port) for _ in range(10)]
        closed = await asyncio.gather(*(_closed_by_server(reader, 3) for reader, _writer in opened),
                                      return_exceptions=True)
        assert sum(isinstance(wait, float) for wait in closed) == 6, closed  # the newest six
        assert all(isinstance(wait, TimeoutError) for wait in closed[:4]), closed
        # Loopback (a reverse proxy on this machine) speaks for many: only the timeout applies.
        local = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(10)]
        still_open = await asyncio.gather(*(_closed_by_server(reader, 2) for reader, _writer in local),
                                          return_exceptions=True)
        assert all(isinstance(wait, TimeoutError) for wait in still_open), still_open


async def test_someone_dropped_for_not_reading_mid_broadcast_is_announced_in_order(
        server: RoomServer, connect: Any) -> None:
    """Review: a member whose outbox overflowed on a broadcast left right there, inside it: those
    after it in the room got UNPUBLISHED and LEFT, then the rest of the broadcast, PUBLISHED for
    someone gone (clients added them back to the room for good)."""
    amy, xan, bea = await connect(), await connect(), await connect()
    for client, name in ((amy, "amy"), (xan, "xan"), (bea, "bea")):
        await client.join("lobby", name)
    xan_id = next(c.member.id for c in server.connections if c.member is not None and c.member.name == "xan")
    slow = next(c for c in server.connections if c.member is not None and c.member.id == xan_id)
    slow.limits = replace(slow.limits, outbox_bytes=0)  # xan stops reading: the next message overflows
    await xan.send(type="publish", audio=True, video=True)
    about_xan: list[str] = []
    while "left" not in about_xan:
        event = await bea.receive()
        if event.get("participant", {}).get("id") == xan_id:
            about_xan.append(event["type"])
    assert about_xan == ["published", "unpublished", "left"]
