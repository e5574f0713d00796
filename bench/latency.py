"""Camera-to-screen latency through the room server at 15 fps (figures, not pass/fail).

Path measured: TestPatternTrack (stamps a frame counter, remembers when) → VP8 encode → server
decode, fit to the viewer's 160×90 view, VP8 encode → viewer decode → RGB → ``render.to_cells``
(the TUI's renderer) → ``read_counter`` on the cells' pixels (top/bottom rows re-interleaved).
Latency = time the counter is read back − ``sent_at(counter)``.

The server runs in a subprocess (so its CPU is measured apart, from /proc/PID/stat); the publisher
and the viewer share this process and its loop, as two clients on one machine.

    python bench/latency.py                # 300 frames
    python bench/latency.py --frames 1000
    python bench/latency.py --minutes 10   # per-minute medians and the drift
    python bench/latency.py --stock-jitter # aiortc's jitter buffer (frame released by the next frame)
    python bench/latency.py --compare      # stock then marker release, one after the other
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import tuichat.rtc.jitter
from tuichat.client import Session
from tuichat.client.call import Call, CallEvent
from tuichat.client.stream import PlayStatus
from tuichat.media import AudioDrain, TestPatternTrack, ToneTrack, read_counter
from tuichat.render import ColorMode, to_cells

TARGET_MEDIAN_MS = 150.0
SERVER_CODE = """
import asyncio, sys
import tuichat.rtc.jitter
from tuichat.server import RoomServer
tuichat.rtc.jitter.enabled = sys.argv[1] == "marker"
async def main():
    server = RoomServer("127.0.0.1", 0)
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()
asyncio.run(main())
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(frames: int, minutes: float | None, fps: int, *, stock_jitter: bool = False) -> float:
    """Measure and print; returns the median latency in ms."""
    tuichat.rtc.jitter.enabled = not stock_jitter
    server = subprocess.Popen([sys.executable, "-c", SERVER_CODE, "stock" if stock_jitter else "marker"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    url = f"ws://127.0.0.1:{port}/ws"
    source = TestPatternTrack(640, 480, fps, label="latency")
    tone = ToneTrack()
    drains = [AudioDrain(), AudioDrain()]
    sessions = [Session(url, "camera"), Session(url, "screen")]
    calls: list[Call] = []
    samples: list[tuple[float, float]] = []  # (monotonic time, latency ms)
    unreadable = 0
    sizes: set[tuple[int, int]] = set()
    done = asyncio.Event()
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    if minutes is not None:
        print(f"running for {minutes:g} min; the per-minute medians and the drift come at the end", flush=True)
    try:
        for session in sessions:
            await session.connect()
        rooms = [await session.join("bench") for session in sessions]
        calls.append(Call(rooms[0], video=source, audio=tone, audio_sink=drains[0], view=(160, 90, fps)))
        calls.append(Call(rooms[1], audio_sink=drains[1], view=(160, 90, fps)))
        for call in calls:
            await call.start()

        def on_frame(rgb: np.ndarray) -> None:
            nonlocal unreadable
            height, width = rgb.shape[:2]
            sizes.add((width, height))
            cells = to_cells(rgb, width, height // 2, ColorMode.TRUECOLOR)
            picture = np.empty((cells.rows * 2, cells.cols, 3), np.uint8)
            picture[0::2], picture[1::2] = cells.top, cells.bottom
            counter = read_counter(picture)
            now = time.monotonic()
            sent = source.sent_at(counter) if counter is not None else None
            if sent is None:
                unreadable += 1
                return
            samples.append((now, (now - sent) * 1000))
            if (deadline is None and len(samples) >= frames) or (deadline is not None and now >= deadline):
                done.set()

        def on_stream(update: object) -> None:
            stream = update.stream  # type: ignore[attr-defined]
            if stream is not None and stream.status is PlayStatus.PLAYING:
                stream.on_frame = on_frame

        calls[1].on(CallEvent.PLAY_STATUS, on_stream)
        for stream in calls[1].streams.values():
            stream.on_frame = on_frame
        cpu0, server_cpu0, t0 = cpu_seconds(), cpu_seconds(server.pid), time.monotonic()
        timeout = (minutes * 60 + 30) if minutes is not None else frames / fps * 3 + 30
        await asyncio.wait_for(done.wait(), timeout)
        elapsed = time.monotonic() - t0
        cpu, server_cpu = cpu_seconds() - cpu0, cpu_seconds(server.pid) - server_cpu0
    finally:
        for call in calls:
            await call.close()
        for drain in drains:
            await drain.stop()
        source.stop()
        tone.stop()
        for session in sessions:
            await session.disconnect()
        server.stdin.close()
        server.wait(10)

    latencies = [ms for _, ms in samples]
    print(f"jitter buffer: {'aiortc stock (next frame releases)' if stock_jitter else 'marker release'}")
    print(f"frames {len(latencies)} at {fps} fps, view 160x90 (received {sorted(sizes)}), unreadable {unreadable}")
    print(f"latency median {statistics.median(latencies):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms, "
          f"min {min(latencies):.1f} ms, max {max(latencies):.1f} ms (target median <= {TARGET_MEDIAN_MS:.0f} ms)")
    print(f"received {len(latencies) / elapsed:.1f} frames/s over {elapsed:.1f} s")
    print(f"CPU per second of call: clients (publisher + viewer, this process) {cpu / elapsed * 100:.0f}% of a core, "
          f"server (subprocess) {server_cpu / elapsed * 100:.0f}%")
    if minutes is not None and samples:
        start = samples[0][0]
        per_minute: dict[int, list[float]] = {}
        for at, ms in samples:
            per_minute.setdefault(int((at - start) // 60), []).append(ms)
        medians = [statistics.median(v) for _, v in sorted(per_minute.items())]
        for i, median in enumerate(medians):
            print(f"minute {i + 1}: median {median:.1f} ms over {len(per_minute[i])} frames")
        print(f"drift (last minute's median - first's): {medians[-1] - medians[0]:+.1f} ms")
    return statistics.median(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames to measure (default 300)")
    parser.add_argument("--minutes", type=float, default=None, help="run this long instead, per-minute medians")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--stock-jitter", action="store_true", help="use aiortc's jitter buffer everywhere")
    parser.add_argument("--compare", action="store_true", help="run with the stock buffer, then marker release")
    args = parser.parse_args()
    if args.compare:
        before = asyncio.run(run(args.frames, args.minutes, args.fps, stock_jitter=True))
        print()
        after = asyncio.run(run(args.frames, args.minutes, args.fps))
        print(f"\nmedian latency: stock {before:.1f} ms -> marker release {after:.1f} ms "
              f"({after - before:+.1f} ms, x{after / before:.2f})")
    else:
        after = asyncio.run(run(args.frames, args.minutes, args.fps, stock_jitter=args.stock_jitter))
    return 0 if after <= TARGET_MEDIAN_MS else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: no figures", file=sys.stderr)
        sys.exit(130)
