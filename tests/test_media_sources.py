"""Media sources and sinks under faults: readers blocked in a read, damaged files, pipes, stills,
devices that fail half-way, callbacks that raise. Real files written with PyAV, real named pipes,
real threads; PortAudio only through the PulseAudio null sink of ``tests/conftest_media.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import logging
import os
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from tests.test_media import (
    FastAudioTrack,
    FastVideoTrack,
    _write_mpeg4,
    bar_colour,
    damage_packets,
    fifo_camera_opener,
    wait_until,
    write_clip,
    write_still_jpeg,
)
from tuichat.errors import DeviceUnavailable
from tuichat.media import (
    BARS,
    CameraTrack,
    FileVideoTrack,
    LatestFrameSink,
    Speaker,
    open_audio_source,
    open_ready,
    open_speaker,
    open_video_source,
    read_counter,
    render_test_pattern,
    video_source_name,
)

pytestmark = pytest.mark.timeout(30)


# ---------------------------------------------------------------- helpers


def write_video(path: Path, frames: int, *, codec: str, fmt: str, size: tuple[int, int] = (160, 120),
                pix_fmt: str = "yuv420p", rate: int = 15) -> None:
    """The test pattern, counters 0..frames-1, in any codec and container PyAV can write."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(render_test_pattern(w, h, n, n / rate), format="rgb24")
            frame.pts, frame.time_base = n, fractions.Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def y4m_prefix(tmp_path: Path, frames: int) -> bytes:
    """The first ``frames`` frames of a YUV4MPEG2 clip: a stream that can stop anywhere between frames."""
    clip = tmp_path / "clip.y4m"
    write_video(clip, 10, codec="rawvideo", fmt="yuv4mpegpipe", size=(64, 48), rate=10)
    data = clip.read_bytes()
    header = data.index(b"\n") + 1
    return data[:header + frames * (len(data) - header) // 10]


class PipeWriter:
    """Writes ``data`` into the named pipe ``path`` from a thread; with ``hold``, then keeps it open
    (so a reader blocks waiting for more) until ``close()``."""

    def __init__(self, path: Path, data: bytes, *, hold: bool = True) -> None:
        self.path, self.data = path, data
        self._release = threading.Event()
        if not hold:
            self._release.set()
        self.thread = threading.Thread(target=self._run, name=f"write {path.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(BrokenPipeError), open(self.path, "wb") as pipe:
            pipe.write(self.data)
            pipe.flush()
            self._release.wait(20)

    def close(self) -> None:
        self._release.set()
        deadline = time.monotonic() + 5
        while self.thread.is_alive():  # still in open(): no reader came, so be one for a moment
            assert time.monotonic() < deadline, "the pipe writer never finished"
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            self.thread.join(0.05)


async def release_fifo_opens(track: CameraTrack, fifo: Path) -> None:
    """Let a camera thread stuck opening a pipe with no writer finish (OpenCV tries one backend
    after another, each open() waiting for a writer), and wait until it has."""
    thread = track._thread
    assert thread is not None
    deadline = time.monotonic() + 20
    while thread.is_alive():
        assert time.monotonic() < deadline, "the camera thread never ended"
        with contextlib.suppress(OSError):  # ENXIO: no open() waiting at this moment
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        await asyncio.to_thread(thread.join, 0.1)


async def frames_until_end(track: FileVideoTrack | CameraTrack, limit: int = 200,
                           timeout: float = 10) -> list[av.VideoFrame]:
    """Every frame the track gives until it ends (MediaStreamError), at most ``limit``."""
    frames: list[av.VideoFrame] = []
    with contextlib.suppress(MediaStreamError):
        async with asyncio.timeout(timeout):
            while len(frames) < limit:
                frames.append(await track.recv())
    return frames


def counter(frame: av.VideoFrame) -> int | None:
    return read_counter(frame.to_ndarray(format="rgb24"))


# ---------------------------------------------------------------- stop() never blocks the loop


async def test_stopping_a_file_source_blocked_reading_a_pipe_does_not_wait_for_it(tmp_path: Path) -> None:
    """Review: stop() joined the decoder thread for up to 2 s on the loop, again on each further stop()
    (the app stops a source up to three times on quit), while it sat in a read from a quiet pipe."""
    fifo = tmp_path / "camera.y4m"
    os.mkfifo(fifo)
    writer = PipeWriter(fifo, y4m_prefix(tmp_path, 3))
    try:
        track = await asyncio.to_thread(FileVideoTrack, fifo)
        async with asyncio.timeout(5):
            for _ in range(3):
                await track.recv()  # then the decoder reads on, for a fourth frame that is not coming
        thread = track._thread
        assert thread is not None
        await asyncio.to_thread(thread.join, 0.2)
        assert thread.is_alive()  # stuck in the read: nothing else takes it this long
        started = time.monotonic()
        for _ in range(3):
            track.stop()
        assert time.monotonic() - started < 0.1
        assert thread.is_alive()  # stop() did not wait for it
        with pytest.raises(MediaStreamError):
            await track.recv()
    finally:
        writer.close()
    assert await track.wait_closed(timeout=5)  # the pipe ended: the thread closed the file and left


async def test_stopping_a_camera_blocked_in_a_read_does_not_wait_for_it(tmp_path: Path) -> None:
    fifo = tmp_path / "camera.y4m"
    os.mkfifo(fifo)
    writer = PipeWriter(fifo, y4m_prefix(tmp_path, 3))
    try:
        track = CameraTrack(str(fifo))
        await track.ready(timeout=10)
        async with asyncio.timeout(5):
            await track.recv()
        await wait_until(lambda: track.frames_read == 3)
        thread = track._thread
        assert thread is not None
        await asyncio.to_thread(thread.join, 0.2)
        assert thread.is_alive()  # stuck in cap.read(): nothing else takes it this long
        started = time.monotonic()
        for _ in range(3):
            track.stop()
        assert time.monotonic() - started < 0.1
        assert thread.is_alive()  # stop() did not wait for it
    finally:
        writer.close()
    assert await track.wait_closed(timeout=5)


# ---------------------------------------------------------------- damaged files


async def test_a_damaged_stretch_of_a_file_is_skipped_and_the_file_keeps_looping(tmp_path: Path) -> None:
    """Review: one packet that failed to decode (av.InvalidDataError) ended the whole source."""
    clip = tmp_path / "scratched.mp4"
    _write_mpeg4(clip, frames=30)
    damage_packets(clip, [14, 15, 16])
    track = FileVideoTrack(clip)
    counters: list[int | None] = []
    async with asyncio.timeout(10):
        while len(counters) < 40:  # the 27 or so good frames of a pass, and into the next pass
            counters.append(counter(await track.recv()))
    track.stop()
    assert track.ended_reason is None
    assert track.loops_completed >= 1 and track.packets_skipped >= 3
    assert counters[:14] == list(range(14))
    assert 0 in counters[20:]  # the second pass started from the beginning


async def test_a_long_run_of_bad_packets_ends_the_file_saying_why(tmp_path: Path) -> None:
    clip = tmp_path / "ruined.mp4"
    _write_mpeg4(clip, frames=80)
    damage_packets(clip, range(10, 80))
    track = FileVideoTrack(clip)
    frames = await frames_until_end(track)
    assert [counter(f) for f in frames] == list(range(10))
    assert track.ended_reason == (f"video file {clip} could not be decoded: invalid data found when processing input"
                                  " (50 video packets in a row)")
    assert track.loops_completed == 0
    track.stop()


# ---------------------------------------------------------------- files that cannot seek, pipes


async def test_raw_h264_which_cannot_seek_loops_by_opening_the_file_again(tmp_path: Path) -> None:
    """Review: seek(0) raises av.PermissionError on a raw .h264 stream, so it ended after one pass,
    "could not be decoded: operation not permitted"."""
    clip = tmp_path / "clip.h264"
    write_video(clip, 6, codec="libx264", fmt="h264")
    track = FileVideoTrack(clip)
    async with asyncio.timeout(10):
        counters = [counter(await track.recv()) for _ in range(14)]
    track.stop()
    assert track.ended_reason is None and track.loops_completed >= 2
    assert counters == [0, 1, 2, 3, 4, 5] * 2 + [0, 1]


async def test_a_pipe_plays_to_its_end_once_and_says_it_ended(tmp_path: Path) -> None:
    clip = tmp_path / "clip.ts"
    write_video(clip, 8, codec="mpeg4", fmt="mpegts")
    fifo = tmp_path / "camera"
    os.mkfifo(fifo)
    writer = PipeWriter(fifo, clip.read_bytes(), hold=False)
    try:
        track = await asyncio.to_thread(FileVideoTrack, fifo)
        frames = await frames_until_end(track)
    finally:
        writer.close()
    assert track.is_pipe
    assert [counter(f) for f in frames] == list(range(8))
    assert track.ended_reason == f"video file {fifo}: the pipe ended"
    assert track.loops_completed == 0
    assert await track.wait_closed(timeout=5)
    track.stop()


async def test_mp4_written_into_a_pipe_is_refused_naming_formats_that_work(tmp_path: Path) -> None:
    """MP4 keeps its index after the pictures: reading it needs seeking, which a pipe cannot do."""
    clip = tmp_path / "clip.mp4"
    rng = np.random.default_rng(1)
    with av.open(str(clip), "w", format="mp4") as container:  # noise, so the pictures outgrow the pipe's buffer
        stream = container.add_stream("mpeg4", rate=15)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 160, 120, "yuv420p", 20_000_000
        for _ in range(30):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), format="rgb24")))
        container.mux(stream.encode())
    assert clip.stat().st_size > 500_000
    fifo = tmp_path / "camera"
    os.mkfifo(fifo)
    writer = PipeWriter(fifo, clip.read_bytes(), hold=False)
    frames: list[av.VideoFrame] = []
    try:
        track = await asyncio.to_thread(FileVideoTrack, fifo)
    except DeviceUnavailable as exc:  # FFmpeg notices at open or at the first packet, as it happens
        reason = str(exc)
    else:
        frames = await frames_until_end(track)
        reason = track.ended_reason or ""
        track.stop()
    finally:
        writer.close()
    assert frames == []
    assert f"video file {fifo}" in reason
    assert reason.rstrip(".").endswith(
        ": invalid data found when processing input; a pipe needs a streamable format such as MPEG-TS or Matroska")


