"""Received bit rates per stream through the room server, normal and preview viewers at once.

One publisher (a 640×480 test pattern, or ``--clip PATH`` played as a camera, plus a tone) and three
viewers in the same room: ``normal`` (320×180 at 15 fps), ``preview`` (the same view with preview
on) and ``baseline`` (the normal view, with the server's slot encoders swapped back to aiortc's
stock VP8 and Opus encoders: aiortc's default behaviour, in the same run). The server runs in this
process (so the baseline viewer's senders can be reached). After a warm-up, each viewer's received
kbps are measured: video and audio RTP payload, this participant's packets on the wire (RTP headers,
SRTP tag, IP/UDP) and everything its peer connection received (RTCP of idle slots, STUN included).

    python bench/network.py                                   # 5 s warm-up, 20 s measured
    python bench/network.py --clip bench/clips/webcam.mp4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any

from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from tuichat.client import Session
from tuichat.client.call import PUBLISH_AUDIO_BPS, PUBLISH_VIDEO, Call
from tuichat.client.stream import PlayStatus
from tuichat.media import AudioDrain, FileVideoTrack, TestPatternTrack, ToneTrack
from tuichat.protocol.limits import PREVIEW_MAX_KBPS
from tuichat.rtc.encoders import install_encoder
from tuichat.rtc.wire import SsrcBytes, connection_bytes, sent_payload_bytes
from tuichat.server import RoomServer

NORMAL_TARGET_KBPS = 300


class Viewer:
    def __init__(self, name: str, call: Call) -> None:
        self.name, self.call = name, call
        assert call.pc is not None
        self.pc = call.pc
        self.ssrc = SsrcBytes(call.pc)

    def _slot(self) -> Any:
        stream = next(iter(self.call.streams.values()))
        return stream, self.call._slots[stream.slot]

    async def snapshot(self) -> tuple[float, int, int, int, int, int]:
        stream, slot = self._slot()
        return (time.monotonic(), slot.counter.bytes, slot.audio_counter.bytes,
                self.ssrc.of(slot.video.receiver, slot.audio.receiver), await connection_bytes(self.pc),
                stream.frames_received)


async def run(seconds: float, warmup: float, clip: str | None) -> int:
    server = RoomServer("127.0.0.1", 0)
    await server.start()
    url = f"ws://127.0.0.1:{server.port}/ws"
    video: Any = FileVideoTrack(clip) if clip else TestPatternTrack(640, 480, 15, label="network")
    video_size = (640, 480)  # the test pattern's, and the bench clips'
    tone = ToneTrack()
    sessions: list[Session] = []
    calls: list[Call] = []
    drains: list[AudioDrain] = []
    try:
        async def join(name: str, **kwargs: Any) -> Call:
            session = Session(url, name)
            sessions.append(session)
            await session.connect()
            room = await session.join("network")
            drain = AudioDrain()
            drains.append(drain)
            call = Call(room, audio_sink=drain, **kwargs)
            calls.append(call)
            await asyncio.wait_for(call.start(), 15)
            return call

        await join("camera", video=video, audio=tone)
        viewers = [Viewer("normal", await join("normal", view=(320, 180, 15))),
                   Viewer("preview", await join("preview", view=(320, 180, 15), preview=True)),
                   Viewer("baseline", await join("baseline", view=(320, 180, 15)))]
        # aiortc's default behaviour for the baseline viewer: stock encoders on its server-side senders.
        baseline = server.media.sessions[calls[-1].room.me.id]
        transceivers = baseline.pc.getTransceivers()
        for k in range(len(baseline.slot_video)):
            install_encoder(transceivers[2 + 2 * k].sender, Vp8Encoder())
            install_encoder(transceivers[3 + 2 * k].sender, OpusEncoder())

        async def all_playing() -> None:
            while not all(any(s.status is PlayStatus.PLAYING for s in v.call.streams.values()) for v in viewers):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(all_playing(), 15)
        await asyncio.sleep(warmup)
        before = [await v.snapshot() for v in viewers]
        publisher = calls[0].pc
        assert publisher is not None
        sent_before, sent_t0 = await sent_payload_bytes(publisher), time.monotonic()
        await asyncio.sleep(seconds)
        after = [await v.snapshot() for v in viewers]
        sent_after, sent_span = await sent_payload_bytes(publisher), time.monotonic() - sent_t0
        sizes = {v.name: v._slot()[0].size for v in viewers}
    finally:
        for call in calls:
            with contextlib.suppress(Exception):
                await call.close()
        for drain in drains:
            await drain.stop()
        video.stop()
        tone.stop()
        for session in sessions:
            await session.disconnect()
        await server.stop()

    source = clip or "test pattern 640x480"
    print(f"source: {source} at 15 fps; measured {seconds:g} s after a {warmup:g} s warm-up; view 320x180@15")
    print(f"{'viewer':<9} {'size':>8} {'fps':>5} {'video':>7} {'audio':>7} {'wire':>7} {'conn.':>7}  (kbps; "
          "video/audio: RTP payload; wire: this participant's packets with all headers; conn.: all received)")
    rates: dict[str, tuple[float, float, float, float]] = {}
    for v, b, a in zip(viewers, before, after, strict=True):
        span = a[0] - b[0]
        k = 8 / 1000 / span
        r = ((a[1] - b[1]) * k, (a[2] - b[2]) * k, (a[3] - b[3]) * k, (a[4] - b[4]) * k)
        rates[v.name] = r
        size = "x".join(map(str, sizes[v.name])) if sizes[v.name] else "-"
        print(f"{v.name:<9} {size:>8} {(a[5] - b[5]) / span:5.1f} {r[0]:7.1f} {r[1]:7.1f} {r[2]:7.1f} {r[3]:7.1f}")
    sent = {k: (sent_after[k] - sent_before[k]) * 8 / 1000 / sent_span for k in sent_after}
    print(f"publisher sent (RTP payload): video {sent['video']:.1f} kbps, audio {sent['audio']:.1f} kbps "
          f"(budget {PUBLISH_VIDEO.cap(*video_size) / 1000:.0f} + {PUBLISH_AUDIO_BPS / 1000:.0f}; aiortc's stock "
          "encoders: 500 kbps of VP8 climbing to 1500, 96 kbps of Opus)")
    base = rates["baseline"]
    for name in ("normal", "preview"):
        r = rates[name]
        print(f"{name} / aiortc default: video x{r[0] / base[0]:.2f}, audio x{r[1] / base[1]:.2f}, "
              f"wire x{r[2] / base[2]:.2f}")
    ok = rates["normal"][0] <= NORMAL_TARGET_KBPS and rates["preview"][2] <= PREVIEW_MAX_KBPS
    print(f"targets: normal video <= {NORMAL_TARGET_KBPS} kbps: {rates['normal'][0]:.0f}; "
          f"preview wire <= {PREVIEW_MAX_KBPS} kbps: {rates['preview'][2]:.0f} -> {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured span (default 20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before measuring (default 5)")
    parser.add_argument("--clip", default=None, help="play this video file as the camera")
    args = parser.parse_args()
    return asyncio.run(run(args.seconds, args.warmup, args.clip))


if __name__ == "__main__":
    sys.exit(main())
