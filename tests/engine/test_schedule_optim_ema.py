"""Schedule, optimizer groups and EMA against values computed by hand."""

import logging
import math

import pytest
import torch
from torch import nn

import rs3d
from rs3d.engine.ema import ModelEma, ema_decay
from rs3d.engine.optim import build_optimizer, param_groups
from rs3d.engine.schedule import lr_at, scaled_lr


def test_linear_scaling():
    assert scaled_lr(0.8, 1024, 1024) == pytest.approx(0.8)
    assert scaled_lr(0.8, 128, 1024) == pytest.approx(0.1)


def test_warmup_then_cosine_hand_values():
    # 100 steps, 10 warm-up steps from 0.0; cosine over the whole run from 1.0 to 0.0.
    kw = dict(base_lr=1.0, total_iters=100, warmup_iters=10, warmup_start_lr=0.0, end_lr=0.0)
    at10 = 0.5 * (1 + math.cos(math.pi * 10 / 100))  # 0.975528...
    assert lr_at(0, **kw) == 0.0
    assert lr_at(5, **kw) == pytest.approx(at10 / 2)
    assert lr_at(10, **kw) == pytest.approx(0.9755282581)
    assert lr_at(50, **kw) == pytest.approx(0.5)
    assert lr_at(75, **kw) == pytest.approx(0.5 * (1 + math.cos(0.75 * math.pi)))  # 0.1464466
    assert lr_at(100, **kw) == pytest.approx(0.0)
    # warm-up is linear and continuous with the cosine at its end
    assert lr_at(9, **kw) == pytest.approx(at10 * 9 / 10)


def test_end_and_start_values():
    kw = dict(base_lr=0.8, total_iters=73682, warmup_iters=1050, warmup_start_lr=0.01, end_lr=0.001)
    assert lr_at(0, **kw) == pytest.approx(0.01)
    assert lr_at(73682, **kw) == pytest.approx(0.001)
    assert max(lr_at(i, **kw) for i in range(0, 73682, 50)) <= 0.8
    no_warmup = dict(kw, warmup_iters=0)
    assert lr_at(0, **no_warmup) == pytest.approx(0.8)


def test_weight_decay_groups_exclude_bn_and_biases():
    model = rs3d.create_model("resnet3d_rs26", num_classes=5, width_multiplier=0.25)
    decay, no_decay = param_groups(model, 4e-5)
    assert decay["weight_decay"] == 4e-5 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert len(decayed) + len(kept) == len(names)  # every parameter once
    modules = dict(model.named_modules())
    for n in decayed:
        mod, attr = n.rsplit(".", 1)
        assert attr == "weight" and isinstance(modules[mod], (nn.Conv3d, nn.Linear)), n
    for n in kept:
        mod, attr = n.rsplit(".", 1)
        assert attr == "bias" or isinstance(modules[mod], nn.modules.batchnorm._BatchNorm), n
    assert "fc.weight" in decayed and "fc.bias" in kept and "bn1.weight" in kept
    # SE convs carry biases: those are not decayed
    assert any(n.endswith(".bias") and ".se." in n for n in kept)


def test_optimizer_is_nesterov_sgd_with_decay_on_weights_only():
    lin = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    opt = build_optimizer(lin, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.5)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    assert opt.defaults["fused"] or opt.defaults["foreach"]
    w0 = lin[0].weight.detach().clone()
    b0 = lin[0].bias.detach().clone()
    for p in lin.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    # zero gradient: only weight decay moves the linear weight (nesterov: d = g + m*buf, buf = g)
    g = 0.5 * w0
    assert torch.allclose(lin[0].weight, w0 - 0.1 * (g + 0.9 * g))
    assert torch.equal(lin[0].bias, b0)
    assert torch.equal(lin[1].weight, torch.ones(2))


def test_adamw_decays_weights_only_and_unknown_method_is_refused():
    lin = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    opt = build_optimizer(lin, lr=0.1, weight_decay=0.5, method="adamw")
    assert isinstance(opt, torch.optim.AdamW)
    w0, b0 = lin[0].weight.detach().clone(), lin[0].bias.detach().clone()
    for p in lin.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    # zero gradient: AdamW's decoupled decay alone moves the weight, w <- w * (1 - lr * wd)
    assert torch.allclose(lin[0].weight, w0 * (1 - 0.1 * 0.5))
    assert torch.equal(lin[0].bias, b0)
    with pytest.raises(ValueError, match="OPTIMIZING_METHOD"):
        build_optimizer(lin, lr=0.1, method="adagrad")


