"""Kinetics-like test videos for decode benchmarks: 10 s, 24-30 fps, short side 256, H.264.

The synthetic training set (``rs3d.data.synthetic``) uses tiny frames so tests stay fast; decode
speed, the usual ceiling of Kinetics training, must be measured on frames of the size Kinetics
copies are stored at (short side 256 after the common re-encoding, ffmpeg's default libx264 with
keyframes every 250 frames and B-frames). Content: a textured scene under a panning camera with a
moving object and film grain, so the encoder spends a realistic number of bits per frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence, Union

import numpy as np


def _frames(rng: np.random.Generator, height: int, width: int, length: int) -> np.ndarray:
    pad = 96
    coarse = rng.random((height // 16 + 8, width // 16 + 8, 3), dtype=np.float32)
    scene = np.kron(coarse, np.ones((16, 16, 1), np.float32))[: height + 2 * pad, : width + 2 * pad]
    scene = np.pad(
        scene,
        ((0, max(0, height + 2 * pad - scene.shape[0])), (0, max(0, width + 2 * pad - scene.shape[1])), (0, 0)),
        mode="reflect",
    )
    scene = 0.6 * scene + 0.4 * rng.random(scene.shape, dtype=np.float32)  # texture
    out = np.empty((length, height, width, 3), np.uint8)
    vx, vy = rng.uniform(-0.6, 0.6, size=2)
    size = height // 5
    for t in range(length):
        ox = int(pad + pad * 0.9 * np.sin(vx * t / 10))
        oy = int(pad + pad * 0.9 * np.sin(vy * t / 10))
        f = scene[oy : oy + height, ox : ox + width].copy()
        cx = int((t * 3) % (width - size))
        cy = int(height / 2 + height / 4 * np.sin(t / 15)) - size // 2
        f[cy : cy + size, cx : cx + size] = (0.9, 0.3, 0.2)
        f += rng.normal(0, 0.02, size=f.shape).astype(np.float32)  # grain
        out[t] = (np.clip(f, 0, 1) * 255).astype(np.uint8)
    return out


def make_kinetics_like_videos(
    out_dir: str,
    num_videos: int = 4,
    height: int = 256,
    width: int = 340,
    seconds: float = 10.0,
    fps: Union[int, Sequence[int]] = 30,
    seed: int = 0,
    gop: int = 250,
) -> List[str]:
    """Write (or reuse, if already there) ``num_videos`` H.264 mp4 files; returns their paths.

    ``gop``: frames between keyframes (250 = ffmpeg's default; a clip then decodes from the
    keyframe before its start, so a shorter GOP trades file size for faster random access).
    ``fps``: one rate, or rates cycled over the videos (Kinetics mixes 24, 25 and 30 fps).
    """
    from rs3d.data.synthetic import write_video

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    rates = [fps] if isinstance(fps, int) else list(fps)
    for i in range(num_videos):
        rate = int(rates[i % len(rates)])
        length = int(round(seconds * rate))
        tag = "" if rate == 30 else f"_{rate}fps"  # 30 fps files keep their earlier names
        path = out / f"k400like_{height}x{width}_{length}f_g{gop}{tag}_{seed}_{i:03d}.mp4"
        if not path.exists() or path.stat().st_size == 0:
            frames = _frames(np.random.default_rng([seed, i]), height, width, length)
            tmp = str(path) + ".tmp.mp4"
            # ffmpeg's libx264 defaults (crf 23, keyint 250, 3 B-frames), "veryfast" to write quickly.
            write_video(tmp, frames, rate, "libx264", {"preset": "veryfast", "g": str(gop)}, reproducible=False)
            os.replace(tmp, path)
        paths.append(str(path))
    return paths


def write_csv(paths: List[str], csv_path: str, num_classes: int = 2) -> str:
    """A train/val CSV over ``paths`` (labels cycle through ``num_classes``), for loader benchmarks."""
    Path(csv_path).write_text("".join(f"{p} {i % num_classes}\n" for i, p in enumerate(paths)))
    return csv_path
