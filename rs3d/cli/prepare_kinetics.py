"""``rs3d-prepare-kinetics``: rs3d's video lists from a Kinetics-style folder tree, every video checked.

    rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400 --workers 16
    rs3d-prepare-kinetics /data/kinetics400 --out datasets/k400_256 --short-side 256

(``python tools/prepare_kinetics.py ...`` is the same command.)
ROOT is either ``ROOT/<split>/<class>/<video>`` (splits named by --splits) or a single split
``ROOT/<class>/<video>`` (named by --split). Writes ``OUT/{split}.csv`` (``path label``),
``OUT/classes.txt`` (sorted class folder names of the first split; line i = label i) and
``OUT/broken_videos.tsv`` (path, reason) for every file that does not decode; broken files are left
out of the CSVs. Each video is opened and its first, middle and last frames decoded (``--full-check``:
every frame), in parallel. With ``--short-side 256`` (or 320) every video is also re-encoded with
PyAV (h264, short side resized, no audio) under ``OUT/videos``, which makes training decode 3-5x
cheaper; the CSVs then list those copies.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

from rs3d.errors import DataError

from . import run_tool
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


def check_video(path: str, full: bool = False, backend: str = "pyav", timeout_s: float = 120):
    """'' if the video decodes, else the reason."""
    import numpy as np

    from rs3d.data.decode import DecodeError, read_frames

    try:
        if full:
            fn = lambda n: np.arange(n)  # noqa: E731
        else:
            fn = lambda n: np.unique([0, n // 2, n - 1])  # noqa: E731
        read_frames(path, fn, backend=backend, timeout_s=timeout_s)
        return ""
    except DecodeError as e:
        return str(e)
    except Exception as e:  # any decoder surprise is a broken file, not a crash of the tool
        return f"{type(e).__name__}: {e}"


def reencode(src: str, dst: str, short_side: int, crf: int = 23) -> None:
    """Re-encode ``src`` to h264 ``dst`` with the short side resized (never enlarged), same fps."""
    import av

    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    tmp = dst + ".part.mp4"
    with av.open(src) as inp, av.open(tmp, "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        w, h = vin.codec_context.width, vin.codec_context.height
        scale = min(1.0, short_side / min(w, h))
        ow, oh = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
        rate = vin.average_rate or 30
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = ow, oh, "yuv420p"
        vout.options = {"crf": str(crf), "preset": "veryfast", "g": "32"}
        time_base = Fraction(1, 1) / Fraction(rate)
        for i, frame in enumerate(inp.decode(vin)):
            frame = frame.reformat(width=ow, height=oh, format="yuv420p")
            frame.pts, frame.time_base = i, time_base  # constant frame rate, as decoders count
            for packet in vout.encode(frame):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)
    os.replace(tmp, dst)


def _work(job):
    src, dst, short_side, full, backend = job
    reason = check_video(src, full, backend)
    if reason or not dst:
        return src, dst, reason
    try:
        reencode(src, dst, short_side)
    except Exception as e:
        return src, dst, f"re-encoding failed: {type(e).__name__}: {e}"
    reason = check_video(dst, full, backend)
    return src, dst, (f"re-encoded copy does not decode: {reason}" if reason else "")


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="rs3d-prepare-kinetics", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="ROOT/<split>/<class>/<video> or ROOT/<class>/<video>")
    p.add_argument("--out", required=True, help="folder for the CSVs, classes.txt, report (and videos)")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    p.add_argument("--split", default="train", help="split name when ROOT has no split folders")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--short-side", type=int, default=0, help="re-encode to this short side (256, 320)")
    p.add_argument("--full-check", action="store_true", help="decode every frame, not 3")
    p.add_argument("--backend", default="pyav", choices=["pyav", "decord"])
    a = p.parse_args(argv)
    root, out = Path(a.root), Path(a.out)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    found, classes = find_videos(root, a.splits, a.split)
    if not classes or not any(found.values()):
        raise DataError(f"{root}: no <class>/<video> folders with videos found")
    out.mkdir(parents=True, exist_ok=True)
    label_of = {c: i for i, c in enumerate(classes)}
    jobs = []
    for split, items in found.items():
        for path, cls in items:
            dst = ""
            if a.short_side:
                dst = str(out / "videos" / split / cls / (Path(path).stem + ".mp4"))
            jobs.append((path, dst, a.short_side, a.full_check, a.backend))
    from tqdm import tqdm

    t0 = time.time()
    results = {}
    desc = "checking" + (" + re-encoding" if a.short_side else "")
    # Spawned, not forked: a fork of a process whose decoder or torch threads are running can
    # crash or hang in the child (this command is also called from Python that has them).
    pool = (ProcessPoolExecutor(max_workers=a.workers, mp_context=multiprocessing.get_context("spawn"))
            if a.workers > 1 else None)
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
    print(f"{len(classes)} classes, {len(broken)} broken videos listed in "
          f"{out / 'broken_videos.tsv'} ({time.time() - t0:.0f} s)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
