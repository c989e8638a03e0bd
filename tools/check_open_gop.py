#!/usr/bin/env python
"""Which frames of an open-GOP H.264 file each decoder gets wrong, read one frame at a time.

    python tools/check_open_gop.py [--frames 75 --gop 12]

Writes a video whose keyframes (after the first) have leading B-frames (x264 ``open-gop=1``), and a
closed-GOP twin, then compares every frame, read alone, with a full sequential PyAV decode:
rs3d's ``read_frames`` with its decord and PyAV backends (both must be exact), and bare decord
for comparison (the reason rs3d checks files for open GOPs before letting decord seek). A frame
counts as wrong when its mean absolute difference exceeds 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Callable, Dict, Optional

import numpy as np

from rs3d.data import decode as D
from rs3d.data.synthetic import render_video, write_video

Reader = Callable[[int], np.ndarray]


def sequential(path: str) -> np.ndarray:
    import av

    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _bare_decord(path: str, i: int) -> np.ndarray:
    import decord

    vr = decord.VideoReader(path, num_threads=1)
    try:
        batch = vr.get_batch([i])
        # Another library in the process (PyTorchVideo) may have switched decord's bridge to torch.
        return (batch.numpy() if hasattr(batch, "numpy") and not hasattr(batch, "asnumpy") else batch.asnumpy())[0]
    finally:
        del vr


def default_readers(path: str) -> Dict[str, Reader]:
    def rs3d(backend):
        return lambda i: D.read_frames(path, lambda n: np.array([i]), backend=backend)[0][0].numpy()

    return {"decord": lambda i: _bare_decord(path, i), "rs3d-decord": rs3d("decord"), "rs3d-pyav": rs3d("pyav")}


def wrong_frames(path: str, readers: Optional[Dict[str, Reader]] = None) -> dict:
    """{reader: {"wrong": [frames that differ from the sequential decode], "max_error": worst}}."""
    ref = sequential(path)
    out = {"frames": len(ref), "has_open_gop": D.has_open_gop(path)}
    for name, read in (readers or default_readers(path)).items():
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
            write_video(
                path, frames, 24, "libx264", {"bf": "3", "g": str(args.gop), "x264-params": f"{extra}b-pyramid=normal"}
            )
            results[name] = wrong_frames(path)
    for name, r in results.items():
        print(f"{name}: {r['frames']} frames, has_open_gop={r['has_open_gop']}")
        for reader in ("decord", "rs3d-decord", "rs3d-pyav"):
            print(
                f"  {reader:12s} wrong frames {len(r[reader]['wrong']):3d} {r[reader]['wrong']} "
                f"(max mean |diff| {r[reader]['max_error']})"
            )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