def test_ema_decay_hand_values():
    assert ema_decay(0, 0.9999) == pytest.approx(0.1)
    assert ema_decay(10, 0.9999) == pytest.approx(11 / 20)
    assert ema_decay(90, 0.9999) == pytest.approx(0.91)
    assert ema_decay(10**6, 0.9999) == 0.9999
    assert ema_decay(10**6, 0.99) == 0.99


def test_ema_averages_parameters_and_bn_buffers():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = ModelEma(model, decay=0.9999)
    w0 = model[0].weight.detach().clone()
    rm0 = model[1].running_mean.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves BN running stats and num_batches_tracked
    ema.update(model, step=0)  # decay 0.1
    assert torch.allclose(ema.module[0].weight, 0.1 * w0 + 0.9 * (w0 + 1.0))
    assert torch.allclose(ema.module[1].running_mean, 0.1 * rm0 + 0.9 * model[1].running_mean)
    assert ema.module[1].num_batches_tracked.item() == 1  # integer buffers are copied
    ema.update(model, step=10)  # decay 11/20
    assert torch.allclose(ema.module[0].weight, (11 / 20) * (0.1 * w0 + 0.9 * (w0 + 1.0)) + (9 / 20) * (w0 + 1.0))
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_schedule_object_is_the_pure_function():
    from rs3d.engine.schedule import Schedule

    s = Schedule(base_lr=0.8, total_iters=1000, warmup_iters=50, steps_per_epoch=10, warmup_start_lr=0.01, end_lr=0.001)
    kw = dict(base_lr=0.8, total_iters=1000, warmup_iters=50, warmup_start_lr=0.01, end_lr=0.001)
    assert [s(i) for i in (0, 25, 50, 500, 1000)] == [lr_at(i, **kw) for i in (0, 25, 50, 500, 1000)]
    assert s.summary() == {"base_lr": 0.8, "total_iters": 1000, "warmup_iters": 50, "steps_per_epoch": 10}


class _Warnings(logging.Handler):
    """Collects what the "rs3d" logger warns while installed."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


# (SOLVER.WARMUP_EPOCHS, SOLVER.MAX_EPOCH, SOLVER.RUN_LENGTH, clips) with 8-clip batches: whole and
# fractional warm-ups, warm-ups shorter than, as long as and longer than the run, and runs whose
# last epoch is cut short (RUN_LENGTH examples with 100 clips: 12.5 steps an epoch).
WARMUP_SWEEP = [
    (w, e, mode, 100)
    for mode in ("epochs", "examples")
    for w, e in (
        (0.0, 1),
        (0.5, 1),
        (1.0, 1),
        (2.0, 1),
        (5.0, 1),
        (1.5, 2),
        (2.0, 2),
        (2.5, 2),
        (0.3, 3),
        (3.0, 3),
        (5.0, 350),
        (400.0, 350),
    )
] + [(2.0, 1, "examples", 9)]


@pytest.mark.parametrize("warmup_epochs, max_epoch, run_length, clips", WARMUP_SWEEP)
def test_warmup_never_leaves_the_rate_at_zero(warmup_epochs, max_epoch, run_length, clips):
    """Every (warm-up, run) pair trains: no step after the first has rate 0 and the logged peak is
    the highest rate of the run. A warm-up at least as long as the run is shortened to a tenth of it,
    one past the middle of the run is kept (the peak is then under half the rate), each with one
    warning that names SOLVER.WARMUP_EPOCHS; any other warm-up is kept silently."""
    from rs3d.config import get_cfg
    from rs3d.engine.builder import build_schedule
    from rs3d.engine.logs import logger

    cfg = get_cfg()
    cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.MAX_EPOCH, cfg.SOLVER.RUN_LENGTH = warmup_epochs, max_epoch, run_length
    cfg.TRAIN.BATCH_SIZE = cfg.SOLVER.REFERENCE_BATCH_SIZE = 8
    steps_per_epoch = clips // 8
    handler = _Warnings()
    logger.addHandler(handler)
    try:
        s = build_schedule(cfg, steps_per_epoch, clips)
    finally:
        logger.removeHandler(handler)
    total = steps_per_epoch * max_epoch if run_length == "epochs" else -(-max_epoch * clips // 8)
    asked = int(round(warmup_epochs * steps_per_epoch))
    assert s.total_iters == total
    assert sum(s.steps_in_epoch(e) for e in range(s.num_epochs)) == total
    rates = [s(i) for i in range(total)]
    assert all(r > 0 for r in rates[1:]), (asked, total)
    assert s.peak_lr == pytest.approx(max(rates), rel=1e-12, abs=0)
    if asked >= total:
        assert s.warmup_iters == int(0.1 * total) and len(handler.messages) == 1
        assert (
            "SOLVER.WARMUP_EPOCHS" in handler.messages[0]
            and f"shortened to {s.warmup_iters} steps" in handler.messages[0]
        )
        assert s.peak_lr >= 0.97 * s.base_lr
    elif 2 * asked > total:
        assert s.warmup_iters == asked and len(handler.messages) == 1
        assert f"peaks at {s.peak_lr / s.base_lr:.0%}" in handler.messages[0]
    else:
        assert s.warmup_iters == asked and handler.messages == [] and s.peak_lr >= 0.5 * s.base_lr


def test_without_the_guard_a_warmup_as_long_as_the_run_keeps_the_rate_at_zero():
    """What the guard prevents: the warm-up climbs to the cosine's end value, 0."""
    assert max(lr_at(i, 0.8, 20, warmup_iters=20) for i in range(21)) == 0.0


