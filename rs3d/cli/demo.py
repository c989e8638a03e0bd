"""``rs3d-demo``: the whole pipeline on a laptop: synthetic videos -> training -> 30-view test -> metrics.

    rs3d-demo                                  # what `make demo` runs (configs/demo.yaml)
    rs3d-demo DATA.PATH_TO_DATA_DIR /data/mine MODEL.NUM_CLASSES 7 OUTPUT_DIR out/mine

Steps: (1) write the synthetic motion dataset to
DATA.PATH_TO_DATA_DIR unless it already holds train.csv (so your own dataset in the same CSV layout
is used as is); (1b) choose the clip length (``DATA.TARGET_FPS``) and the flip from the training
videos and class names (:mod:`rs3d.data.recipe`; keys you set are kept);
(2) ``rs3d-train`` with the same config and overrides, as a child process (it
resumes if OUTPUT_DIR already has checkpoints); (3) ``rs3d-test`` on the newest checkpoint, also a
child process; (4) print ``OUTPUT_DIR/test_metrics.json``. Relative paths are taken from the
current folder; without ``--cfg`` the demo config of the source tree is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from rs3d.config import load_config
from rs3d.data.recipe import own_dataset_overrides
from rs3d.data.synthetic import DEMO_SET, make_synthetic_dataset
from rs3d.errors import ConfigError

from . import run_tool
from .args import command_parser, parse_command

# The source tree's configs/ (the demo config is not installed with the package).
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def build_parser():
    return command_parser(
        "rs3d-demo",
        __doc__,
        docs="docs/training.md (and README.md, Quick start)",
        examples=("rs3d-demo", "rs3d-demo DATA.PATH_TO_DATA_DIR /data/mine MODEL.NUM_CLASSES 7 OUTPUT_DIR out/mine"),
        exit_statuses={1: "training or the test failed (a failing step's own status is passed on)"},
    )


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv)
    if not args.cfg_file:
        if not DEMO_CONFIG.is_file():
            raise ConfigError(
                f"{DEMO_CONFIG}: demo config not found; pass --cfg configs/demo.yaml from a checkout of the source"
            )
        args.cfg_file = str(DEMO_CONFIG)
    cfg = load_config(args.cfg_file, args.opts)
    t0 = time.time()
    data_dir = Path(cfg.DATA.PATH_TO_DATA_DIR)
    if not (data_dir / "train.csv").is_file():
        if cfg.MODEL.NUM_CLASSES != DEMO_SET["num_classes"]:
            raise ConfigError(
                f"{data_dir} has no train.csv and MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}; "
                f"the synthetic set has {DEMO_SET['num_classes']} classes"
            )
        print(f"[demo] writing the synthetic dataset to {data_dir} ...", flush=True)
        make_synthetic_dataset(str(data_dir), **DEMO_SET)
        print(f"[demo] dataset ready in {time.time() - t0:.0f} s", flush=True)
    else:
        print(f"[demo] using the dataset in {data_dir}", flush=True)

    # The own-dataset recipe: clip length and flip chosen from the data (rs3d.data.recipe); what
    # the user set on the command line or in the config is kept, and comes last so it wins.

    recipe, notes = own_dataset_overrides(cfg, args.opts[0::2])
    for note in notes:
        print(f"[demo] {note}", flush=True)
    forwarded = ["--cfg", args.cfg_file, *recipe, *args.opts]
    for command, module in (("rs3d-train", "rs3d.cli.train"), ("rs3d-test", "rs3d.cli.test")):
        print(f"[demo] {command} {' '.join(forwarded)}", flush=True)
        # A child process each, as a user would run them: training's process group, threads and
        # memory are gone before the test starts.
        rc = subprocess.call([sys.executable, "-m", module, *forwarded], cwd=os.getcwd())
        if rc != 0:
            print(f"[demo] {command} failed with exit status {rc}", file=sys.stderr)
            return rc
    metrics_path = Path(cfg.OUTPUT_DIR) / "test_metrics.json"
    metrics = json.loads(metrics_path.read_text())
    print(f"[demo] {metrics_path}:")
    for key in ("top1", "top5", "mean_class_accuracy", "num_videos", "num_failed", "views_per_video", "checkpoint"):
        if key in metrics:
            print(f"    {key}: {metrics[key]}")
    print(f"[demo] done in {time.time() - t0:.0f} s; curves: {Path(cfg.OUTPUT_DIR) / 'training_curves.png'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
