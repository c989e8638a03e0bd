"""A second synthetic dataset, built to fail a recipe that ignores time and mirror symmetry.

Every video shows a shaded ball with a rim over a drifting textured background, with a square
distractor crossing the frame in a random direction at a random speed, and sensor noise. The class
is how the ball moves:

    ball moving left to right slowly     ball moving right to left slowly
    ball moving left to right quickly    ball moving right to left quickly
    ball moving up                       ball moving down

Horizontal speeds are in short sides per second: slow 0.08-0.13, quick 0.22-0.32 (vertical
classes: 0.08-0.3); the ball crosses the frame once and stays in view (it wraps around the edge
only where its path is longer than the frame). Frame rates are 15, 24, 25, 30 or 60 fps and videos
last 2-4 s, so "slowly" and "quickly" can only be told apart by a sampler whose stride is counted
in seconds: per frame, a quick ball at 60 fps moves less than a slow one at 15 fps. The left/right
classes are mirror images of each other, and their names say so: a horizontal flip that keeps the
label teaches the model the opposite of the truth, a flip that swaps them
(``DATA.FLIP_LABEL_MAP auto``) is a valid augmentation. At any single frame the ball's position,
size and colours, the distractor and the background have the same distribution in the two
directions of a pair (a quick ball's path covers a little more of the frame than a slow one's).

Frame sizes 112x112 to 150x200 (landscape and portrait), containers and codecs mp4/h264 with
B-frames, mkv/h264, avi/mpeg4, webm/vp9, mov/mpeg4. Deterministic given the seed (the colour
conversion and the encoders run as :func:`rs3d.data.synthetic.write_video` does).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Dict, Optional

import numpy as np

from .synthetic import write_dataset, write_video

CLASSES = [
    "ball moving left to right slowly",
    "ball moving right to left slowly",
    "ball moving left to right quickly",
    "ball moving right to left quickly",
    "ball moving up",
    "ball moving down",
]
SLOW, QUICK, VERTICAL = (0.08, 0.13), (0.22, 0.32), (0.08, 0.3)  # short sides per second
DRIFT = 0.03  # the ball's speed across its direction, and the background's, at most
DURATION = (2.0, 4.0)  # seconds
FPS = [15, 24, 25, 30, 60]
SIZES = [
    (112, 112),
    (112, 144),
    (120, 160),
    (128, 176),
    (144, 192),
    (150, 200),
    (160, 120),
    (176, 132),
]  # (height, width), even
FORMATS = [
    ("mp4", "libx264", {"bf": "2", "g": "24", "preset": "veryfast"}),
    ("mkv", "libx264", {"bf": "3", "g": "30", "preset": "veryfast"}),
    ("avi", "mpeg4", {"g": "15", "qscale": "4"}),
    ("webm", "libvpx-vp9", {"g": "30", "deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}),
    ("mov", "mpeg4", {"g": "20", "qscale": "5"}),
]


def _velocity(name: str, rng: np.random.Generator, short: int):
    """(vx, vy) in pixels per second for class ``name`` (image y grows downwards)."""
    drift = float(rng.uniform(-DRIFT, DRIFT)) * short
    if "left to right" in name or "right to left" in name:
        speed = float(rng.uniform(*(SLOW if name.endswith("slowly") else QUICK))) * short
        return (speed if "left to right" in name else -speed), drift
    speed = float(rng.uniform(*VERTICAL)) * short
    return drift, (-speed if name.endswith("up") else speed)


def _background(rng: np.random.Generator, t: np.ndarray, h: int, w: int) -> np.ndarray:
    """Three coloured gratings of random orientation and frequency, drifting together: [T, H, W, 3].

    A grating shifted by ``s`` is ``sin(a - b) = sin a cos b - cos a sin b``, so every frame is a
    mix of six fixed images: one matrix product renders the whole video."""
    short = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = float(rng.uniform(0, 2 * math.pi))
    speed = float(rng.uniform(0, DRIFT)) * short
    sx, sy = speed * math.cos(angle) * t, speed * math.sin(angle) * t
    contrast = float(rng.uniform(0.15, 0.35))
    basis, coef = [], []
    for _ in range(3):
        theta = float(rng.uniform(0, math.pi))
        k = 2 * math.pi * float(rng.uniform(1.0, 3.0)) / short
        phase = float(rng.uniform(0, 2 * math.pi))
        colour = (rng.uniform(-1, 1, 3) * contrast / 3).astype(np.float32)
        a = k * (xx * math.cos(theta) + yy * math.sin(theta)) + phase
        b = k * (sx * math.cos(theta) + sy * math.sin(theta))
        basis += [(np.sin(a)[..., None] * colour).ravel(), (np.cos(a)[..., None] * colour).ravel()]
        coef += [np.cos(b), -np.sin(b)]
    out = np.stack(coef, 1).astype(np.float32) @ np.stack(basis)
    out += np.float32(0.5)
    return out.reshape(len(t), h, w, 3)


def _paste(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, top: int, left: int) -> None:
    """Alpha-blend ``patch`` into ``frame`` at (top, left), wrapping around the edges."""
    h, w = frame.shape[:2]
    rows = np.arange(top, top + patch.shape[0]) % h
    cols = np.arange(left, left + patch.shape[1]) % w
    region = frame[np.ix_(rows, cols)]
    frame[np.ix_(rows, cols)] = region * (1 - alpha) + patch * alpha


def _ball(radius: float, fx: float, fy: float, body: np.ndarray, rim: float):
    """Patch and alpha of a shaded disc with a rim, centred ``(fx, fy)`` pixels into its patch."""
    size = int(math.ceil(2 * radius)) + 3
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dist = np.sqrt((xx - fx) ** 2 + (yy - fy) ** 2)
    alpha = np.clip(radius - dist + 0.5, 0, 1)[..., None]
    r = (dist / radius)[..., None]
    return np.where(r > 0.75, np.float32(rim), body * (1.15 - 0.5 * r**2)), alpha


def _square(half: float, fx: float, fy: float, colour: np.ndarray):
    """Patch and alpha of a flat square with a diagonal stripe, centred ``(fx, fy)`` into its patch."""
    size = int(math.ceil(2 * half)) + 3
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - fx, yy - fy
    alpha = np.clip(half - np.maximum(np.abs(dx), np.abs(dy)) + 0.5, 0, 1)[..., None]
    stripe = (np.abs(dx - dy) < half * 0.3)[..., None]
    return np.where(stripe, 1 - colour, colour), alpha


def _track(rng: np.random.Generator, t: np.ndarray, vx: float, vy: float, h: int, w: int, margin: float = 0.0):
    """Centre positions over time. Along an axis where the whole path fits ``margin`` pixels from
    the edges, the start is uniform among the starts that keep it inside (the ball crosses the
    frame once and stays in view); elsewhere uniform, wrapping around the frame."""

    def axis(v: float, extent: int) -> np.ndarray:
        travel = abs(v) * float(t[-1])
        room = extent - 2 * margin - travel
        if margin and room >= 0:
            start = margin + float(rng.uniform(0, room)) + (travel if v < 0 else 0.0)
            return start + v * t
        return np.remainder(rng.uniform(0, extent) + v * t, extent)

    return axis(vx, w), axis(vy, h)


def render_video(
    label: int, rng: np.random.Generator, height: int, width: int, fps: float, length: int, boxes: Optional[list] = None
) -> np.ndarray:
    """Frames ``[T, H, W, 3]`` uint8 of one video of class ``CLASSES[label]``.

    ``boxes``: a list that receives the ball's box ``(x0, y0, x1, y1)`` in pixels per frame (the
    object the class is about; e.g. to check where a Grad-CAM map falls). A box may reach past
    the frame where the ball wraps around the edge."""
    name = CLASSES[label]
    short = min(height, width)
    t = np.arange(length, dtype=np.float64) / fps
    frames = _background(rng, t, height, width)
    # The distractor: a flat square with a stripe, any direction, 0.2-1.2 short sides per second.
    half = float(rng.uniform(0.06, 0.09)) * short
    angle = float(rng.uniform(0, 2 * math.pi))
    speed = float(rng.uniform(0.05, 0.35)) * short
    sq_x, sq_y = _track(rng, t, speed * math.cos(angle), speed * math.sin(angle), height, width)
    sq_colour = rng.uniform(0, 1, 3).astype(np.float32)
    # The ball: shaded disc with a contrasting rim.
    radius = float(rng.uniform(0.14, 0.2)) * short
    vx, vy = _velocity(name, rng, short)
    ball_x, ball_y = _track(rng, t, vx, vy, height, width, margin=radius)
    body = rng.uniform(0.2, 1.0, 3).astype(np.float32)
    rim = 0.05 if body.mean() > 0.5 else 0.95
    ball_in_front = rng.random() < 0.5
    if boxes is not None:
        boxes.extend(
            (float(x - radius), float(y - radius), float(x + radius), float(y + radius)) for x, y in zip(ball_x, ball_y)
        )
    for i in range(length):
        layers = []
        for cx, cy, size, draw in (
            (sq_x[i], sq_y[i], half, lambda fx, fy: _square(half, fx, fy, sq_colour)),
            (ball_x[i], ball_y[i], radius, lambda fx, fy: _ball(radius, fx, fy, body, rim)),
        ):
            top, left = int(math.floor(cy - size)) - 1, int(math.floor(cx - size)) - 1
            layers.append((draw(cx - left, cy - top), top, left))
        for (patch, alpha), top, left in layers if ball_in_front else layers[::-1]:
            _paste(frames[i], patch, alpha, top, left)
    sigma = float(rng.uniform(2, 5)) / 255
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(sigma)
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def _spec(seed: int, split: str, i: int, label: int) -> dict:
    rng = np.random.default_rng([seed, 7, {"train": 0, "val": 1, "test": 2}.get(split, 3), i])
    h, w = SIZES[int(rng.integers(len(SIZES)))]
    fps = FPS[int(rng.integers(len(FPS)))]
    length = int(round(float(rng.uniform(*DURATION)) * fps))
    ext, codec, options = FORMATS[int(rng.integers(len(FORMATS)))]
    return dict(rng=rng, height=h, width=w, fps=fps, length=length, ext=ext, codec=codec, options=options, label=label)


def _write_one(job) -> str:
    path, spec = job
    frames = render_video(spec["label"], spec["rng"], spec["height"], spec["width"], spec["fps"], spec["length"])
    write_video(path, frames, spec["fps"], spec["codec"], spec["options"])
    return path


def make_direction_dataset(
    out_dir: str,
    num_classes: int = len(CLASSES),
    train_per_class: int = 100,
    val_per_class: int = 10,
    test_per_class: int = 25,
    seed: int = 0,
    workers: int = 0,
) -> Dict[str, str]:
    """Write the videos, ``{train,val,test}.csv`` (paths relative to ``out_dir``) and
    ``classes.txt``; returns ``{split: csv path}``. ``workers``: encoding processes (0 = one per
    CPU core, at most 4)."""
    sizes = (train_per_class, val_per_class, test_per_class)
    return write_dataset(out_dir, CLASSES, num_classes, sizes, partial(_spec, seed), _file_name, _write_one, workers)


def _file_name(i: int, label: int) -> str:
    return f"{i:04d}_{CLASSES[label].replace(' ', '_')}"