def test_keras_sgd_is_the_keras_formula_and_torch_sgd_is_not():
    """Two steps at rates 0 then 0.5: Keras' velocity keeps the first gradient at rate 0, torch's
    buffer applies the current rate to it."""
    from rs3d.engine.optim import KerasSGD

    w0, g1, g2, m, wd = torch.tensor([1.0, -2.0]), torch.tensor([0.3, 0.1]), torch.tensor([-0.2, 0.4]), 0.9, 0.01
    results = {}
    for form in ("keras", "pytorch"):
        p = nn.Parameter(w0.clone())
        opt = build_optimizer(
            nn.ParameterList([p]), lr=0.0, momentum=m, nesterov=True, weight_decay=wd, momentum_form=form
        )
        # ParameterList params are no conv/linear weights: weight decay goes to group 0 by hand
        for g in opt.param_groups:
            g["weight_decay"] = wd
        assert isinstance(opt, KerasSGD) == (form == "keras")
        for lr, g in ((0.0, g1), (0.5, g2)):
            for group in opt.param_groups:
                group["lr"] = lr
            p.grad = g.clone()
            opt.step()
        results[form] = p.detach().clone()
    v, w = torch.zeros(2), w0.clone()
    for lr, g in ((0.0, g1), (0.5, g2)):
        g = g + wd * w
        v = m * v - lr * g
        w = w + m * v - lr * g
    assert torch.allclose(results["keras"], w, atol=1e-7)
    assert not torch.allclose(results["pytorch"], w, atol=1e-3)


def test_resuming_with_the_other_momentum_form_is_refused():
    from rs3d.engine.optim import state_mismatch

    model = nn.Linear(2, 2)
    model(torch.ones(1, 2)).sum().backward()
    written = {}
    for form in ("keras", "pytorch"):
        opt = build_optimizer(model, lr=0.1, momentum_form=form)
        opt.step()
        written[form] = opt.state_dict()
    keras, torch_sgd = build_optimizer(model, lr=0.1, momentum_form="keras"), build_optimizer(model, lr=0.1)
    assert state_mismatch(keras, written["keras"]) is None and state_mismatch(torch_sgd, written["pytorch"]) is None
    assert "SOLVER.MOMENTUM_FORM keras" in state_mismatch(torch_sgd, written["keras"])
    assert "SOLVER.MOMENTUM_FORM pytorch" in state_mismatch(keras, written["pytorch"])


def test_self_gating_kernels_are_undecayed_on_request():
    model = rs3d.create_model("resnet3d_rs26", num_classes=5, width_multiplier=0.25)
    gating = {id(m.fc.weight) for m in model.modules() if type(m).__name__ == "SelfGating3d"}
    assert len(gating) == 4  # the last block of each stage
    for decay_self_gating in (True, False):
        decay, _ = param_groups(model, 4e-5, decay_self_gating)
        assert (gating <= {id(p) for p in decay["params"]}) == decay_self_gating
        assert len(decay["params"]) == len(param_groups(model, 4e-5)[0]["params"]) - (0 if decay_self_gating else 4)


def test_tf_ema_starts_at_zero_and_counts_after_the_update():
    model = nn.Linear(2, 2)
    ema = ModelEma(model, 0.9999, form="tf")
    assert all(float(t.abs().sum()) == 0 for t in ema.module.state_dict().values())
    ema.update(model, 0)  # after the first optimizer step: decay 2/11, the average 9/11 of the weights
    assert torch.allclose(ema.module.weight, model.weight * 9 / 11)
    assert torch.equal(ModelEma(model, 0.9999).module.weight, model.weight)  # the PyTorch form: a copy
