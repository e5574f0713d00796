"""Build camera-like benchmark clips from real photographs (scikit-image's bundled sample images).

Run: python bench/make_clip.py [--scene webcam|handheld|seated] [--out PATH --seconds 20 --fps 15 --seed 7]

Two scenes, both what a call sends and what a terminal renderer must survive:
- `webcam` (bench/clips/webcam.mp4, the default): a webcam on a desk. The room stands still and a
  person moves in it: the footage the issue's figures describe ("a still room, a person moving,
  sensor noise, H.264").
- `handheld` (bench/clips/handheld.mp4): the same room and person filmed by a camera that slowly
  pans (45 px over the clip) and zooms (6%), with a little handheld shake (a smoothed random walk
  of about 0.8 px and 0.05° rotation): every cell of a textured photo moves, a much harder case.
- `seated`: the webcam scene with a person who stays in their chair (sways, leans and bobs, no
  walk): the usual call. It is no cheaper for a delta encoder, since the person's cut-out covers
  much of the frame and all of it moves; the room alone costs almost nothing.

In both:
- a real photograph as the room (`skimage.data.coffee`);
- a "person": a soft-edged cut-out of `skimage.data.astronaut`'s head and shoulders that sways,
  leans and bobs like someone talking, and (but when seated) walks a little way across the frame and back;
- per-frame Gaussian sensor noise (σ = 3.5 levels per channel), applied after the optics;
- a real codec: libx264, crf 23, yuv420p, 640×480 at 15 fps (so the blocking and ringing a
  decoder hands to the renderer are real too).

Deterministic for a given seed (numpy's PCG64; x264 with one thread). The clip is git-ignored: it
is rebuilt in about half a minute. Needs scikit-image (for the photos), OpenCV and PyAV.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from skimage import data

WIDTH, HEIGHT = 640, 480  # VGA, the usual webcam size; --size 640x360 for a 16:9 camera
CLIPS = Path(__file__).parent / "clips"
#: Camera motion per scene: pan/zoom scale and handheld-shake scale.
SCENES = {
    "webcam": {"motion": 0.0, "shake": 0.0, "walk": 1.0},
    "handheld": {"motion": 1.0, "shake": 1.0, "walk": 1.0},
    "seated": {"motion": 0.0, "shake": 0.0, "walk": 0.0},
}


def _smooth_walk(rng: np.random.Generator, n: int, sigma: float, span: int) -> npt.NDArray[np.float64]:
    """A handheld-shake track: white noise low-passed over `span` frames, scaled to std `sigma`."""
    raw = rng.normal(0.0, 1.0, n + 4 * span)
    kernel = np.hanning(2 * span + 1)
    track = np.convolve(raw, kernel / kernel.sum(), mode="same")[2 * span : 2 * span + n]
    return track / max(float(track.std()), 1e-9) * sigma


def _person() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Astronaut's head and shoulders with a feathered elliptical alpha mask (RGB float, alpha)."""
    img = data.astronaut()[20:420, 110:390].astype(np.float32)  # 400×280: head, suit, shoulders
    h, w = img.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    head = ((x - 0.52 * w) / (0.30 * w)) ** 2 + ((y - 0.33 * h) / (0.30 * h)) ** 2
    body = ((x - 0.5 * w) / (0.55 * w)) ** 2 + ((y - 1.05 * h) / (0.55 * h)) ** 2
    inside = np.minimum(head, body)
    alpha = np.clip((1.0 - inside) * 6.0, 0.0, 1.0)  # soft edge, a few pixels wide
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2.0)
    return img, alpha


