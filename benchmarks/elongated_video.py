"""Peak memory of one video's test views, for a frame of any aspect ratio.

    python -m benchmarks.elongated_video [--width 16384] [--height 16] [--seconds 8] \\
        [--frames 8] [--rate 1] [--size 32] [--views 10] [--crops 3] [--whole-frames]

Writes a real libx264 file of ``width x height`` (moving waves), then in a fresh process decodes it
into a ``TestDataset`` item and cuts all its views (``views_of``), and prints that process's peak
resident memory and the bytes of resized frames the item held. ``--whole-frames`` resizes every
frame whole to short side S first, as rs3d does only up to ``WHOLE_FRAME_MAX_ASPECT``: 16384x16
at S = 256 is 262144 columns per frame.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

_CHILD = """
import resource, sys
import torch
from rs3d.data import views_of
from rs3d.data.csv import VideoRecord
from rs3d.data import transforms
from rs3d.data.datasets import TestDataset
path, frames, rate, size, views, crops, whole = sys.argv[1], *map(int, sys.argv[2:])
if whole:  # resize every frame whole, whatever its aspect ratio (what the limit avoids)
    transforms.WHOLE_FRAME_MAX_ASPECT = float("inf")
torch.set_num_threads(1)
item = TestDataset([VideoRecord(path, 0)], frames, rate, size, num_clips=views, num_crops=crops,
                   backend="pyav")[0]
assert item["error"] == "", item["error"]
cut = views_of(item)
print(f"views {tuple(cut.shape)}, decoded frames {item['clip_frames'].max().item() + 1}, "
      f"resized frames held {item['frames'].numel() / 2**20:.1f} MiB, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
"""


def write_waves(path: str, width: int, height: int, seconds: float, fps: int = 25) -> None:
    from rs3d.data.synthetic import write_video

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.stack(
        [
            np.clip(127 + 90 * np.sin(2 * np.pi * (x + 3 * t) / 40) * np.cos(2 * np.pi * y / 56), 0, 255)
            for t in range(int(seconds * fps))
        ]
    ).astype(np.uint8)
    write_video(path, np.repeat(frames[..., None], 3, axis=-1), fps=fps)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=16384)
    p.add_argument("--height", type=int, default=16)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--frames", type=int, default=8, help="DATA.NUM_FRAMES")
    p.add_argument("--rate", type=int, default=1, help="DATA.SAMPLING_RATE")
    p.add_argument("--size", type=int, default=32, help="DATA.TEST_CROP_SIZE")
    p.add_argument("--views", type=int, default=10, help="TEST.NUM_ENSEMBLE_VIEWS")
    p.add_argument("--crops", type=int, default=3, help="TEST.NUM_SPATIAL_CROPS")
    p.add_argument(
        "--whole-frames",
        action="store_true",
        help="resize every frame whole first (no WHOLE_FRAME_MAX_ASPECT limit), for comparison",
    )
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"waves_{a.width}x{a.height}.mp4")
        write_waves(path, a.width, a.height, a.seconds)
        print(
            f"{a.width}x{a.height}, {a.seconds:g} s; {a.views} x {a.crops} views of {a.frames} x {a.rate} "
            f"frames at S = {a.size}"
        )
        numbers = (a.frames, a.rate, a.size, a.views, a.crops, int(a.whole_frames))
        child = [sys.executable, "-c", _CHILD, path, *map(str, numbers)]
        return subprocess.run(child).returncode


if __name__ == "__main__":
    sys.exit(main())