# ---------------------------------------------------------------- still images


async def test_a_still_image_is_decoded_once_and_offered_again(tmp_path: Path) -> None:
    """Review: a still was closed, reopened and decoded again every frame interval (38% of a core
    for a 4000x3000 JPEG)."""
    photo = write_still_jpeg(tmp_path / "photo.jpg")
    track = FileVideoTrack(photo)
    async with asyncio.timeout(10):
        frames = [await track.recv() for _ in range(6)]
    track.stop()
    assert track.frames_decoded == 1 and track.loops_completed >= 5
    assert [counter(f) for f in frames] == [7] * 6
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts))  # the one frame, stamped afresh each time


# ---------------------------------------------------------------- devices that fail half-way


async def test_a_speaker_that_opens_but_cannot_start_is_closed(pulse_null_sink: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: when the stream opened but start() raised, the stream was never closed. A real
    PortAudio stream on the null sink, with the start() failure injected."""
    import sounddevice as sd

    made: list[sd.OutputStream] = []

    class StartFails(sd.OutputStream):  # type: ignore[misc]
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            made.append(self)

        def start(self) -> None:
            raise sd.PortAudioError("Unanticipated host error")

    monkeypatch.setattr(sd, "OutputStream", StartFails)
    speaker = Speaker()
    with pytest.raises(DeviceUnavailable, match="cannot open speaker the default device: Unanticipated host error"):
        speaker.start()
    assert len(made) == 1 and made[0].closed
    await speaker.stop()


# ---------------------------------------------------------------- sinks keep draining


async def test_a_frame_callback_that_raises_does_not_stop_the_sink_draining(caplog: pytest.LogCaptureFixture) -> None:
    """Review: one exception from a callback ended the receive loop; aiortc's queue behind the
    track then grew for good."""
    track = FastVideoTrack(50, sizes=[(64, 32)])
    ended = asyncio.Event()

    def broken_renderer(rgb: np.ndarray) -> None:
        raise RuntimeError("the renderer broke")

    sink = LatestFrameSink(track, on_frame=broken_renderer, on_ended=ended.set)
    with caplog.at_level(logging.WARNING, logger="tuichat.media"):
        sink.start()
        async with asyncio.timeout(5):
            await ended.wait()
    await sink.stop()
    assert track.sent == 50 and sink.frames_received == 50 and sink.frame_errors == 50
    assert sink.latest is not None and read_counter(sink.latest) == 49
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "the renderer broke" in str(tracebacks[0].exc_info[1])  # type: ignore[index]
    assert any("50 frames failed" in r.getMessage() for r in caplog.records)


class UnplayableTrack(FastAudioTrack):
    """Its first frame at 48 kHz, the rest at a sample rate of 0, which FFmpeg's resampler refuses
    (a track that changes rate is followed: test_media's rate-changing track)."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        if self.sent > 1:
            frame.sample_rate = 0
        return frame


async def test_a_speaker_keeps_draining_a_track_whose_frames_it_cannot_play(caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker()  # not started: the buffers fill, nothing plays
    track = UnplayableTrack(40)
    with caplog.at_level(logging.WARNING, logger="tuichat.media"):
        speaker.add_track(track)
        await wait_until(lambda: track.readyState == "ended" and speaker.buffer_for(track) is None)
    await speaker.stop()
    assert track.sent == 40 and speaker.frames_received == 40 and speaker.frame_errors == 39
    assert len([r for r in caplog.records if r.exc_info]) == 1
    assert any("39 frames failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- device words


def test_digits_that_are_not_ascii_are_names_with_the_usual_errors(tmp_path: Path) -> None:
    """Review: "²".isdigit() is true and int("²") raises ValueError, which escaped as a crash."""
    with pytest.raises(DeviceUnavailable, match="cannot open video file ²: no such file"):
        open_video_source("²")
    assert video_source_name("²") == "video file ²"
    assert video_source_name("2") == "camera 2"
    with pytest.raises(DeviceUnavailable, match="microphone"):
        open_audio_source("²")
    with pytest.raises(DeviceUnavailable, match="speaker"):
        open_speaker("²")


# ---------------------------------------------------------------- cameras that do not open


async def test_a_camera_whose_ready_times_out_stops_itself(tmp_path: Path) -> None:
    """Review: ready() gave up but left the reader thread trying to open the camera; only
    open_ready stopped it."""
    fifo = tmp_path / "camera"  # open() of a pipe with no writer blocks, as a slow camera does
    os.mkfifo(fifo)
    track = CameraTrack(str(fifo), open_timeout=0.3)
    try:
        with pytest.raises(DeviceUnavailable, match=r"did not open within 0\.3 s"):
            await track.ready()
        assert track.readyState == "ended"
    finally:  # a thread left in OpenCV's open() holds its lock: no other camera opens meanwhile
        await release_fifo_opens(track, fifo)
    assert track.frames_read == 0


async def test_open_ready_gives_the_device_only_the_time_left_to_get_ready(tmp_path: Path) -> None:
    """Review: open_ready(timeout=...) bounded the opener but not ``await ready()`` (the camera's own
    open_timeout applied instead)."""
    fifo, made, opener = fifo_camera_opener(tmp_path, open_timeout=5)

    started = time.monotonic()
    try:
        with pytest.raises(DeviceUnavailable) as caught:
            await open_ready(opener, what=f"camera {fifo}", timeout=0.5)
        assert time.monotonic() - started < 1.5
        assert str(caught.value) == f"camera {fifo} did not open within 0.5 s (a pipe: is anything writing to it?)."
        assert made[0].readyState == "ended"
    finally:
        if made:
            await release_fifo_opens(made[0], fifo)


# ---------------------------------------------------------------- camera frames


async def test_camera_frames_keep_their_colours_and_move_forward_in_time(tmp_path: Path) -> None:
    """Frames go out as OpenCV reads them (BGR, no conversion per captured picture), stamped with
    the time they were captured."""
    clip = tmp_path / "clip.webm"
    write_clip(clip, seconds=0.5)
    track = CameraTrack(str(clip))
    await track.ready(timeout=5)
    frames = await frames_until_end(track, limit=4)
    track.stop()
    assert len(frames) >= 1
    rgb = frames[0].to_ndarray(format="rgb24")
    for name, colour, (fx0, fx1) in BARS:
        assert np.abs(bar_colour(rgb, fx0, fx1) - np.array(colour)).max() < 40, name
    pts = [f.pts or 0 for f in frames]
    assert all(a < b for a, b in itertools.pairwise(pts))
    assert await track.wait_closed(timeout=5)
