#!/usr/bin/env python
"""Which frames of an open-GOP H.264 file each decoder gets wrong, read one frame at a time.

    python tools/check_open_gop.py [--frames 75 --gop 12]

Writes a video whose keyframes (after the first) have leading B-frames (x264 ``open-gop=1``), and a
closed-GOP twin, then compares every frame, read alone, with a full sequential PyAV decode: bare
decord (what ``rs3d.data.decode`` guards against), and rs3d's ``read_frames`` with its decord and
PyAV backends. A frame counts as wrong when its mean absolute difference exceeds 0.5.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rs3d.data import decode as D  # noqa: E402
from rs3d.data.synthetic import render_video, write_video  # noqa: E402


def _sequential(path: str) -> np.ndarray:
    import av

    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _bare_decord(path: str, i: int) -> np.ndarray:
    import decord

    vr = decord.VideoReader(path, num_threads=1)
    try:
        return vr.get_batch([i]).asnumpy()[0]
    finally:
        del vr


def wrong_frames(path: str) -> dict:
    """{reader: [indices of frames that differ from the sequential decode]} and the worst error."""
    ref = _sequential(path)
    readers = {
        "decord": lambda i: _bare_decord(path, i),
        "rs3d-decord": lambda i: D.read_frames(path, lambda n: np.array([i]), backend="decord")[0][0].numpy(),
        "rs3d-pyav": lambda i: D.read_frames(path, lambda n: np.array([i]), backend="pyav")[0][0].numpy(),
    }
    out = {"frames": len(ref), "has_open_gop": D.has_open_gop(path)}
    for name, read in readers.items():
        errors = [float(np.abs(read(i).astype(np.int16) - ref[i]).mean()) for i in range(len(ref))]
        out[name] = {"wrong": [i for i, e in enumerate(errors) if e > 0.5], "max_error": round(max(errors), 2)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=75)
    p.add_argument("--gop", type=int, default=12)
    args = p.parse_args(argv)
    frames = render_video(2, np.random.default_rng(3), 64, 80, args.frames)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("open_gop", "open-gop=1:"), ("closed_gop", "")):
            path = os.path.join(tmp, f"{name}.mp4")
            write_video(path, frames, 24, "libx264",
                        {"bf": "3", "g": str(args.gop), "x264-params": f"{extra}b-pyramid=normal"})
            results[name] = wrong_frames(path)
    for name, r in results.items():
        print(f"{name}: {r['frames']} frames, has_open_gop={r['has_open_gop']}")
        for reader in ("decord", "rs3d-decord", "rs3d-pyav"):
            print(f"  {reader:12s} wrong frames {len(r[reader]['wrong']):3d} {r[reader]['wrong']} "
                  f"(max mean |diff| {r[reader]['max_error']})")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
