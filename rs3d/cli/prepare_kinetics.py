"""``rs3d-prepare-kinetics``: rs3d's video lists from a Kinetics-style folder tree, every video checked.

    rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400 --workers 16
    rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400_256 --short-side 256
    rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400_prepared --short-side 256 \\
        --fps 15 --gop 16 --codec mpeg4          # fastest to train from: configs/k400_rs50_prepared.yaml
    rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400_256_15fps --short-side 256 \\
        --fps 15 --gop 16 --tune fastdecode      # h264, 26% smaller; train with DATA.TARGET_FPS 30

ROOT is either ``ROOT/<split>/<class>/<video>`` (splits named by --splits) or a single split
``ROOT/<class>/<video>`` (named by --split). Writes ``OUT/{split}.csv`` (``path label``),
``OUT/classes.txt`` (sorted class folder names of the first split; line i = label i) and
``OUT/broken_videos.tsv`` (path, reason) for every file that does not decode; broken files are left
out of the CSVs. Each video is opened and its first, middle and last frames decoded (``--full-check``:
every frame), in parallel.

Any storage option (--short-side, --fps, --gop, --codec, --crf, --tune, --bframes,
--encoder-preset) re-encodes every video with PyAV under ``OUT/videos`` (no audio, constant frame
rate) and the CSVs list those copies: training decodes far fewer bytes and frames per clip.
``--fps 15`` keeps the frame nearest in time to every 1/15 s; a recipe that reads every second
frame at 30 fps then reads every stored frame, as long as it samples by time
(``DATA.TARGET_FPS 30``), so that a clip still lasts as many seconds. ``--tune fastdecode``
(x264 without CABAC and deblocking) decodes about 1.7x faster for about 10% more disk; a keyframe
every ``--gop`` stored frames bounds what a clip decodes before its first frame.
``OUT/storage.json`` records the options. The checking and re-encoding are
:mod:`rs3d.data.storage`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

from rs3d.data.storage import CODECS, Storage, prepare_video
from rs3d.errors import DataError

from . import run_tool
from .args import command_parser, parse_command
from .videos import is_video_name


def find_videos(root: Path, splits, single_split: str):
    """{split: [(path, class_name)]} and the class names (sorted folders of the first split)."""
    layout = {s: root / s for s in splits if (root / s).is_dir()}
    if not layout:
        layout = {single_split: root}
    found, classes = {}, None
    for split, folder in layout.items():
        names = sorted(d.name for d in folder.iterdir() if d.is_dir())
        if classes is None:
            classes = names
        items = []
        for name in names:
            for f in sorted((folder / name).iterdir()):
                if f.is_file() and is_video_name(f):
                    items.append((str(f), name))
        found[split] = items
    return found, classes or []


def _work(job):
    src, dst, storage, full, backend = job
    return src, dst, prepare_video(src, dst, storage, full, backend)


EXAMPLES = (
    "rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400 --workers 16",
    "rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400_prepared --short-side 256 --fps 15 --gop 16 "
    "--codec mpeg4",
)


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "rs3d-prepare-kinetics",
        __doc__,
        config=False,
        overrides=False,
        docs="docs/data.md (Preparing Kinetics, Storage)",
        examples=EXAMPLES,
    )
    p.add_argument("root", help="ROOT/<split>/<class>/<video> or ROOT/<class>/<video>")
    p.add_argument("--out", required=True, help="folder for the CSVs, classes.txt, report (and videos)")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    p.add_argument("--split", default="train", help="split name when ROOT has no split folders")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--full-check", action="store_true", help="decode every frame, not 3")
    p.add_argument("--backend", default="pyav", choices=["pyav", "decord"])
    g = p.add_argument_group("storage (any of these re-encodes the videos under OUT/videos)")
    g.add_argument("--short-side", type=int, default=None, help="short side in pixels (256, 320); never enlarged")
    g.add_argument(
        "--fps", type=float, default=None, help="stored frame rate (e.g. 15; never raised); train with DATA.TARGET_FPS"
    )
    g.add_argument("--gop", type=int, default=None, help="keyframe interval in stored frames (default 32)")
    g.add_argument("--codec", default=None, choices=sorted(CODECS), help="default h264")
    g.add_argument(
        "--crf", type=int, default=None, help="quality, lower is better (default 23; mpeg4: quantiser crf/5.5)"
    )
    g.add_argument("--tune", default=None, choices=["fastdecode"], help="x264/x265 tuning")
    g.add_argument("--bframes", type=int, default=None, help="B-frames between references (encoder default)")
    g.add_argument("--encoder-preset", default=None, help="x264/x265 preset (default veryfast)")
    return p


def _run(argv: Optional[Sequence[str]] = None) -> int:
    a = parse_command(build_parser(), argv)
    root, out = Path(a.root), Path(a.out)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    # --short-side 0 and --fps 0 mean "as the source" (and alone ask for no re-encoding, as before)
    asked = {
        k: v
        for k, v in (
            ("short_side", a.short_side or None),
            ("fps", a.fps or None),
            ("gop", a.gop),
            ("codec", a.codec),
            ("crf", a.crf),
            ("tune", a.tune),
            ("bframes", a.bframes),
            ("preset", a.encoder_preset),
        )
        if v is not None
    }
    storage = Storage(**asked) if asked else None
    found, classes = find_videos(root, a.splits, a.split)
    if not classes or not any(found.values()):
        raise DataError(f"{root}: no <class>/<video> folders with videos found")
    out.mkdir(parents=True, exist_ok=True)
    label_of = {c: i for i, c in enumerate(classes)}
    jobs = []
    for split, items in found.items():
        for path, cls in items:
            dst = ""
            if storage is not None:
                dst = str(out / "videos" / split / cls / (Path(path).stem + ".mp4"))
            jobs.append((path, dst, storage, a.full_check, a.backend))
    from tqdm import tqdm

    t0 = time.time()
    results = {}
    desc = "checking" + (" + re-encoding" if storage is not None else "")
    # Spawned, not forked: a fork of a process whose decoder or torch threads are running can
    # crash or hang in the child (this command is also called from Python that has them).
    pool = (
        ProcessPoolExecutor(max_workers=a.workers, mp_context=multiprocessing.get_context("spawn"))
        if a.workers > 1
        else None
    )
    try:
        done = pool.map(_work, jobs, chunksize=4) if pool else map(_work, jobs)
        for src, dst, reason in tqdm(done, total=len(jobs), desc=desc, unit="video"):
            results[src] = (dst, reason)
    finally:
        if pool:
            pool.shutdown()
    broken = [(src, reason) for src, (_, reason) in results.items() if reason]
    for split, items in found.items():
        lines = []
        for path, cls in items:
            if label_of.get(cls) is None:
                broken.append((path, f"class folder {cls!r} is not a class of the first split"))
                continue
            dst, reason = results[path]
            if not reason:
                shown = os.path.relpath(dst, out) if dst else os.path.abspath(path)
                lines.append(f"{shown} {label_of[cls]}")
        (out / f"{split}.csv").write_text("\n".join(lines) + ("\n" if lines else ""))
        print(f"{out / (split + '.csv')}: {len(lines)} videos")
    (out / "classes.txt").write_text("\n".join(classes) + "\n")
    with open(out / "broken_videos.tsv", "w") as f:
        f.write("path\treason\n")
        for path, reason in sorted(broken):
            f.write(f"{path}\t{reason}\n")
    print(
        f"{len(classes)} classes, {len(broken)} broken videos listed in "
        f"{out / 'broken_videos.tsv'} ({time.time() - t0:.0f} s)"
    )
    if storage is not None:
        (out / "storage.json").write_text(json.dumps(dataclasses.asdict(storage), indent=1) + "\n")
        if storage.fps:
            print(
                f"stored at most {storage.fps:g} fps: sample clips by time (DATA.TARGET_FPS, e.g. 30 "
                "for a recipe whose SAMPLING_RATE counts frames at 30 fps)"
            )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
