#!/usr/bin/env python
"""The whole pipeline on a laptop: synthetic videos -> training -> 30-view test -> metrics.

    python tools/demo.py                       # what `make demo` runs (configs/demo.yaml)
    python tools/demo.py DATA.PATH_TO_DATA_DIR /data/mine MODEL.NUM_CLASSES 7 OUTPUT_DIR out/mine

Steps: (1) write the synthetic motion dataset to DATA.PATH_TO_DATA_DIR unless it already holds
train.csv (so your own dataset in the same CSV layout is used as is); (2) ``tools/train_net.py``
with the same config and overrides (it resumes if OUTPUT_DIR already has checkpoints); (3)
``tools/test_net.py`` on the newest checkpoint; (4) print ``OUTPUT_DIR/test_metrics.json``.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rs3d.config import ConfigError, load_config, parse_args  # noqa: E402

# The synthetic set the demo config is tuned for: 4 motion classes (move_up, move_down,
# move_sideways, rotate), 160 training videos per class, low background clutter and large objects
# (the motion, not the texture, is what the small model has to find in a few minutes).
SYNTHETIC = dict(num_classes=4, train_per_class=160, val_per_class=10, test_per_class=25, seed=0,
                 clutter=0.3, object_size=(0.2, 0.28))


def main(argv=None) -> int:
    args = parse_args(argv, description="rs3d demo: synthetic data, training, 30-view test")
    if not args.cfg_file:
        args.cfg_file = str(REPO / "configs" / "demo.yaml")
    try:
        cfg = load_config(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    data_dir = Path(cfg.DATA.PATH_TO_DATA_DIR)
    if not (data_dir / "train.csv").is_file():
        from rs3d.data.synthetic import make_synthetic_dataset
        if cfg.MODEL.NUM_CLASSES != SYNTHETIC["num_classes"]:
            print(f"error: {data_dir} has no train.csv and MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}; "
                  f"the synthetic set has {SYNTHETIC['num_classes']} classes", file=sys.stderr)
            return 2
        print(f"[demo] writing the synthetic dataset to {data_dir} ...", flush=True)
        make_synthetic_dataset(str(data_dir), **SYNTHETIC)
        print(f"[demo] dataset ready in {time.time() - t0:.0f} s", flush=True)
    else:
        print(f"[demo] using the dataset in {data_dir}", flush=True)

    forwarded = ["--cfg", args.cfg_file, *args.opts]
    for tool in ("train_net.py", "test_net.py"):
        print(f"[demo] {tool} {' '.join(forwarded)}", flush=True)
        rc = subprocess.call([sys.executable, str(REPO / "tools" / tool), *forwarded], cwd=os.getcwd())
        if rc != 0:
            print(f"[demo] {tool} failed with exit status {rc}", file=sys.stderr)
            return rc
    metrics_path = Path(cfg.OUTPUT_DIR) / "test_metrics.json"
    metrics = json.loads(metrics_path.read_text())
    print(f"[demo] {metrics_path}:")
    for key in ("top1", "top5", "mean_class_accuracy", "num_videos", "num_failed", "views_per_video",
                "checkpoint"):
        if key in metrics:
            print(f"    {key}: {metrics[key]}")
    print(f"[demo] done in {time.time() - t0:.0f} s; curves: {Path(cfg.OUTPUT_DIR) / 'training_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
