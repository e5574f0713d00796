"""Media signalling messages: golden wire forms, precise errors, and the server's refusals."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tuichat.errors import ProtocolError
from tuichat.protocol import (
    Answer,
    BadMessage,
    ErrorCode,
    Offer,
    ParticipantInfo,
    SlotAssignment,
    State,
    Streams,
    View,
    decode_command,
    decode_server_message,
    encode,
)

GOLDEN_COMMANDS = [
    ('{"type":"offer","id":5,"sdp":"v=0\\r\\n"}', Offer(id=5, sdp="v=0\r\n")),
    ('{"type":"view","id":6,"width":160,"height":90,"fps":15,"participant":null}',
     View(id=6, width=160, height=90, fps=15)),
    ('{"type":"view","id":7,"width":1920,"height":1080,"fps":30,"participant":"p2"}',
     View(id=7, width=1920, height=1080, fps=30, participant="p2")),
]

GOLDEN_EVENTS = [
    ('{"type":"answer","sdp":"v=0\\r\\n"}', Answer(sdp="v=0\r\n")),
    ('{"type":"streams","assignments":[{"participant":"p1","slot":0},{"participant":"p3","slot":1}]}',
     Streams(assignments=[SlotAssignment(participant="p1", slot=0), SlotAssignment(participant="p3", slot=1)])),
    ('{"type":"streams","assignments":[]}', Streams(assignments=[])),
    ('{"type":"state","room":"r","you":{"id":"p1","name":"a","stream":null},"participants":[],"history":[],'
     '"resume":"t","media_slots":3}',
     State(room="r", you=ParticipantInfo(id="p1", name="a"), participants=[], history=[], resume="t",
           media_slots=3)),
]


@pytest.mark.parametrize(("wire", "message"), GOLDEN_COMMANDS)
def test_commands_match_their_golden_wire_form(wire: str, message: object) -> None:
    assert encode(message) == wire  # type: ignore[arg-type]
    assert decode_command(wire) == message


@pytest.mark.parametrize(("wire", "message"), GOLDEN_EVENTS)
def test_events_match_their_golden_wire_form(wire: str, message: object) -> None:
    assert encode(message) == wire  # type: ignore[arg-type]
    assert decode_server_message(wire) == message


def test_a_client_reads_events_from_a_newer_server_with_fields_it_does_not_know() -> None:
    """The tolerant reader: a server may add a field (as ``public_url`` was added to STATE) without
    cutting older clients off; commands stay strict (see test_protocol)."""
    wire = ('{"type":"state","room":"r","you":{"id":"p1","name":"a","avatar":"x.png"},"participants":[],'
            '"history":[{"id":1,"ts":1.5,"from":{"id":"p2","name":"b","badge":1},"text":"hi","edited":false}],'
            '"resume":"t","theme":"dark"}')
    state = decode_server_message(wire)
    assert isinstance(state, State) and state.you.name == "a" and state.history[0].text == "hi"
    streams = decode_server_message('{"type":"streams","assignments":[{"participant":"p1","slot":0,"layer":2}]}')
    assert isinstance(streams, Streams) and streams.assignments[0].slot == 0
    with pytest.raises(ProtocolError):  # a wrong type is still an error, not a guess
        decode_server_message('{"type":"streams","assignments":[{"participant":"p1","slot":"zero"}]}')


def test_state_without_media_slots_defaults_to_seven() -> None:
    wire = '{"type":"state","room":"r","you":{"id":"p1","name":"a"},"participants":[],"history":[],"resume":"t"}'
    state = decode_server_message(wire)
    assert isinstance(state, State) and state.media_slots == 7


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"width": 15, "height": 90, "fps": 15}, "Expected `int` >= 16 - at `$.width`"),
        ({"width": 1921, "height": 90, "fps": 15}, "Expected `int` <= 1920 - at `$.width`"),
        ({"width": 160, "height": 1081, "fps": 15}, "Expected `int` <= 1080 - at `$.height`"),
        ({"width": 160, "height": 8, "fps": 15}, "Expected `int` >= 16 - at `$.height`"),
        ({"width": 160, "height": 90, "fps": 0}, "Expected `int` >= 1 - at `$.fps`"),
        ({"width": 160, "height": 90, "fps": 31}, "Expected `int` <= 30 - at `$.fps`"),
        ({"width": 160.5, "height": 90, "fps": 15}, "Expected `int`, got `float` - at `$.width`"),
        ({"width": 160, "height": 90}, "Object missing required field `fps`"),
        ({"width": 160, "height": 90, "fps": 15, "participant": 3},
         "Expected `str | null`, got `int` - at `$.participant`"),
    ],
)
def test_bad_views_get_precise_errors(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(BadMessage) as caught:
        decode_command(json.dumps({"type": "view", "id": 9, **fields}))
    assert caught.value.code is ErrorCode.BAD_MESSAGE
    assert caught.value.command_id == 9
    assert caught.value.reason == f"invalid 'view' message: {reason}"


def test_empty_offer_is_refused() -> None:
    with pytest.raises(BadMessage) as caught:
        decode_command('{"type":"offer","id":1,"sdp":""}')
    assert caught.value.reason == "invalid 'offer' message: Expected `str` of length >= 1 - at `$.sdp`"


async def _exchange(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, object]) -> list[dict[str, object]]:
    """Send a frame; collect replies up to and including the one carrying its id."""
    await ws.send_str(json.dumps(frame))
    replies = []
    while True:
        reply = json.loads((await ws.receive(timeout=10)).data)
        replies.append(reply)
        if reply.get("id") == frame["id"]:
            return replies


async def test_server_refuses_bad_offers_and_views(url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        [reply] = await _exchange(ws, {"type": "offer", "id": 1, "sdp": "v=0"})
        assert reply["code"] == "not_in_room"
        replies = await _exchange(ws, {"type": "join", "id": 2, "room": "r", "name": "alice"})
        assert replies[0]["type"] == "state" and replies[0]["media_slots"] == 7
        [reply] = await _exchange(ws, {"type": "offer", "id": 3, "sdp": "v=0\r\n"})
        assert reply["type"] == "error" and reply["code"] == "media_failed"
        assert "sendonly video and sendonly audio" in reply["reason"]
        [reply] = await _exchange(ws, {"type": "view", "id": 4, "width": 160, "height": 90, "fps": 15,
                                       "participant": "p999"})
        assert reply == {"type": "error", "code": "unknown_participant",
                         "reason": "nobody with id 'p999' is in this room", "id": 4}
        [reply] = await _exchange(ws, {"type": "view", "id": 5, "width": 160, "height": 90, "fps": 15})
        assert reply == {"type": "ack", "id": 5}


def _hostile_offer(slots: int = 1, *, ice: bool = True) -> str:
    def m_line(kind: str, direction: str, mid: int) -> str:
        pt, codec = ("96", "VP8/90000") if kind == "video" else ("111", "opus/48000/2")
        line = (f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na={direction}\r\n"
                f"a=rtcp-mux\r\na=rtpmap:{pt} {codec}\r\n")
        if ice:
            line += "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
        return line + "a=fingerprint:sha-256 " + ":".join(["AA"] * 32) + "\r\na=setup:actpass\r\n"

    lines = [m_line("video", "sendonly", 0), m_line("audio", "sendonly", 1)]
    for k in range(slots):
        lines += [m_line("video", "recvonly", 2 + 2 * k), m_line("audio", "recvonly", 3 + 2 * k)]
    return "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "".join(lines)


async def test_hostile_offers_get_reasons_and_no_tracebacks(url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Adversarial QA: duplicate mids raised IndexError ('list index out of range' to the client),
    an offer aiortc could not use logged a traceback each time, and a candidate it could not
    parse gave an empty reason."""
    caplog.set_level("INFO", logger="tuichat")
    offers = {
        "duplicate mids": (_hostile_offer().replace("a=mid:2", "a=mid:0"), "its own a=mid"),
        "no ICE credentials": (_hostile_offer(ice=False), "the offer cannot be used"),
        "data channels": (_hostile_offer() + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                          "c=IN IP4 0.0.0.0\r\na=mid:x\r\n", "only audio and video"),
        "a candidate that is not one": (
            _hostile_offer().replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\na=candidate:x y z\r\n"),
            "unreadable SDP offer: "),
    }
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await _exchange(ws, {"type": "join", "id": 1, "room": "r", "name": "mallory"})
        for n, (label, (sdp, expected)) in enumerate(offers.items(), start=2):
            replies = await _exchange(ws, {"type": "offer", "id": n, "sdp": sdp})
            reply = replies[-1]
            assert reply["type"] == "error" and reply["code"] == "media_failed", (label, reply)
            assert expected in reply["reason"] and not reply["reason"].endswith(": "), (label, reply)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
