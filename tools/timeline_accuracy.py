"""Does a trained model's timeline name the class that is on screen? Measured on long videos cut
together from synthetic clips of known classes (``rs3d.data.synthetic.render_video``).

    python tools/timeline_accuracy.py output/demo/checkpoints/checkpoint_epoch_00100.pyth --videos 5

Each of ``--videos`` videos is ``--segments`` segments of ``--seconds`` seconds, every class of the
checkpoint in turn in a shuffled order, each segment a new object and background (a cut, as in an
edited video), at one of the synthetic set's sizes and frame rates, encoded with libx264. The
timeline runs with its defaults (window = the trained clip's span, stride half of it, 3-window
smoothing). Printed, for the raw and the smoothed scores: the share of windows whose top class is the class at the
window's centre, over all windows and over the windows inside a single segment (a window across a
cut sees two classes). A developer check of the ``rs3d-timeline`` defaults on a real model, not a
command.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from rs3d.checkpoint import load_model_config
from rs3d.data.synthetic import FPS, SIZES, render_video, write_video
from rs3d.inference.timeline import run_timeline


def cut_together(path: str, labels, seconds: float, rng: np.random.Generator) -> float:
    """Write one video of ``labels`` in turn, ``seconds`` each; returns its frame rate."""
    h, w = SIZES[int(rng.integers(len(SIZES)))]
    fps = FPS[int(rng.integers(len(FPS)))]
    length = int(round(seconds * fps))
    parts = [render_video(c, rng, h, w, length, clutter=0.3, object_size=(0.2, 0.28)) for c in labels]
    write_video(path, np.concatenate(parts), fps, "libx264", {"g": str(fps)})
    return fps


def shares(windows, labels, seconds: float, key: str) -> dict:
    """Whether each window's top class (``key``: "top" smoothed, "top_raw") is the class at its
    centre: all windows, and those inside one segment."""
    right_all, right_inside = [], []
    for win in windows:
        segment = min(int(win["center_s"] // seconds), len(labels) - 1)
        right = win[key][0]["class"] == labels[segment]
        right_all.append(right)
        if int(win["start_s"] // seconds) == int((win["end_s"] - 1e-6) // seconds):
            right_inside.append(right)
    return dict(all=right_all, inside=right_inside)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--videos", type=int, default=5)
    p.add_argument("--segments", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=2000)
    args = p.parse_args(argv)
    cfg = load_model_config("", ["TEST.CHECKPOINT_FILE_PATH", args.checkpoint, "DEVICE", "cpu"])
    classes = cfg.MODEL.NUM_CLASSES
    counts = {"raw": dict(all=[], inside=[]), "smoothed": dict(all=[], inside=[])}
    window_s = None
    with tempfile.TemporaryDirectory() as tmp:
        for v in range(args.videos):
            rng = np.random.default_rng(args.seed + v)
            labels = [int(c) for c in rng.permutation(np.arange(args.segments) % classes)]
            path = str(Path(tmp) / f"long_{v}.mp4")
            cut_together(path, labels, args.seconds, rng)
            (summary,) = run_timeline(cfg, [path], out_dir=str(Path(tmp) / "timeline"))
            if summary.get("error"):
                raise SystemExit(f"{path}: {summary['error']}")
            window_s = summary["window_s"]
            for name, key in (("raw", "top_raw"), ("smoothed", "top")):
                got = shares(summary["windows"], labels, args.seconds, key)
                for part in got:
                    counts[name][part] += got[part]
    report = {
        "checkpoint": args.checkpoint,
        "videos": args.videos,
        "segments_per_video": args.segments,
        "segment_seconds": args.seconds,
        "window_s": round(window_s, 3),
        "windows": len(counts["raw"]["all"]),
        "windows_inside_one_segment": len(counts["raw"]["inside"]),
    }
    for name, c in counts.items():
        report[f"share_right_{name}"] = round(float(np.mean(c["all"])), 3)
        report[f"share_right_{name}_inside_one_segment"] = round(float(np.mean(c["inside"])), 3)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
