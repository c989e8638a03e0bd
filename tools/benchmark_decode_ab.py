#!/usr/bin/env python
"""A/B of ``rs3d.data.decode`` against its version at an older commit, in one process.

    python tools/benchmark_decode_ab.py --old 0082a3e --gop 16 --clips-per-video 12

For a change to the decoding code: the old module (``git show OLD:rs3d/data/decode.py``) is loaded
beside the current one, and every training clip (32x2 from a seeded random start) of each
Kinetics-like file is read by each reader in turn (old/new x decord/PyAV), so both sides see the
same load. Prints clips per CPU-second and the median of per-clip paired ratios against the old
decord path, and checks that all readers return the same frames.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rs3d.benchmark.decoders import clip_index_fn  # noqa: E402
from rs3d.benchmark.videos import make_kinetics_like_videos  # noqa: E402
from rs3d.data import decode as new_decode  # noqa: E402


def load_old(commit: str, folder: str):
    """The ``rs3d.data.decode`` module as it was at ``commit``."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:rs3d/data/decode.py"],
                         capture_output=True, text=True, check=True).stdout
    src = src.replace("from .synthetic import", "from rs3d.data.synthetic import")
    path = os.path.join(folder, "old_decode.py")
    Path(path).write_text(src)
    spec = importlib.util.spec_from_file_location("old_decode", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(paths, readers: dict, clips_per_video: int) -> dict:
    cpu = {k: 0.0 for k in readers}
    paired = {k: [] for k in readers}
    max_diff = 0.0
    for seed in range(clips_per_video):
        for p in paths:
            t, frames = {}, {}
            for name, read in readers.items():
                t0 = time.process_time()
                frames[name] = read(p, clip_index_fn(seed))[0]
                t[name] = time.process_time() - t0
                cpu[name] += t[name]
            ref = frames["old-decord"].numpy().astype(np.int16)
            max_diff = max(max_diff, *(float(np.abs(f.numpy().astype(np.int16) - ref).mean())
                                       for f in frames.values()))
            for name in readers:
                paired[name].append(t["old-decord"] / t[name])
    n = clips_per_video * len(paths)
    return {"clips": n, "max_mean_abs_diff": max_diff,
            "readers": {k: {"clips_per_cpu_s": round(n / cpu[k], 2),
                            "paired_vs_old_decord": round(float(np.median(paired[k])), 3)}
                        for k in readers}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="commit holding the old rs3d/data/decode.py")
    p.add_argument("--gop", type=int, default=250)
    p.add_argument("--num-videos", type=int, default=4)
    p.add_argument("--clips-per-video", type=int, default=12)
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "rs3d_benchmark_cache"))
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    paths = make_kinetics_like_videos(os.path.join(args.cache_dir, "kinetics_like"), args.num_videos,
                                      gop=args.gop)
    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(args.old, tmp)
        readers = {f"{side}-{backend}": (lambda path, fn, m=module, b=backend: m._read(path, fn, b, 1))
                   for side, module in (("old", old), ("new", new_decode))
                   for backend in ("decord", "pyav")}
        result = run(paths, readers, args.clips_per_video)
    result.update(old=args.old, gop=args.gop)
    print(f"{result['clips']} clips each, keyframe every {args.gop}; old = {args.old}")
    print("| reader | 32x2 clips per CPU-s | median paired ratio vs old decord |")
    print("|---|---|---|")
    for name, r in result["readers"].items():
        print(f"| {name} | {r['clips_per_cpu_s']} | {r['paired_vs_old_decord']} |")
    print(f"largest mean |diff| between readers: {result['max_mean_abs_diff']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["max_mean_abs_diff"] < 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
