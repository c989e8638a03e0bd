"""Fine-tuning from a checkpoint on the real synthetic videos: a new head, the backbone exactly as
loaded, frozen stages and BN statistics unchanged after training steps, learning-rate multipliers
in the optimizer's groups, the resolved choices in the log."""

import logging

import pytest
import torch
from torch import nn

import rs3d
from rs3d.config import load_config
from rs3d.engine.builder import build_training, seed_all
from rs3d.engine.distributed import DistInfo
from rs3d.engine.finetune import FinetuneOptions, is_kept_in_eval, lr_multiplier
from rs3d.engine.train import train_one_epoch
from rs3d.errors import ConfigError
from rs3d.models import build_model

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
ARCH, WIDTH = "resnet3d_rs26", 0.125
STEM = ("conv1.", "bn1.", "maxpool.")


def opts(data_dir, out_dir, **extra):
    """4 classes, 4x32x32 clips, batch 4: 3 optimizer steps per epoch on the synthetic set."""
    o = {
        "DATA.PATH_TO_DATA_DIR": str(data_dir),
        "OUTPUT_DIR": str(out_dir),
        "DEVICE": "cpu",
        "MODEL.ARCH": ARCH,
        "MODEL.NUM_CLASSES": 4,
        "MODEL.WIDTH_MULTIPLIER": WIDTH,
        "DATA.NUM_FRAMES": 4,
        "DATA.SAMPLING_RATE": 2,
        "DATA.TRAIN_CROP_SIZE": 32,
        "DATA.TEST_CROP_SIZE": 32,
        "DATA.DECODING_BACKEND": "pyav",
        "DATA_LOADER.NUM_WORKERS": 0,
        "TRAIN.BATCH_SIZE": 4,
        "TRAIN.AMP_DTYPE": "float32",
        "TRAIN.EVAL_PERIOD": 0,
        "TRAIN.EMA_DECAY": 0.9,
        "SOLVER.BASE_LR": 0.5,
        "SOLVER.REFERENCE_BATCH_SIZE": 4,
        "SOLVER.WARMUP_EPOCHS": 0.0,
        "SOLVER.MAX_EPOCH": 2,
        "TENSORBOARD.ENABLE": False,
    }
    o.update(extra)
    return [str(x) for kv in o.items() for x in kv]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An rs3d checkpoint of a 7-class model whose EMA (what fine-tuning starts from) differs from
    its raw weights and whose BN layers have non-trivial statistics."""
    torch.manual_seed(123)
    ema = rs3d.create_model(ARCH, num_classes=7, width_multiplier=WIDTH)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in ema.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    raw = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in ema.state_dict().items()}
    path = tmp_path_factory.mktemp("k7") / "source.pyth"
    torch.save({"model": raw, "ema": ema.state_dict(), "epoch": 5}, path)
    return path, {k: v.clone() for k, v in ema.state_dict().items()}


def build(synthetic_dataset, tmp_path, source, **extra):
    torch.set_num_threads(1)
    cfg = load_config(
        None, opts(synthetic_dataset, tmp_path / "run", **{"TRAIN.CHECKPOINT_FILE_PATH": str(source[0]), **extra})
    )
    return build_training(cfg, CPU)


def run_epoch(parts):
    train_one_epoch(parts, 0)
    return {k: v.clone() for k, v in parts.state.model.state_dict().items()}


def names_in(parts, group):
    ids = {id(p) for p in group["params"]}
    return {n for n, p in parts.state.model.named_parameters() if id(p) in ids}


def test_new_head_for_another_class_count_and_backbone_equal_to_the_source(synthetic_dataset, tmp_path, source, caplog):
    with caplog.at_level(logging.INFO, logger="rs3d"):
        parts = build(synthetic_dataset, tmp_path, source)
    model, src = parts.state.model, source[1]
    assert model.fc.weight.shape == (4, model.num_features) and model.fc.out_features == 4
    loaded = [k for k in src if not k.startswith("fc.")]
    assert loaded and all(torch.equal(model.state_dict()[k], src[k]) for k in loaded)  # the EMA weights
    cfg = load_config(None, opts(synthetic_dataset, tmp_path / "scratch"))
    seed_all(cfg.RNG_SEED)  # the classifier is the one a run from scratch starts with
    fresh = build_model(cfg)
    assert torch.equal(model.fc.weight, fresh.fc.weight) and torch.equal(model.fc.bias, fresh.fc.bias)
    text = caplog.text
    assert f"{len(loaded)} of {len(model.state_dict())} tensors loaded" in text
    assert "new classifier for 4 classes (the file's has 7)" in text and "ema weights" in text
    assert "fine-tuning: no stage frozen; BN statistics updated; lr x1 for the classifier" in text


def test_frozen_stages_unchanged_bitwise_after_training_steps(synthetic_dataset, tmp_path, source, caplog):
    with caplog.at_level(logging.INFO, logger="rs3d"):
        parts = build(synthetic_dataset, tmp_path, source, **{"TRAIN.FREEZE_STAGES": 2})
    assert "frozen stages: stem, res2 (TRAIN.FREEZE_STAGES 2)" in caplog.text
    before = {k: v.clone() for k, v in parts.state.model.state_dict().items()}
    after = run_epoch(parts)
    frozen = [k for k in before if k.startswith(STEM + ("layer1.",))]
    assert any("running_mean" in k for k in frozen) and any(k.endswith("conv1.weight") for k in frozen)
    assert [k for k in frozen if not torch.equal(before[k], after[k])] == []
    ema = parts.state.ema.module.state_dict()
    assert all(torch.equal(before[k], ema[k]) for k in frozen)  # the EMA of a constant stays exact
    for k in ("layer2.0.conv1.weight", "layer4.1.conv2.weight", "layer2.0.bn1.running_mean", "fc.weight"):
        assert not torch.equal(before[k], after[k]), k
    # Frozen stages stay in eval mode (no BN update, no stochastic depth) whatever the loop does.
    parts.state.model.train()
    m = parts.state.model
    assert not m.conv1.training and not m.layer1.training and not m.layer1[0].bn1.training
    assert m.layer2.training and m.layer2[0].bn1.training
    in_optimizer = set().union(*(names_in(parts, g) for g in parts.state.optimizer.param_groups))
    assert not any(n.startswith(STEM + ("layer1.",)) for n in in_optimizer)
    assert "layer2.0.conv1.weight" in in_optimizer


def test_frozen_bn_statistics_unchanged_while_the_rest_learns(synthetic_dataset, tmp_path, source):
    parts = build(synthetic_dataset, tmp_path, source, **{"TRAIN.FREEZE_BN": True})
    before = {k: v.clone() for k, v in parts.state.model.state_dict().items()}
    after = run_epoch(parts)
    stats = [k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    assert not torch.equal(before["layer3.0.bn1.weight"], after["layer3.0.bn1.weight"])  # BN affine learns
    parts.state.model.train()
    bns = [m for m in parts.state.model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns and all(not m.training and is_kept_in_eval(m) for m in bns)


def test_linear_probe_trains_only_the_classifier(synthetic_dataset, tmp_path, source, caplog):
    with caplog.at_level(logging.INFO, logger="rs3d"):
        parts = build(synthetic_dataset, tmp_path, source, **{"TRAIN.LINEAR_PROBE": True})
    assert "linear probe" in caplog.text
    groups = parts.state.optimizer.param_groups
    assert set().union(*(names_in(parts, g) for g in groups)) == {"fc.weight", "fc.bias"}
    before = {k: v.clone() for k, v in parts.state.model.state_dict().items()}
    after = run_epoch(parts)
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("fc."))
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_head_lr_multiplier_is_in_the_optimizer_groups(synthetic_dataset, tmp_path, source):
    parts = build(synthetic_dataset, tmp_path, source, **{"SOLVER.HEAD_LR_MULT": 10.0})
    groups = parts.state.optimizer.param_groups
    head = [g for g in groups if g["lr_mult"] == 10.0]
    assert set().union(*(names_in(parts, g) for g in head)) == {"fc.weight", "fc.bias"}
    assert {g["lr_mult"] for g in groups} == {1.0, 10.0}
    decay = {g["weight_decay"]: names_in(parts, g) for g in head}  # weight decayed, bias not
    assert decay == {4e-5: {"fc.weight"}, 0.0: {"fc.bias"}}
    run_epoch(parts)
    base = [g["lr"] for g in groups if g["lr_mult"] == 1.0]
    lr = parts.schedule(parts.state.progress.iteration - 1)  # the rate of the epoch's last step
    assert lr > 0 and set(base) == {lr} and {g["lr"] for g in head} == {lr * 10.0}


def test_layer_decay_multipliers_by_stage():
    model = rs3d.create_model(ARCH, num_classes=4, width_multiplier=WIDTH)
    mult = lr_multiplier(model, FinetuneOptions(head_lr_mult=3.0, layer_decay=0.5))
    assert mult("fc.weight") == 3.0
    assert mult("layer4.1.conv2.weight") == 0.5 and mult("layer3.0.bn1.bias") == 0.25
    assert mult("layer1.0.conv1.weight") == 0.5**4 and mult("bn1.weight") == 0.5**5
    assert mult("conv1.0.weight") == 0.5**5  # the deep stem's first conv
    assert lr_multiplier(model, FinetuneOptions()) is None


def test_defaults_leave_the_optimizer_and_modes_as_before(synthetic_dataset, tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(None, opts(synthetic_dataset, tmp_path / "run"))
    parts = build_training(cfg, CPU)
    groups = parts.state.optimizer.param_groups
    assert len(groups) == 2 and all("lr_mult" not in g for g in groups)
    assert all(p.requires_grad for p in parts.state.model.parameters())
    parts.state.model.train()
    assert all(m.training for m in parts.state.model.modules())


def test_a_resumed_run_keeps_its_stages_frozen(synthetic_dataset, tmp_path, source):
    torch.set_num_threads(1)
    cfg = load_config(None, opts(synthetic_dataset, tmp_path / "run", **{"TRAIN.FREEZE_STAGES": 3}))
    parts = build_training(cfg, CPU, init_weights=False)  # what train() does when it resumes
    m = parts.state.model
    assert not any(p.requires_grad for p in m.layer2.parameters())
    assert all(p.requires_grad for p in m.layer3.parameters())


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("TRAIN.FREEZE_STAGES", 6, r"TRAIN.FREEZE_STAGES must be in \[0, 5\]"),
        ("SOLVER.LAYER_DECAY", 0.0, r"SOLVER.LAYER_DECAY must be in \(0, 1\]"),
        ("SOLVER.HEAD_LR_MULT", -1.0, r"SOLVER.HEAD_LR_MULT must be >= 0"),
    ],
)
def test_bad_fine_tuning_values_name_the_key(key, value, match):
    with pytest.raises(ConfigError, match=match):  # load_config's range check, before any model
        FinetuneOptions.from_cfg(load_config(None, [key, str(value)]))


def test_the_fine_tuning_line_is_printed_only_when_fine_tuning(synthetic_dataset, tmp_path, source, caplog):
    """A recipe's SOLVER.HEAD_LR_MULT 10 in a run from scratch is not "fine-tuning"; with
    TRAIN.CHECKPOINT_FILE_PATH it is."""
    torch.set_num_threads(1)
    with caplog.at_level(logging.INFO, logger="rs3d"):
        build_training(load_config(None, opts(synthetic_dataset, tmp_path / "a", **{"SOLVER.HEAD_LR_MULT": 10.0})), CPU)
    assert "fine-tuning" not in caplog.text
    assert (
        "training from scratch (no TRAIN.CHECKPOINT_FILE_PATH): no stage frozen; BN statistics updated; "
        "lr x10 for the classifier" in caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rs3d"):
        build_training(
            load_config(
                None,
                opts(
                    synthetic_dataset,
                    tmp_path / "b",
                    **{"SOLVER.HEAD_LR_MULT": 10.0, "TRAIN.CHECKPOINT_FILE_PATH": str(source[0])},
                ),
            ),
            CPU,
        )
    assert "fine-tuning: no stage frozen; BN statistics updated; lr x10 for the classifier" in caplog.text
