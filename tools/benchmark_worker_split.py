#!/usr/bin/env python
"""Where a loader worker's CPU time goes for one training clip: decoding vs crop+resize+flip.

    python tools/benchmark_worker_split.py --num-videos 4 --rounds 6

On Kinetics-like files (``rs3d.benchmark.videos``: 256x340, 10 s at 30 fps, H.264), one thread,
the training path of ``TrainDataset.load_clip``: ``read_frames`` of a random 32x2 clip, then
``sample_area_box`` + ``crop_resize_flip`` to 224. CPU time (``time.process_time``) per clip, the
first round left out as warm-up. The share of the augmentation bounds what moving it to the GPU
could gain: workers that only decode would serve ``(decode + augment) / decode`` times the clips.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rs3d.benchmark.videos import make_kinetics_like_videos  # noqa: E402
from rs3d.data import decode as D, transforms as T  # noqa: E402


def measure(paths, rounds: int, frames: int = 32, stride: int = 2, crop: int = 224,
            backend: str = "decord", seed: int = 0) -> dict:
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    decode_s = augment_s = 0.0
    clips = 0
    for r in range(rounds):
        for path in paths:
            def index_fn(length):
                return D.clip_indices(D.random_clip_start(length, frames, stride, rng), frames, stride, length)
            t0 = time.process_time()
            video, _, _ = D.read_frames(path, index_fn, backend=backend)
            t1 = time.process_time()
            box = T.sample_area_box(video.shape[1], video.shape[2], rng)
            T.crop_resize_flip(video, box, crop, bool(rng.random() < 0.5))
            t2 = time.process_time()
            if r:  # round 0 is warm-up
                decode_s, augment_s, clips = decode_s + t1 - t0, augment_s + t2 - t1, clips + 1
    return dict(clips=clips, decode_ms=round(1000 * decode_s / clips, 1),
                augment_ms=round(1000 * augment_s / clips, 1),
                augment_share=round(augment_s / (decode_s + augment_s), 3),
                decode_only_speedup=round((decode_s + augment_s) / decode_s, 2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-videos", type=int, default=4)
    p.add_argument("--rounds", type=int, default=6, help="passes over the videos; the first is warm-up")
    p.add_argument("--backend", default="decord", choices=list(D.BACKENDS))
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "rs3d_benchmark_cache"))
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    if args.rounds < 2:
        p.error("--rounds must be at least 2 (the first is warm-up)")
    paths = make_kinetics_like_videos(os.path.join(args.cache_dir, "kinetics_like"), args.num_videos)
    res = measure(paths, args.rounds, backend=args.backend)
    print(f"{res['clips']} clips of 32x2 at 224 from 256x340 files, 1 thread: decode {res['decode_ms']} ms, "
          f"crop+resize+flip {res['augment_ms']} ms per clip ({100 * res['augment_share']:.1f}% of the "
          f"worker's time); workers that only decoded would serve {res['decode_only_speedup']}x the clips")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
