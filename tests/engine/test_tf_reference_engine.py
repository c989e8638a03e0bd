"""rs3d's TF-convention training options against the fixture from the authors' TF code
(tests/fixtures/tf_golden.npz, written by tools/tf_reference/make_golden.py; no TensorFlow here).

- SOLVER.RUN_LENGTH examples: the released run's learning rate at every sampled step, to float32
  rounding (TF computes it in float32);
- TRAIN.EMA_FORM tf: the decay TF's ExponentialMovingAverage applies after each update;
- SOLVER.MOMENTUM_FORM keras + SOLVER.SELF_GATING_WEIGHT_DECAY False + BN.MOMENTUM 1.0 +
  TRAIN.EMA_FORM tf: five noise-free steps of a tiny model (Model Garden bottleneck block with
  projection shortcut, SE and self-gating, and its classifier head) at a rate that changes every
  step, run by VideoClassificationTask.train_step, equal step for step.
"""

import numpy as np
import pytest
import torch
from helpers import tf_golden
from torch import nn

from rs3d.engine.ema import ModelEma, ema_decay
from rs3d.engine.losses import build_loss
from rs3d.engine.optim import build_optimizer
from rs3d.engine.schedule import Schedule, lr_at, run_steps
from rs3d.models.resnet3d import Bottleneck3D

Z = tf_golden()
F32_ULP_AT_PEAK = float(np.spacing(np.float32(Z["run_base_lr"])))  # 6.0e-8 at 0.8


def test_released_run_length_from_the_example_count():
    n, batch = int(Z["run_num_examples"]), int(Z["run_global_batch"])
    steps_per_epoch = n // batch  # drop remainder: 210
    assert run_steps(350, steps_per_epoch, "examples", n, batch) == int(Z["run_train_steps"]) == 73682
    assert run_steps(350, steps_per_epoch, "epochs", n, batch) == 73500  # the PyTorch convention
    assert round(5.0 * steps_per_epoch) == int(Z["run_warmup_steps"]) == 1050


@pytest.mark.parametrize("run_length", ["examples", "epochs"])
def test_learning_rate_of_the_released_run_at_every_sampled_step(run_length):
    """Equal to TF's float32 values within 2 float32 ulps of the peak rate (measured: 1.35 ulps,
    8.1e-8, at step 37,054); the whole-epoch run length is 1.8e-3 off."""
    n, batch = int(Z["run_num_examples"]), int(Z["run_global_batch"])
    total = run_steps(350, n // batch, run_length, n, batch)
    ours = np.array([lr_at(int(s), float(Z["run_base_lr"]), total, 1050) for s in Z["lr_steps"]])
    diff = np.abs(ours - Z["lr_values"].astype(np.float64)).max()
    if run_length == "examples":
        assert diff <= 2 * F32_ULP_AT_PEAK, diff
    else:
        assert diff > 1e-3, diff


def test_ema_decay_after_each_update_is_tfs():
    """TF's decay after update t is min(0.9999, (1 + t) / (10 + t)) with t counted after the update:
    rs3d's tf form (step = updates before, + 1) gives it; the PyTorch form is one step behind."""
    ema_tf = ModelEma(nn.Linear(1, 1), float(Z["ema_max_decay"]), form="tf")
    for t, want in zip(Z["ema_steps"], Z["ema_decays"]):
        ours = _decay_applied(ema_tf, int(t) - 1)
        assert abs(ours - float(want)) <= 2 * np.spacing(np.float32(want)), (t, ours, want)
    assert abs(ema_decay(0, 0.9999) - float(Z["ema_decays"][0])) > 0.08  # 1/10 vs 2/11


def _decay_applied(ema: ModelEma, steps_before: int) -> float:
    """The decay ``ema.update`` applies: average 1, model 0 -> the new average is the decay."""
    src = nn.Linear(1, 1)
    with torch.no_grad():
        for t in ema.module.parameters():
            t.fill_(1.0)
        for t in src.parameters():
            t.zero_()
    ema.update(src, steps_before)
    return float(ema.module.weight)


class TinyNet(nn.Module):
    """The fixture's tiny model in rs3d's layers: one bottleneck block (8 -> 4 -> 16 channels,
    temporal kernel 3, projection shortcut, SE 0.25, self-gating before SE), pool, classifier."""

    def __init__(self, bn_momentum: float):
        super().__init__()
        eps = float(Z["upd_bn"][1])
        self.block = Bottleneck3D(
            8,
            4,
            16,
            temporal_kernel=3,
            se_ratio=0.25,
            self_gating="last_before_se",
            norm_layer=lambda c: nn.BatchNorm3d(c, eps=eps, momentum=bn_momentum),
        )
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.block(x).mean((2, 3, 4)))


