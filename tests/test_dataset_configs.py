"""The dataset configs beyond Kinetics-400: what each one promises in its comments."""

from pathlib import Path

import pytest

from rs3d.config import load_config

REPO = Path(__file__).resolve().parents[1]
K400_BEST = "output/k400_rs50/checkpoints/checkpoint_best.pyth"


def flat(cfg, prefix=""):
    out = {}
    for k, v in cfg.items():
        out.update(flat(v, prefix + k + ".") if hasattr(v, "items") else {prefix + k: v})
    return out


@pytest.mark.parametrize("dataset,classes", [("ucf101", 101), ("hmdb51", 51)])
def test_three_official_splits_fine_tuned_from_k400(dataset, classes):
    cfgs = [load_config(str(REPO / f"configs/{dataset}/rs50_k400_split{n}.yaml")) for n in (1, 2, 3)]
    for n, cfg in enumerate(cfgs, start=1):
        assert cfg.MODEL.NUM_CLASSES == classes and cfg.DATA.PATH_TO_DATA_DIR == f"datasets/{dataset}/split{n}"
        assert cfg.TRAIN.CHECKPOINT_FILE_PATH == K400_BEST and cfg.SOLVER.HEAD_LR_MULT > 1
    # The splits differ in their data and output folders only.
    a, b = flat(cfgs[0]), flat(cfgs[2])
    assert {k for k in a if a[k] != b[k]} == {"DATA.PATH_TO_DATA_DIR", "OUTPUT_DIR"}


def test_ssv2_samples_segments_and_swaps_mirrored_labels():
    cfg = load_config(str(REPO / "configs/ssv2_rs50.yaml"))
    assert (cfg.MODEL.NUM_CLASSES, cfg.DATA.SAMPLING, cfg.DATA.FLIP_LABEL_MAP) == (174, "segment", "auto")
    assert cfg.DATA.RANDOM_FLIP and cfg.TRAIN.CHECKPOINT_FILE_PATH == K400_BEST


def test_charades_is_multi_label_with_max_over_views():
    cfg = load_config(str(REPO / "configs/charades_rs50.yaml"))
    assert (cfg.MODEL.NUM_CLASSES, cfg.DATA.MULTI_LABEL, cfg.TEST.ENSEMBLE_METHOD) == (157, True, "max")
    assert cfg.TRAIN.LABEL_SMOOTHING == 0.0 and cfg.TRAIN.CHECKPOINT_FILE_PATH == K400_BEST


@pytest.mark.parametrize("name,classes", [("k600_rs50", 600), ("k700_rs50", 700)])
def test_larger_kinetics_use_the_k400_recipe_from_scratch(name, classes):
    cfg = flat(load_config(str(REPO / f"configs/{name}.yaml")))
    k400 = flat(load_config(str(REPO / "configs/k400_rs50.yaml")))
    assert cfg["MODEL.NUM_CLASSES"] == classes and cfg["TRAIN.CHECKPOINT_FILE_PATH"] is None
    assert {k for k in cfg if cfg[k] != k400[k]} == {"MODEL.NUM_CLASSES", "DATA.PATH_TO_DATA_DIR", "OUTPUT_DIR"}
