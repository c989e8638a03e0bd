"""A small labelled dataset of real encoded videos whose classes can only be told apart by motion.

Every video shows one textured square over a static textured background. The class decides how
the object's pose changes over time; at any single frame the pose (position, angle, size), the
colours and textures are drawn from the same distributions for every class, so no single frame
gives the label away. Classes are invariant under a horizontal flip (a flip does not turn one class
into another), so the default training augmentation can stay on.

Videos are written with PyAV in several containers/codecs (mp4/h264 with B-frames, avi/mpeg4,
webm/vp9, mkv/h264), frame sizes, frame rates and lengths, some shorter than a training clip.
Deterministic given the seed. Per frame, objects move 4-7 % of the short side, turn 0.12-0.22 rad
or change size by 3-5 % (log), so clips at sampling rate 1-2 see clear motion; "shake" has a period
of 12-20 frames so that it is not aliased into "still" at sampling rates up to 4.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

CLASSES = ["move_up", "move_down", "move_sideways", "rotate", "grow", "shrink", "shake", "still"]

# (extension, codec, encoder options)
FORMATS = [
    ("mp4", "libx264", {"bf": "2", "g": "12", "preset": "veryfast"}),
    ("avi", "mpeg4", {"g": "12", "qscale": "3"}),
    ("webm", "libvpx-vp9", {"g": "12", "deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"}),
    ("mkv", "libx264", {"bf": "3", "g": "16", "preset": "veryfast"}),
]
SIZES = [(64, 80), (72, 96), (80, 64), (64, 64), (96, 72), (64, 112)]  # (height, width), even
FPS = [12, 15, 24, 25, 30]
SCALE_RANGE = (0.6, 1.4)  # object size multiplier; log-uniform marginal in every class

# The set the demo config (configs/demo.yaml, rs3d-demo and the sweep's demo presets) is tuned for:
# 4 motion classes (move_up, move_down, move_sideways, rotate), 160 training videos per class, low
# background clutter and large objects (the motion, not the texture, is what the small model has
# to find in a few minutes). make_synthetic_dataset(out, **DEMO_SET) writes it.
DEMO_SET = dict(
    num_classes=4,
    train_per_class=160,
    val_per_class=10,
    test_per_class=25,
    seed=0,
    clutter=0.3,
    object_size=(0.2, 0.28),
)


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """One uint8 ``[H, W, 3]`` RGB frame to planar YUV 4:2:0 (BT.601, limited range), ``[H*3/2, W]``.

    Done here rather than by FFmpeg's swscale because swscale's SIMD paths depend on the CPU and on
    buffer alignment: the same frames could encode to different files on different runs.
    """
    h, w = frame.shape[:2]
    rgb = frame.astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16.0 + 0.256788 * r + 0.504129 * g + 0.097906 * b
    sub = rgb.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))  # 2x2 box filter for chroma
    r, g, b = sub[..., 0], sub[..., 1], sub[..., 2]
    u = 128.0 - 0.148223 * r - 0.290993 * g + 0.439216 * b
    v = 128.0 + 0.439216 * r - 0.367788 * g - 0.071427 * b
    planes = [y.reshape(-1), u.reshape(-1), v.reshape(-1)]
    out = np.clip(np.rint(np.concatenate(planes)), 0, 255).astype(np.uint8)
    return out.reshape(h * 3 // 2, w)


def write_video(
    path: str,
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "libx264",
    options: Optional[dict] = None,
    container_options: Optional[dict] = None,
    reproducible: bool = True,
) -> None:
    """Encode ``frames`` uint8 ``[T, H, W, 3]`` (RGB, even H and W) to ``path`` with PyAV.

    Colour conversion is done in NumPy (:func:`rgb_to_yuv420p`) and the encoder runs one thread.
    ``reproducible`` also turns off x264's macroblock-tree, so the same frames give the same file;
    ``False`` keeps x264's defaults (what Kinetics copies were encoded with), for benchmarks.
    """
    import av

    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"{path}: frame size {frames.shape[2]}x{frames.shape[1]} must be even for yuv420p")
    with av.open(str(path), "w", options=container_options or {}) as c:
        stream = c.add_stream(codec, rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        options = dict(options or {})
        if codec == "libx264" and reproducible:
            # x264's macroblock-tree reads an uninitialised stack value (valgrind memcheck, x264 in
            # PyAV 18.1), so the same frames could encode differently from run to run.
            params = options.get("x264-params", "")
            options["x264-params"] = f"{params}:mbtree=0" if params else "mbtree=0"
        stream.options = options
        stream.thread_count = 1  # multi-threaded encoders are not bit-reproducible; workers parallelise files
        for f in frames:
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(f), format="yuv420p")
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)


def _smooth_noise(rng: np.random.Generator, channels: int, h: int, w: int, cells: int) -> torch.Tensor:
    coarse = torch.from_numpy(rng.random((1, channels, cells, cells), dtype=np.float32))
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]


def _sprite(rng: np.random.Generator, size: int = 32) -> torch.Tensor:
    """RGB texture of the object: stripes or checks in two random colours, plus a corner marker."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    period = int(rng.integers(4, 9))
    if rng.random() < 0.5:
        pattern = ((xx // period) % 2).float()
    else:
        pattern = (((xx // period) + (yy // period)) % 2).float()
    a, b = (torch.from_numpy(rng.random(3, dtype=np.float32)).view(3, 1, 1) for _ in range(2))
    img = a * pattern + b * (1 - pattern)
    img[:, : size // 4, : size // 4] = 1.0 - img[:, : size // 4, : size // 4]
    return img


def render_video(
    label: int,
    rng: np.random.Generator,
    height: int,
    width: int,
    length: int,
    clutter: float = 1.0,
    object_size=(0.14, 0.2),
    boxes: Optional[list] = None,
) -> np.ndarray:
    """Frames ``[T, H, W, 3]`` uint8 of one video of class ``CLASSES[label]``.

    ``clutter`` scales the contrast of the textured background (0 = plain grey); ``object_size`` is
    the range of the object's half-size as a fraction of the short side. ``boxes``: a list that
    receives the object's bounding box ``(x0, y0, x1, y1)`` in pixels per frame (the object wraps
    around the edges, so a box may reach past the frame; the part past it shows on the other side).
    """
    name = CLASSES[label]
    t = torch.arange(length, dtype=torch.float32)
    short = min(height, width)
    half = float(rng.uniform(*object_size)) * short  # object half-size at scale 1
    # Pose at every frame; each component is uniform (position, angle) or log-uniform (scale)
    # whatever the class, and wraps around, so a single frame says nothing of the class.
    x = torch.full_like(t, float(rng.uniform(0, width)))
    y = torch.full_like(t, float(rng.uniform(0, height)))
    angle = torch.full_like(t, float(rng.uniform(0, 2 * math.pi)))
    lo, hi = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])
    log_s = torch.full_like(t, float(rng.uniform(lo, hi)))
    speed = float(rng.uniform(0.04, 0.07)) * short  # pixels per frame
    if name == "move_up":
        y = y - speed * t
    elif name == "move_down":
        y = y + speed * t
    elif name == "move_sideways":
        x = x + (speed if rng.random() < 0.5 else -speed) * t
    elif name == "rotate":
        angle = angle + (1 if rng.random() < 0.5 else -1) * float(rng.uniform(0.12, 0.22)) * t
    elif name in ("grow", "shrink"):
        rate = float(rng.uniform(0.03, 0.05)) * (1 if name == "grow" else -1)
        log_s = lo + torch.remainder(log_s - lo + rate * t, hi - lo)
    elif name == "shake":
        direction = float(rng.uniform(0, 2 * math.pi))
        amp = float(rng.uniform(0.1, 0.16)) * short
        period = float(rng.uniform(12, 20))  # frames; >= 3 samples a period at stride 4
        phase = float(rng.uniform(0, 2 * math.pi))
        offset = amp * torch.sin(2 * math.pi * t / period + phase)
        x, y = x + offset * math.cos(direction), y + offset * math.sin(direction)
    scale = torch.exp(log_s) * half
    if boxes is not None:  # the rotated square [-1, 1]^2 of the sprite, scaled
        reach = scale * (torch.cos(angle).abs() + torch.sin(angle).abs())
        xc, yc = torch.remainder(x, width), torch.remainder(y, height)
        boxes.extend((float(a - r), float(b - r), float(a + r), float(b + r)) for a, b, r in zip(xc, yc, reach))

    # Inverse mapping of every pixel into the object's [-1, 1]^2 frame (toroidal wrap-around).
    py, px = torch.meshgrid(
        torch.arange(height, dtype=torch.float32) + 0.5, torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij"
    )
    dx = torch.remainder(px[None] - x[:, None, None] + width / 2, width) - width / 2
    dy = torch.remainder(py[None] - y[:, None, None] + height / 2, height) - height / 2
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u = (cos * dx + sin * dy) / scale[:, None, None]
    v = (-sin * dx + cos * dy) / scale[:, None, None]
    grid = torch.stack([u, v], dim=-1)
    sprite = _sprite(rng)
    rgba = torch.cat([sprite, torch.ones(1, *sprite.shape[1:])])[None].expand(length, -1, -1, -1)
    obj = F.grid_sample(rgba, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    background = _smooth_noise(rng, 3, height, width, int(rng.integers(3, 7)))
    background = background * float(rng.uniform(0.4, 1.0))
    if clutter != 1.0:
        background = 0.5 + clutter * (background - 0.5)
    alpha = obj[:, 3:]
    frames = background[None] * (1 - alpha) + obj[:, :3] * alpha
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _video_spec(
    seed: int,
    split: str,
    i: int,
    label: int,
    short_fraction: float,
    min_len: int,
    max_len: int,
    short_len: Sequence[int],
    num_classes: int,
) -> dict:
    rng = np.random.default_rng([seed, {"train": 0, "val": 1, "test": 2}.get(split, 3), i])
    h, w = SIZES[int(rng.integers(len(SIZES)))]
    # The container cycles over a class's own videos (the k-th video of class c takes format k + c),
    # so every class comes in every format and a split of fewer videos per class than formats still
    # holds them all. With ``i % len(FORMATS)`` and 4 classes each class had a single format, and a
    # model could name the class from the codec's artefacts instead of the motion.
    ext, codec, opts = FORMATS[(i // num_classes + label) % len(FORMATS)]
    length = (
        int(rng.integers(short_len[0], short_len[1] + 1))
        if rng.random() < short_fraction
        else int(rng.integers(min_len, max_len + 1))
    )
    return dict(
        rng=rng,
        height=h,
        width=w,
        length=length,
        fps=FPS[int(rng.integers(len(FPS)))],
        ext=ext,
        codec=codec,
        options=opts,
        label=label,
    )


def limit_to_one_thread() -> None:
    """A worker process's initializer: torch on one thread."""
    # Small tensors: one thread is ~4x faster than several fighting over two cores.
    torch.set_num_threads(1)


def _write_one(args) -> str:
    path, spec = args
    frames = render_video(
        spec["label"],
        spec["rng"],
        spec["height"],
        spec["width"],
        spec["length"],
        spec.get("clutter", 1.0),
        spec.get("object_size", (0.14, 0.2)),
    )
    write_video(path, frames, spec["fps"], spec["codec"], spec["options"])
    return path


def make_synthetic_dataset(
    out_dir: str,
    num_classes: int = 8,
    train_per_class: int = 40,
    val_per_class: int = 10,
    test_per_class: int = 10,
    min_frames: int = 40,
    max_frames: int = 64,
    short_fraction: float = 0.1,
    short_frames: Sequence[int] = (6, 15),
    seed: int = 0,
    workers: int = 0,
    clutter: float = 1.0,
    object_size: Sequence[float] = (0.14, 0.2),
) -> Dict[str, str]:
    """Write videos, ``{train,val,test}.csv`` (paths relative to ``out_dir``) and ``classes.txt``.

    Args:
        num_classes: how many of :data:`CLASSES` to use (at most 8).
        short_fraction: share of videos with ``short_frames`` frames (shorter than a clip: looped).
        workers: processes for encoding (0 = one per CPU core, at most 4).
        clutter, object_size: see :func:`render_video` (how hard the task is).
    Returns ``{split: csv path}``.
    """

    def spec_of(split: str, i: int, label: int) -> dict:
        spec = _video_spec(seed, split, i, label, short_fraction, min_frames, max_frames, short_frames, num_classes)
        return dict(spec, clutter=clutter, object_size=tuple(object_size))

    sizes = (train_per_class, val_per_class, test_per_class)
    return write_dataset(out_dir, CLASSES, num_classes, sizes, spec_of, _file_name, _write_one, workers)


def _file_name(i: int, label: int) -> str:
    return f"{CLASSES[label]}_{i:04d}"


def write_dataset(
    out_dir: str,
    classes: Sequence[str],
    num_classes: int,
    per_class: Tuple[int, int, int],
    spec_of: Callable[[str, int, int], dict],
    name_of: Callable[[int, int], str],
    write_one: Callable[[Tuple[str, dict]], str],
    workers: int = 0,
) -> Dict[str, str]:
    """Write a synthetic set of the first ``num_classes`` of ``classes`` (ValueError unless 2 or
    more of them): ``per_class`` videos of each class for train, val and test, video ``i`` of
    label ``i % num_classes`` made by ``write_one((path, spec_of(split, i, label)))`` at
    ``videos/<split>/<name_of(i, label)>.<spec's ext>`` (``write_one`` is a module-level function:
    it is sent to ``workers`` spawned processes; 0 = one per CPU core, at most 4); then
    ``{split}.csv`` (``path label``, relative to ``out_dir``) and ``classes.txt``. Returns
    ``{split: csv path}``. The one writer of both synthetic sets (this module's and
    :mod:`rs3d.data.synthetic_directions`)."""
    if not 2 <= num_classes <= len(classes):
        raise ValueError(f"num_classes must be in [2, {len(classes)}], got {num_classes}")
    out = Path(out_dir)
    jobs: List[Tuple[str, dict]] = []
    lists: Dict[str, List[str]] = {}
    for split, count in zip(("train", "val", "test"), per_class):
        lines = []
        for i in range(count * num_classes):
            label = i % num_classes
            spec = spec_of(split, i, label)
            rel = f"videos/{split}/{name_of(i, label)}.{spec['ext']}"
            jobs.append((str(out / rel), spec))
            lines.append(f"{rel} {label}")
        lists[split] = lines
    for split in lists:
        (out / "videos" / split).mkdir(parents=True, exist_ok=True)
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 8:
        # spawn, not fork: forking after torch has started its thread pool can deadlock.
        with mp.get_context("spawn").Pool(workers, initializer=limit_to_one_thread) as pool:
            list(pool.imap_unordered(write_one, jobs, chunksize=4))
    else:
        threads = torch.get_num_threads()
        limit_to_one_thread()
        try:
            for job in jobs:
                write_one(job)
        finally:
            torch.set_num_threads(threads)
    paths = {}
    for split, lines in lists.items():
        paths[split] = str(out / f"{split}.csv")
        (out / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (out / "classes.txt").write_text("\n".join(classes[:num_classes]) + "\n")
    return paths


def write_broken_videos(out_dir: str) -> Dict[str, Path]:
    """Files that break decoders, by kind; each kind is a real failure seen in Kinetics copies.

    missing (not created), empty, truncated (mp4 cut before its index: unreadable), overreported
    (index says more frames than the data holds: the end is cut off), not_a_video (text named .mp4),
    audio_only (.mp4 with an AAC track only), one_frame (a valid 1-frame video; served by looping).
    """
    import av

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        k: out / f"{k}.mp4"
        for k in ("missing", "empty", "truncated", "overreported", "not_a_video", "audio_only", "one_frame")
    }
    if files["missing"].exists():
        files["missing"].unlink()
    files["empty"].write_bytes(b"")
    files["not_a_video"].write_text("this is not a video\n" * 20)
    frames = render_video(0, rng, 64, 64, 48)
    tmp = out / "_whole.mp4"
    write_video(str(tmp), frames, 25, "libx264", {"g": "8"})
    data = tmp.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])  # moov atom is at the end: lost
    write_video(
        str(tmp), frames, 25, "libx264", {"g": "8"}, container_options={"movflags": "faststart"}
    )  # index first, then the data
    data = tmp.read_bytes()
    files["overreported"].write_bytes(data[: int(len(data) * 0.6)])
    tmp.unlink()
    write_video(str(files["one_frame"]), frames[:1], 25, "libx264")
    with av.open(str(files["audio_only"]), "w") as c:
        stream = c.add_stream("aac", rate=22050)
        stream.layout = "mono"
        t = np.arange(22050, dtype=np.float32) / 22050
        samples = (0.2 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 22050
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    return files
