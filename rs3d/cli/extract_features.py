"""``rs3d-extract-features``: embeddings of a video list or folder, one file per video.

    rs3d-extract-features --cfg configs/k400_rs50.yaml --out feats \\
        TEST.CHECKPOINT_FILE_PATH out/rs50/checkpoints/checkpoint_best.pyth      # TEST.SPLIT.csv
    rs3d-extract-features --cfg CFG --folder my_videos --out feats --per-clip
    torchrun --nproc_per_node 8 -m rs3d.cli.extract_features --cfg CFG --csv list.csv --out feats


Per video: the test's views (``TEST.NUM_ENSEMBLE_VIEWS`` x ``TEST.NUM_SPATIAL_CROPS``), the
pooled output of ``--layer`` (res5 by default: the embedding the classifier reads) averaged over
the views. Run it again to resume: videos already written are skipped. ``index.csv`` lists every
video with its file or the reason it failed. Layout: ``rs3d.inference.features``.
``--folder`` takes the video files under the folder and its subfolders (a Kinetics-style
``class/video.mp4`` tree), sorted by path; their labels are unknown (-1 in ``index.csv``).
Exit status: 0 all written, 1 some video could not be decoded, 2 bad command/config/checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from rs3d.checkpoint import load_model_config
from rs3d.config import check_data_dir
from rs3d.data import VideoRecord, read_video_list
from rs3d.data.video_root import resolve_video_root
from rs3d.engine.logs import setup_logging
from rs3d.errors import DataError
from rs3d.inference.features import extract_from_config

from . import run_tool
from .args import command_parser, parse_command
from .videos import videos_in_folder


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "rs3d-extract-features",
        __doc__,
        docs="docs/inference.md",
        examples=(
            "rs3d-extract-features --cfg configs/k400_rs50.yaml --out feats TEST.CHECKPOINT_FILE_PATH ckpt.pyth",
            "rs3d-extract-features --cfg CFG --folder my_videos --out feats --per-clip",
        ),
        exit_statuses={1: "some video could not be decoded (listed in index.csv; the others written)"},
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--csv",
        default="",
        help="video list 'path label' per line (default: "
        "DATA.PATH_TO_DATA_DIR/TEST.SPLIT.csv); relative paths are resolved against "
        "DATA.PATH_PREFIX, else the folder its video_root.txt names, else the list's folder",
    )
    src.add_argument("--folder", default="", help="every video file under this folder (recursive)")
    p.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/features_LAYER)")
    p.add_argument(
        "--layer",
        default="res5",
        help="res2..res5, stem, logits or a module name "
        "(e.g. layer3.1), pooled over time and space; or scores: the class scores as the "
        "test computes them (softmax, or sigmoids for a multi-label model, aggregated by "
        "TEST.ENSEMBLE_METHOD)",
    )
    p.add_argument("--per-clip", action="store_true", help="also write each view's features [clips, crops, C]")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("npy", "sharded"),
        default="npy",
        help="npy: one file per video; sharded: one array per --shard-size videos",
    )
    p.add_argument("--shard-size", type=int, default=1000)
    return p


def videos_under(folder: str):
    """``VideoRecord`` (label -1) of every video file under ``folder``, recursively, sorted by path."""
    if not Path(folder).is_dir():
        raise DataError(f"{folder}: no such folder")
    return [VideoRecord(p, -1) for p in videos_in_folder(Path(folder))]


def _records(cfg, args):
    """(records, root) of the input the command names."""
    if args.folder:
        return videos_under(args.folder), args.folder
    if args.csv:
        root = resolve_video_root(os.path.dirname(os.path.abspath(args.csv)), cfg.DATA.PATH_PREFIX)[0]
        path = args.csv
    else:
        check_data_dir(cfg, [cfg.TEST.SPLIT])
        root = resolve_video_root(cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX)[0]
        path = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, f"{cfg.TEST.SPLIT}.csv")
    return read_video_list(path, root, cfg.DATA.PATH_LABEL_SEPARATOR, duplicates="drop"), root


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv)
    setup_logging()
    cfg = load_model_config(args.cfg_file, args.opts)
    records, root = _records(cfg, args)
    out = args.out or os.path.join(cfg.OUTPUT_DIR, f"features_{args.layer}")
    summary = extract_from_config(
        cfg, records, out, root=root, layer=args.layer, per_clip=args.per_clip, fmt=args.fmt, shard_size=args.shard_size
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            json.dumps(
                {k: v for k, v in summary.items() if k != "failed"}
                | {"num_failed": len(summary["failed"]), "out": out},
                indent=2,
            )
        )
        for f in summary["failed"]:
            print(f"failed: {f['path']}: {f['reason']}")
    return 1 if summary["failed"] else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
