"""The evaluator reads what the trainer writes: tools/train_net.py then tools/test_net.py, real processes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rs3d.data.synthetic import make_synthetic_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_test_net_evaluates_the_ema_of_the_newest_training_checkpoint(tmp_path):
    data = tmp_path / "data"
    make_synthetic_dataset(
        str(data),
        num_classes=3,
        train_per_class=2,
        val_per_class=1,
        test_per_class=1,
        min_frames=20,
        max_frames=24,
        workers=1,
    )
    common = [
        "MODEL.ARCH",
        "resnet3d_rs26",
        "MODEL.WIDTH_MULTIPLIER",
        "0.25",
        "MODEL.NUM_CLASSES",
        "3",
        "DATA.PATH_TO_DATA_DIR",
        str(data),
        "OUTPUT_DIR",
        str(tmp_path / "out"),
        "DATA.NUM_FRAMES",
        "4",
        "DATA.TRAIN_CROP_SIZE",
        "32",
        "DATA.TEST_CROP_SIZE",
        "32",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "DEVICE",
        "cpu",
    ]
    train = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "train_net.py"),
            *common,
            "TRAIN.BATCH_SIZE",
            "2",
            "SOLVER.MAX_EPOCH",
            "2",
            "TRAIN.AMP_DTYPE",
            "float32",
            "TRAIN.EVAL_PERIOD",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    test = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "test_net.py"),
            *common,
            "TEST.NUM_ENSEMBLE_VIEWS",
            "2",
            "TEST.NUM_SPATIAL_CROPS",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    m = json.loads((tmp_path / "out" / "test_metrics.json").read_text())
    assert m["checkpoint"].endswith("checkpoint_epoch_00002.pyth")
    assert m["weights"] == "ema" and m["num_videos"] == 3 and m["num_failed"] == 0
    # The EMA differs from the raw weights after training, so "ema" is a real choice.
    ckpt = torch.load(m["checkpoint"], weights_only=True)
    assert any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["model"])