def _camera(
    t: float,
    seconds: float,
    shake: tuple[float, float, float],
    canvas: tuple[int, int],
    motion: float = 1.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> npt.NDArray[np.float64]:
    """The 2×3 affine map from canvas to output pixels: slow pan and zoom plus shake."""
    cw, ch = canvas
    u = t / seconds
    ease = 0.5 - 0.5 * np.cos(np.pi * u)  # 0 → 1, easing in and out
    zoom = 1.0 + 0.06 * motion * ease  # 1.0 → 1.06
    # The crop centre drifts across the canvas (a slow pan), eased.
    cx = cw * (0.5 + 0.05 * motion * (ease - 0.5)) + shake[0]  # 45 px in 20 s
    cy = ch * (0.5 + 0.015 * motion * np.sin(2 * np.pi * u)) + shake[1]
    width, height = size
    scale = zoom * width / (0.8 * cw)  # show ~80% of the canvas width at zoom 1
    m = cv2.getRotationMatrix2D((cx, cy), shake[2], scale)
    m[0, 2] += width / 2 - cx
    m[1, 2] += height / 2 - cy
    return m


def make_frames(
    seconds: float,
    fps: int,
    seed: int,
    shake: float = 1.0,
    motion: float = 1.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    walk: float = 1.0,
) -> list[npt.NDArray[np.uint8]]:
    """All frames as (height, width, 3) uint8 RGB, before the codec."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    room = cv2.resize(data.coffee(), (900, 600), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    person, alpha = _person()
    ph, pw = person.shape[:2]
    shake_x = _smooth_walk(rng, n, 0.8 * shake, 6)
    shake_y = _smooth_walk(rng, n, 0.6 * shake, 6)
    shake_r = _smooth_walk(rng, n, 0.05 * shake, 8)  # degrees
    sway = _smooth_walk(rng, n, 1.0, 10)  # talking: slow irregular lean
    frames = []
    for i in range(n):
        t = i / fps
        # The person, in canvas coordinates: walks right then back over the clip, sways and bobs.
        px = 450 + 140 * walk * np.sin(2 * np.pi * t / seconds) + 25 * sway[i]
        py = 330 + 6 * np.sin(2 * np.pi * t * 0.9) + 4 * sway[i]
        lean = 4.0 * sway[i]
        pm = cv2.getRotationMatrix2D((pw / 2, ph), lean, 0.95 + 0.05 * np.sin(2 * np.pi * t / 7))
        pm[0, 2] += px - pw / 2
        pm[1, 2] += py - ph / 2
        canvas = room.copy()
        canvas_size = (room.shape[1], room.shape[0])
        fg = cv2.warpAffine(person, pm, canvas_size, flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(alpha, pm, canvas_size, flags=cv2.INTER_LINEAR)[..., None]
        canvas = canvas * (1.0 - a) + fg * a
        cam = _camera(t, seconds, (shake_x[i], shake_y[i], shake_r[i]), canvas_size, motion, size)
        frame = cv2.warpAffine(canvas, cam, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame += rng.normal(0.0, 3.5, frame.shape).astype(np.float32)
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return frames


def encode(frames: list[npt.NDArray[np.uint8]], out: Path, fps: int, crf: int) -> None:
    """H.264 (libx264, yuv420p) in MP4, one thread so the bitstream is reproducible."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", choices=sorted(SCENES), default="webcam")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/clips/SCENE.mp4")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help="frame size WxH (640x360: a 16:9 camera)")
    parser.add_argument("--motion", type=float, default=None, help="pan/zoom scale (1: 45 px pan, 6%% zoom)")
    parser.add_argument("--shake", type=float, default=None, help="handheld shake scale (1: ~0.8 px, 0.05°)")
    parser.add_argument("--walk", type=float, default=None, help="the person's walk scale (1: 140 px each way)")
    args = parser.parse_args()
    scene = SCENES[args.scene]
    args.motion = scene["motion"] if args.motion is None else args.motion
    args.shake = scene["shake"] if args.shake is None else args.shake
    args.walk = scene["walk"] if args.walk is None else args.walk
    args.out = args.out or CLIPS / f"{args.scene}.mp4"
    start = time.perf_counter()
    width, _, height = args.size.partition("x")
    size = (int(width), int(height))
    frames = make_frames(args.seconds, args.fps, args.seed, args.shake, args.motion, size, args.walk)
    encode(frames, args.out, args.fps, args.crf)
    nbytes = args.out.stat().st_size
    print(
        f"wrote {args.out}: {len(frames)} frames, {size[0]}x{size[1]} @ {args.fps} fps, "
        f"{len(frames) / args.fps:.1f} s, libx264 crf {args.crf} yuv420p, "
        f"{nbytes / 1024:.0f} KiB ({nbytes * 8 / 1000 / (len(frames) / args.fps):.0f} kbit/s), "
        f"{args.scene}: seed {args.seed}, shake {args.shake:g}, motion {args.motion:g}, walk {args.walk:g}, "
        f"{time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
