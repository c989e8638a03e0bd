"""rs3d.models.stats: parameter and FLOP counts against hand counts; step timing and memory."""

import pytest
import torch
from torch import nn

from rs3d.models.stats import count_flops, count_parameters, measure_train_step


def test_parameter_count_is_the_layer_formula():
    model = nn.Sequential(nn.Conv3d(3, 8, (3, 5, 5)), nn.BatchNorm3d(8), nn.Flatten(), nn.Linear(8, 10))
    assert count_parameters(model) == (8 * 3 * 3 * 5 * 5 + 8) + 2 * 8 + (8 * 10 + 10)


def test_conv_flops_are_multiply_adds():
    # One output value of a 3x3x3 conv over 3 input channels is 81 multiply-adds (no bias counted);
    # the output has 8 channels x 4 x 8 x 8 positions ("same" padding).
    conv = nn.Conv3d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, frames=4, res=8) == pytest.approx(8 * 4 * 8 * 8 * 81 / 1e9, rel=1e-12)
    strided = nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
    assert count_flops(strided, frames=4, res=8) == pytest.approx(8 * 4 * 4 * 4 * 27 / 1e9, rel=1e-12)


def test_flops_of_a_model_add_up_its_layers_and_keep_its_mode():
    model = nn.Sequential(
        nn.Conv3d(3, 4, 1, bias=False), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 5, bias=False)
    ).train()
    conv, linear = 4 * 3 * (2 * 6 * 6), 4 * 5
    # Pooling is not counted (fvcore has no handle for it), as in the model zoos' figures.
    assert count_flops(model, frames=2, res=6) * 1e9 == pytest.approx(conv + linear, rel=1e-12)
    assert model.training


def step_clock(durations):
    readings, t = [], 0.0
    for d in durations:
        readings += [t, t + d]
        t += d + 1.0
    it = iter(readings)
    return lambda: next(it)


def test_train_step_time_is_the_median_of_the_timed_steps_and_the_model_learns():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3))
    before = [p.detach().clone() for p in model.parameters()]
    seconds, peak = measure_train_step(
        model, batch=2, frames=2, res=8, steps=3, device="cpu", clock=step_clock([5.0, 1.0, 3.0])
    )
    assert seconds == 3.0  # the warm-up step is not timed: exactly three durations were read
    assert isinstance(peak, int) and peak >= 0
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # SGD stepped


def test_cpu_peak_memory_covers_the_activations():
    # A conv whose output alone is 4 x 32 x 16 x 64 x 64 float32 = 64 MiB: the step holds it (and its
    # gradient), so the resident-memory peak must rise by at least that much.
    model = nn.Sequential(nn.Conv3d(3, 32, 3, padding=1), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(32, 2))
    _, peak = measure_train_step(model, batch=4, frames=16, res=64, steps=1, device="cpu", warmup=0)
    assert peak >= 4 * 32 * 16 * 64 * 64 * 4


def test_bad_step_count_is_refused():
    with pytest.raises(ValueError, match="steps=0"):
        measure_train_step(nn.Linear(1, 1), 1, 1, 1, steps=0, device="cpu")
