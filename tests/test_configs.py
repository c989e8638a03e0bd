"""Every file in configs/ loads, and builds its model (at a tiny width) that runs forward."""

from pathlib import Path

import pytest
import torch

from rs3d.config import load_config
from rs3d.models import build_model

CONFIGS = sorted(
    str(p.relative_to(Path(__file__).resolve().parents[1]))
    for p in (Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml")
)
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
    assert cfg.TRAIN.EMA and cfg.TRAIN.AMP_DTYPE == "bfloat16" and cfg.DATA.TRAIN_JITTER_MODE == "tf_area"
    assert load_config(str(REPO / "configs/k400_rs200_48x2.yaml")).DATA.NUM_FRAMES == 48
    assert cfg.AUG.RAND_AUGMENT_NUM_OPS == 0 and not cfg.MIXUP.ENABLE  # scale jittering replaces RandAugment


def test_ablation_rows_before_scale_jittering_use_randaugment_as_the_paper():
    """Rows 0-6 train with RandAugment (2 ops, magnitude 15: appendix F at 224 px); row 7 replaces it."""
    rows = sorted(c for c in CONFIGS if "/ablation/" in c)
    for row in rows:
        a = load_config(str(REPO / row)).AUG
        before = int(Path(row).name[:2]) < 7
        assert (a.RAND_AUGMENT_NUM_OPS, a.RAND_AUGMENT_MAGNITUDE) == ((2, 15) if before else (0, 15)), row


def test_ablation_rows_add_one_method_each():
    """Row k differs from row k-1 in the keys of its method only (appendix H order)."""
    rows = sorted(c for c in CONFIGS if "/ablation/" in c)
    expected = [
        {"MODEL.DROPOUT_RATE"},
        {"TRAIN.LABEL_SMOOTHING"},
        {"MODEL.DROP_PATH_RATE"},
        {"TRAIN.EMA"},
        {"SOLVER.WEIGHT_DECAY"},
        {"SOLVER.MAX_EPOCH"},
        {"DATA.TRAIN_JITTER_MODE", "MODEL.DROP_PATH_RATE", "AUG.RAND_AUGMENT_NUM_OPS"},
        {"MODEL.STEM_TYPE"},
        {"MODEL.SE_RATIO"},
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


# What each convention sets (rs3d/config/defaults.py; docs/reference.md, "Conventions").
TF_CONVENTIONS = {
    ("MODEL", "INIT"): "tf",
    ("BN", "MOMENTUM"): 1.0,
    ("SOLVER", "RUN_LENGTH"): "examples",
    ("SOLVER", "MOMENTUM_FORM"): "keras",
    ("SOLVER", "SELF_GATING_WEIGHT_DECAY"): False,
    ("TRAIN", "EMA_FORM"): "tf",
    ("TEST", "VIEW_POSITIONS"): "tf",
    ("DATA", "TRAIN_JITTER_MODE"): "tf_area",
}
PYTORCH_CONVENTIONS = {
    ("MODEL", "INIT"): "pytorch",
    ("BN", "MOMENTUM"): 0.1,
    ("SOLVER", "RUN_LENGTH"): "epochs",
    ("SOLVER", "MOMENTUM_FORM"): "pytorch",
    ("SOLVER", "SELF_GATING_WEIGHT_DECAY"): True,
    ("TRAIN", "EMA_FORM"): "pytorch",
    ("TEST", "VIEW_POSITIONS"): "pytorch",
}
FINE_TUNING = ("configs/ucf101/", "configs/hmdb51/", "configs/charades_rs50.yaml", "configs/ssv2_rs50.yaml")
SHORT_SIDE_CROP = ("configs/k400_r3d50_baseline.yaml", "configs/ablation/0")  # PySlowFast's crop until row 7


def _conventions(path: str) -> dict:
    cfg = load_config(str(REPO / path))
    return {key: cfg[key[0]][key[1]] for key in TF_CONVENTIONS}


@pytest.mark.parametrize("path", CONFIGS)
def test_each_config_follows_one_convention_and_says_which(path):
    """The Kinetics recipes (k400_rs50.yaml and what inherits it to train from scratch) follow the
    released TF training code on every item; the demo and the fine-tuning configs follow PyTorch's;
    and each file says which, itself or in the file it inherits from."""
    got = _conventions(path)
    if path == "configs/demo.yaml" or path.startswith(FINE_TUNING):
        want = dict(PYTORCH_CONVENTIONS)
        want[("DATA", "TRAIN_JITTER_MODE")] = got[("DATA", "TRAIN_JITTER_MODE")]  # area or short_side
        assert got[("DATA", "TRAIN_JITTER_MODE")] != "tf_area"
    else:
        want = dict(TF_CONVENTIONS)
        if path.startswith(SHORT_SIDE_CROP) and got[("DATA", "TRAIN_JITTER_MODE")] == "short_side":
            want[("DATA", "TRAIN_JITTER_MODE")] = "short_side"  # the old recipe's crop, rows 0-6
        if path == "configs/k400_rs50_rsb.yaml":
            want[("SOLVER", "MOMENTUM_FORM")] = "pytorch"  # LAMB: Keras' SGD form does not apply
    assert got == want, path
    text, file = "", REPO / path
    while "Conventions:" not in text:
        text = file.read_text()
        base = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("_BASE_:")]
        if "Conventions:" in text or not base:
            break
        file = (file.parent / base[0]).resolve()
    assert "Conventions:" in text, f"{path} does not say which convention it follows"


def test_defaults_are_the_pytorch_convention():
    """Configs that do not ask (the demo, your own) keep the behaviour rs3d had before the TF options."""
    from rs3d.config import get_cfg

    cfg = get_cfg()
    assert {key: cfg[key[0]][key[1]] for key in PYTORCH_CONVENTIONS} == PYTORCH_CONVENTIONS
    assert cfg.DATA.TRAIN_JITTER_MODE == "area"
