"""Every file in configs/ loads, and builds its model (at a tiny width) that runs forward."""
from pathlib import Path

import pytest
import torch

from rs3d.config import load_config
from rs3d.models import build_model

CONFIGS = sorted(str(p.relative_to(Path(__file__).resolve().parents[1]))
                 for p in (Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
REPO = Path(__file__).resolve().parents[1]


def test_configs_found():
    names = {Path(c).name for c in CONFIGS}
    assert {"k400_rs50.yaml", "k400_r3d50_baseline.yaml", "demo.yaml", "k400_rs200_48x2.yaml"} <= names
    assert len([c for c in CONFIGS if "/ablation/" in c]) == 10


@pytest.mark.parametrize("path", CONFIGS)
def test_config_loads_and_builds(path):
    cfg = load_config(str(REPO / path), ["MODEL.WIDTH_MULTIPLIER", 0.0625])
    model = build_model(cfg).eval()
    x = torch.zeros(1, 3, 2, 16, 16)
    with torch.no_grad():
        assert model(x).shape == (1, cfg.MODEL.NUM_CLASSES)


def test_rs50_is_the_released_recipe():
    cfg = load_config(str(REPO / "configs/k400_rs50.yaml"))
    assert (cfg.MODEL.ARCH, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == ("resnet3d_rs50", 32, 2)
    assert (cfg.TRAIN.BATCH_SIZE, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH) == (1024, 0.8, 350)
    assert (cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.WARMUP_EPOCHS, cfg.TRAIN.LABEL_SMOOTHING) == (4e-5, 5.0, 0.1)
    assert (cfg.MODEL.DROPOUT_RATE, cfg.MODEL.DROP_PATH_RATE) == (0.5, 0.1)
    assert cfg.TRAIN.EMA and cfg.TRAIN.AMP_DTYPE == "bfloat16" and cfg.DATA.TRAIN_JITTER_MODE == "area"
    assert load_config(str(REPO / "configs/k400_rs200_48x2.yaml")).DATA.NUM_FRAMES == 48


def test_ablation_rows_add_one_method_each():
    """Row k differs from row k-1 in the keys of its method only (appendix H order)."""
    rows = sorted(c for c in CONFIGS if "/ablation/" in c)
    expected = [
        {"MODEL.DROPOUT_RATE"}, {"TRAIN.LABEL_SMOOTHING"}, {"MODEL.DROP_PATH_RATE"}, {"TRAIN.EMA"},
        {"SOLVER.WEIGHT_DECAY"}, {"SOLVER.MAX_EPOCH"}, {"DATA.TRAIN_JITTER_MODE", "MODEL.DROP_PATH_RATE"},
        {"MODEL.STEM_TYPE"}, {"MODEL.SE_RATIO"},
    ]

    def flat(cfg, prefix=""):
        out = {}
        for k, v in cfg.items():
            if hasattr(v, "items"):
                out.update(flat(v, prefix + k + "."))
            else:
                out[prefix + k] = v
        return out

    prev = None
    for i, row in enumerate(rows):
        cur = flat(load_config(str(REPO / row)))
        cur.pop("OUTPUT_DIR")
        if prev is not None:
            changed = {k for k in cur if cur[k] != prev[k]}
            assert changed == expected[i - 1], (row, changed)
        prev = cur
