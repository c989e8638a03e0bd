"""Small Kinetics-style dataset copies for the manifest tests, and official-format CSVs.

A copy is laid out as the common download scripts leave Kinetics: ``videos/<class>/<youtube_id>_
<start:06d>_<end:06d>.mp4`` (real H.264 files of a few frames, each with its own content), with
rs3d's lists ``{split}.csv`` (paths relative to the copy) and ``classes.txt``. The official CSV has
the Kinetics header ``label,youtube_id,time_start,time_end,split,is_cc``.
"""

from __future__ import annotations

import csv
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

from rs3d.data.synthetic import write_video

CLASSES = ["abseiling", "air drumming", "archery"]
_ID_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class Clip:
    youtube_id: str
    start: int
    end: int
    label: str
    split: str  # "train" or "val"

    @property
    def stem(self) -> str:
        return f"{self.youtube_id}_{self.start:06d}_{self.end:06d}"

    @property
    def rel(self) -> str:
        return f"videos/{self.label}/{self.stem}.mp4"


def make_clips(per_class: Dict[str, int], seed: int = 0) -> List[Clip]:
    """``per_class[split]`` clips of every class per split, with random 11-character ids."""
    rng = np.random.default_rng(seed)
    clips = []
    for split, n in per_class.items():
        for label in CLASSES:
            for _ in range(n):
                ytid = "".join(rng.choice(list(_ID_CHARS), 11))
                start = int(rng.integers(0, 300))
                clips.append(Clip(ytid, start, start + 10, label, split))
    return clips


def write_tiny_video(path: Path, seed: int, frames: int = 6, size: int = 32) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8), 25, "libx264")


def write_big_video(path: Path, seed: int = 0) -> None:
    """An H.264 file of over 2 MiB (lossless noise), so its first and last MiB are apart."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = rng.integers(0, 256, (100, 128, 160, 3), dtype=np.uint8)
    write_video(str(path), frames, 25, "libx264", {"qp": "0"})


def write_copy(root: Path, clips: Sequence[Clip], absent: Iterable[Clip] = (), big: Iterable[Clip] = ()) -> Path:
    """Videos of ``clips`` (but not of ``absent``; ``big`` ones over 2 MiB), their lists and classes."""
    absent, big = set(absent), set(big)
    lists: Dict[str, List[str]] = {}
    for i, c in enumerate(clips):
        if c in absent:
            continue
        (write_big_video if c in big else write_tiny_video)(root / c.rel, i)
        lists.setdefault(c.split, []).append(f"{c.rel} {CLASSES.index(c.label)}")
    for split, lines in lists.items():
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def write_official_csv(path: Path, clips: Sequence[Clip], split: str) -> Path:
    """Kinetics' official file of ``split`` (``train`` or ``validate``) listing ``clips``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
        for c in clips:
            w.writerow([c.label, c.youtube_id, c.start, c.end, split, 0])
    return path
