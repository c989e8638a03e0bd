"""Where a loader worker's CPU time goes for one training clip: decoding vs crop+resize+flip.

    python -m benchmarks worker-split --num-videos 4 --rounds 6

On Kinetics-like files (:mod:`benchmarks.videos`: 256x340, 10 s at 30 fps, H.264), one thread,
the training path of ``TrainDataset.load_clip``: ``read_frames`` of a random 32x2 clip, then
``sample_area_box`` + ``crop_resize_flip`` to 224. CPU time (``time.process_time``) per clip, the
first round left out as warm-up. The share of the augmentation bounds what moving it to the GPU
could gain: workers that only decode would serve ``(decode + augment) / decode`` times the clips.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from rs3d.data import decode as D
from rs3d.data import transforms as T


def measure(
    paths,
    rounds: int,
    frames: int = 32,
    stride: int = 2,
    crop: int = 224,
    backend: str = "decord",
    seed: int = 0,
    clock: Callable[[], float] = time.process_time,
) -> dict:
    """Per-clip CPU milliseconds of decoding and of augmenting, over rounds 2.. (``clock``: for tests)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    decode_s = augment_s = 0.0
    clips = 0
    for r in range(rounds):
        for path in paths:

            def index_fn(length):
                return D.clip_indices(D.random_clip_start(length, frames, stride, rng), frames, stride, length)

            t0 = clock()
            video, _, _ = D.read_frames(path, index_fn, backend=backend)
            t1 = clock()
            box = T.sample_area_box(video.shape[1], video.shape[2], rng)
            T.crop_resize_flip(video, box, crop, bool(rng.random() < 0.5))
            t2 = clock()
            if r:  # round 0 is warm-up
                decode_s, augment_s, clips = decode_s + t1 - t0, augment_s + t2 - t1, clips + 1
    return dict(
        clips=clips,
        decode_ms=round(1000 * decode_s / clips, 1),
        augment_ms=round(1000 * augment_s / clips, 1),
        augment_share=round(augment_s / (decode_s + augment_s), 3),
        decode_only_speedup=round((decode_s + augment_s) / decode_s, 2),
    )
