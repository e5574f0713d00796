"""The server's CPU for rooms of 2 to 8 people who all publish and all watch each other.

The server decodes each published video once and encodes it once per viewer, at that viewer's
tile size (see README, "Media"): its work grows with the number of received streams, N×(N−1) in a
room of N. This bench runs ``tuichat serve`` in its own process (so its CPU is its own) and N participant
processes (as on N machines), publishing a 320×240 test pattern at 15 fps and a tone, each viewing the
others at the pixel size the terminal app asks for when N tiles share a 160×45-cell video area.
After a warm-up it measures the server's CPU (user + system, from /proc) and the frames each viewer
received. The baseline is the 2-person call of the same run: the ratio says what one received
stream costs in a bigger room against a small one (1.0: linear in streams).

The participants share the machine with the server (2 cores here): when the frames per stream
fall below 15 and server and clients together near the machine's cores, the machine was the
limit, not only the server.

    python bench/server_load.py                   # rooms of 2, 4, 6 and 8; 5 s warm-up, 15 s measured
    python bench/server_load.py --sizes 2 8 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tuichat.client import Session
from tuichat.client.call import Call
from tuichat.client.stream import PlayStatus
from tuichat.media import AudioDrain, TestPatternTrack, ToneTrack

VIDEO_AREA = (160, 45)  # cells; a cell is 1×2 pixels (half blocks)
FPS = 15


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tile_view(people: int) -> tuple[int, int]:
    """The pixel box of one of ``people`` tiles in a grid filling the video area."""
    columns = math.ceil(math.sqrt(people))
    rows = math.ceil(people / columns)
    width, height = VIDEO_AREA[0] // columns, VIDEO_AREA[1] // rows
    return width, height * 2


@dataclass
class Figures:
    people: int
    streams: int
    server_cpu: float  # fraction of one core
    client_cpu: float  # all the participant processes together
    fps: float  # frames received per stream per second, averaged over all streams
    view: tuple[int, int]


@contextlib.asynccontextmanager
async def server_process() -> AsyncIterator[tuple[int, int]]:
    """``tuichat serve`` on a free port: its pid and port."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tuichat", "serve", "--host", "127.0.0.1", "--port", "0",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    try:
        assert process.stderr is not None
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), 15)).decode()
            if not line:
                raise RuntimeError("the server exited before listening")
            if "listening" in line:
                port = int(line.rsplit(":", 1)[1].split()[0].split("/")[0])
                break
        # Keep reading what it logs: a full pipe would block the server's writes, and its loop.
        log_lines: list[bytes] = []
        reading = asyncio.create_task(_collect(process.stderr, log_lines))
        yield process.pid, port
    finally:
        process.terminate()
        await process.wait()
    await reading
    warnings = [line for line in log_lines if b"WARNING" in line or b"ERROR" in line]
    if warnings:
        print(f"server: {len(warnings)} warnings, the last: {warnings[-1].decode().strip()}")


async def _collect(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while line := await stream.readline():
        into.append(line)


async def participant(url: str, name: str, view: tuple[int, int]) -> None:
    """One participant in its own process (as on its own machine): publish, watch, and answer
    ``count`` on stdin with the streams playing and the frames received so far."""
    video, audio = TestPatternTrack(320, 240, FPS, label=name), ToneTrack()
    drain = AudioDrain()
    drain.start()
    async with Session(url, name) as session:
        room = await session.join("load")
        call = Call(room, video=video, audio=audio, audio_sink=drain, view=(*view, FPS))
        await asyncio.wait_for(call.start(), 30)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while (await reader.readline()).strip() == b"count":
            streams = [s for s in call.streams.values() if s.status is PlayStatus.PLAYING]
            print(len(streams), sum(s.frames_received for s in streams), flush=True)
        await call.close()
    await drain.stop()
    video.stop()
    audio.stop()


class Participant:
    """A participant process, driven over its stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, name: str, view: tuple[int, int]) -> Participant:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--participant", url, name, str(view[0]), str(view[1]),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(process)

    async def count(self) -> tuple[int, int]:
        """Streams playing and frames received."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"count\n")
        await self.process.stdin.drain()
        playing, frames = (await asyncio.wait_for(self.process.stdout.readline(), 60)).split()
        return int(playing), int(frames)

    async def stop(self) -> None:
        if self.process.stdin is not None and self.process.returncode is None:
            with contextlib.suppress(ConnectionError):
                self.process.stdin.write(b"quit\n")
                self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def measure_room(people: int, warmup: float, seconds: float) -> Figures:
    view = tile_view(people)
    participants: list[Participant] = []
    async with server_process() as (pid, port):
        try:
            for i in range(people):
                participants.append(await Participant.start(f"ws://127.0.0.1:{port}/ws", f"p{i}", view))

            async def counts() -> tuple[int, int]:
                both = await asyncio.gather(*(p.count() for p in participants))
                return sum(c[0] for c in both), sum(c[1] for c in both)

            deadline = time.monotonic() + 60
            while (playing := (await counts())[0]) < people * (people - 1):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {playing} of {people * (people - 1)} streams playing")
                await asyncio.sleep(0.2)
            await asyncio.sleep(warmup)

            def clients_cpu() -> float:
                return sum(cpu_seconds(p.process.pid) for p in participants)

            t0, server0, client0, (_, frames0) = time.monotonic(), cpu_seconds(pid), clients_cpu(), await counts()
            await asyncio.sleep(seconds)
            span = time.monotonic() - t0
            server_cpu = (cpu_seconds(pid) - server0) / span
            client_cpu = (clients_cpu() - client0) / span
            fps = ((await counts())[1] - frames0) / span / (people * (people - 1))
        finally:
            await asyncio.gather(*(p.stop() for p in participants))
    return Figures(people, people * (people - 1), server_cpu, client_cpu, fps, view)


async def run(sizes: list[int], warmup: float, seconds: float) -> int:
    results = [await measure_room(n, warmup, seconds) for n in sizes]
    print(f"N people publishing 320x240@{FPS} and a tone, each viewing the others at the terminal's tile size; "
          f"{seconds:g} s measured after {warmup:g} s; {os.cpu_count()} cores")
    print(f"{'people':>6} {'streams':>7} {'view':>8} {'server':>7} {'per stream':>10} {'vs 2':>6} "
          f"{'fps/stream':>10} {'clients':>8}")
    base = next((r for r in results if r.people == 2), results[0])
    base_per_stream = base.server_cpu / base.streams
    for r in results:
        per_stream = r.server_cpu / r.streams
        print(f"{r.people:>6} {r.streams:>7} {'x'.join(map(str, r.view)):>8} {r.server_cpu:6.0%} "
              f"{per_stream:9.1%} {per_stream / base_per_stream:5.2f}x {r.fps:10.1f} {r.client_cpu:7.0%}")
    print("server and clients: share of one core; per stream: the server's CPU over the N×(N−1) received "
          "streams; fps/stream below 15 means the machine, shared with the clients, was the limit")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 6, 8], help="room sizes (default 2 4 6 8)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured span (default 15)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before measuring (default 5)")
    parser.add_argument("--participant", nargs=4, metavar=("URL", "NAME", "WIDTH", "HEIGHT"),
                        help=argparse.SUPPRESS)  # one participant's process, started by this bench
    args = parser.parse_args()
    if args.participant:
        url, name, width, height = args.participant
        asyncio.run(participant(url, name, (int(width), int(height))))
        return 0
    if any(n < 2 or n > 8 for n in args.sizes):
        parser.error("room sizes are 2 to 8 (the server's default room limit)")
    return asyncio.run(run(args.sizes, args.warmup, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