def _tensor(key):
    return torch.from_numpy(Z[key]).double()


def _run_tiny(momentum_form="keras", decay_self_gating=False, ema_form="tf", bn_momentum=1.0):
    """Five steps from the fixture's initial weights on its batches; -> (states after each step, EMA)."""
    model = TinyNet(bn_momentum)
    init = {k.split("/", 1)[1]: torch.from_numpy(Z[k]) for k in Z if k.startswith("upd_w0/")}
    missing, unexpected = model.load_state_dict(init, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    opt = build_optimizer(
        model,
        lr=0.0,
        momentum=0.9,
        nesterov=True,
        weight_decay=float(Z["upd_weight_decay"]),
        momentum_form=momentum_form,
        decay_self_gating=decay_self_gating,
    )
    ema = ModelEma(model, float(Z["ema_max_decay"]), form=ema_form)
    schedule = Schedule(base_lr=0.8, total_iters=8, warmup_iters=2, steps_per_epoch=8)  # as the fixture's
    loss_fn = build_loss(float(Z["upd_label_smoothing"]))
    model.train()
    states = []
    for k in range(1, 6):
        assert abs(schedule(k - 1) - float(Z["upd_lr"][k - 1])) <= 2 * F32_ULP_AT_PEAK
        for g in opt.param_groups:
            g["lr"] = schedule(k - 1)
        loss_fn(model(torch.from_numpy(Z[f"upd_x{k}"])), torch.from_numpy(Z[f"upd_y{k}"])).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model, k - 1)
        states.append({n: v.double().clone() for n, v in model.state_dict().items() if n in init})
    return states, {n: v.double() for n, v in ema.module.state_dict().items() if n in init}


def _worst_errors(states, ema):
    """(update error / update size, over weights and steps; BN statistics error / their size;
    EMA error / max(its size, 1e-3)) against TF."""
    params = {n for n, _ in TinyNet(1.0).named_parameters()}
    upd = buf = 0.0
    for k, state in enumerate(states, 1):
        for n, v in state.items():
            tf_now, tf_before = _tensor(f"upd_w{k}/{n}"), _tensor(f"upd_w{k - 1}/{n}")
            err = float((v - tf_now).abs().max())
            if n in params:  # what float32 cannot hold of the weight itself is not the update's
                step = float((tf_now - tf_before).abs().max())
                slack = 2 * float(np.spacing(np.float32(tf_now.abs().max())))
                upd = max(upd, max(err - slack, 0.0) / max(step, 1e-30))
            else:
                buf = max(buf, err / float(tf_now.abs().max()))
    e = max(
        float((v - _tensor(f"upd_ema5/{n}")).abs().max() / _tensor(f"upd_ema5/{n}").abs().max().clamp_min(1e-3))
        for n, v in ema.items()
    )
    return upd, buf, e


def test_noise_free_steps_equal_tfs_with_the_tf_options():
    """Every weight's update at every step within 2e-3 of TF's (measured 2.7e-4: TF's float32
    gradients), BN statistics to 1e-5 (measured 2.5e-6) and the EMA after 5 steps to 1e-3
    (measured 7e-5)."""
    upd, buf, ema = _worst_errors(*_run_tiny())
    assert upd < 2e-3 and buf < 1e-5 and ema < 1e-3, (upd, buf, ema)


@pytest.mark.parametrize(
    "change, which",
    [
        (dict(momentum_form="pytorch"), 0),  # torch's SGD: 3.9x the update off
        (dict(decay_self_gating=True), 0),  # decayed self-gating kernels: 0.14 of the update off
        (dict(ema_form="pytorch"), 2),  # EMA from a copy, count before: 5.8e-2 off
        (dict(bn_momentum=0.1), 1),  # PyTorch's default BN momentum: statistics far off
    ],
)
def test_each_pytorch_convention_is_caught(change, which):
    errors = _worst_errors(*_run_tiny(**change))
    limits = (2e-3, 1e-5, 1e-3)
    assert errors[which] > 10 * limits[which], (change, errors)
