"""SOLVER.OPTIMIZING_METHOD lamb: timm's LAMB over rs3d's weight-decay groups; one clear line when
timm is not installed; the new training keys are checked when the config loads."""

import sys

import pytest
import torch
from torch import nn

from rs3d.config import load_config
from rs3d.engine.optim import build_optimizer
from rs3d.errors import ConfigError


def _model():
    return nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.Flatten(), nn.Linear(4, 2))


def test_lamb_is_timms_with_decay_on_conv_and_linear_weights_only():
    from timm.optim import Lamb

    model = _model()
    opt = build_optimizer(model, lr=0.005, weight_decay=0.01, method="lamb")
    assert isinstance(opt, Lamb)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.01 and [p.dim() for p in decayed["params"]] == [5, 2]
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])
    before = model[0].weight.detach().clone()
    model(torch.randn(2, 3, 1, 1, 1)).sum().backward()
    opt.step()
    assert not torch.equal(model[0].weight, before)


def test_without_timm_lamb_stops_with_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm.optim", None)  # import fails as if timm were absent
    with pytest.raises(ConfigError, match=r"SOLVER.OPTIMIZING_METHOD lamb needs timm: pip install timm"):
        build_optimizer(_model(), lr=0.005, method="lamb")


@pytest.mark.parametrize(
    "opts, words",
    [
        (["MIXUP.ENABLE", "True", "MIXUP.ALPHA", "0", "MIXUP.CUTMIX_ALPHA", "0"], "both 0"),
        (["MIXUP.PROB", "1.5"], "MIXUP.PROB must be in [0, 1]"),
        (["TRAIN.BCE_TARGET_THRESHOLD", "0.2"], "TRAIN.LOSS is not 'bce'"),
        (["TRAIN.LOSS", "hinge"], "TRAIN.LOSS must be one of"),
        (["AUG.RAND_AUGMENT_NUM_OPS", "-1"], "AUG.RAND_AUGMENT_NUM_OPS must be >= 0"),
        (["SOLVER.OPTIMIZING_METHOD", "lars"], "'lamb'"),
    ],
)
def test_bad_training_keys_are_one_line_naming_the_key(opts, words):
    with pytest.raises(ConfigError, match=None) as e:
        load_config(None, opts)
    assert words in str(e.value) and "\n" not in str(e.value)
