"""MODEL.INIT tf against the per-layer statistics of the authors' TF R3D-RS-50 at initialisation
(tests/fixtures/tf_golden.npz, written by tools/tf_reference/make_golden.py; no TensorFlow here).

TF's variables and rs3d's tensors are matched by role and shape (the variables of one role and
shape are identically distributed, so any pairing within the group compares the same law); each
pair must agree within sampling error: mean within 5 standard errors, std within 5 standard
errors of a standard deviation, bounds within the truncation (or uniform) limits, constants equal.
"""

import math
from collections import defaultdict

import numpy as np
import pytest
import torch
from helpers import tf_golden
from torch import nn

import rs3d
from rs3d.layers import SelfGating3d

Z = tf_golden()


def _tf_role(name: str) -> str:
    leaf = name.split("/")[-1].split(":")[0]
    if leaf == "kernel":
        if "self_gating" in name:
            return "gating"
        if "dense" in name:
            return "classifier"
        return "se" if "squeeze_excitation" in name else "conv"
    return {
        "gamma": "bn_scale",
        "beta": "bn_shift",
        "moving_mean": "bn_mean",
        "moving_variance": "bn_var",
        "bias": "bias",
    }[leaf]


def _torch_shape(shape: str, role: str) -> tuple:
    dims = tuple(int(d) for d in shape.split("x"))
    if role in ("conv", "gating"):  # [kt, kh, kw, in, out] -> [out, in, kt, kh, kw]
        return (dims[4], dims[3], *dims[:3])
    if role == "se":  # Conv2D on pooled input [1, 1, in, out] -> [out, in, 1, 1, 1]
        return (dims[3], dims[2], 1, 1, 1)
    if role == "classifier":
        return (dims[1], dims[0])
    return dims


def _rs3d_tensors(model: nn.Module):
    gating = {id(m.fc) for m in model.modules() if isinstance(m, SelfGating3d)}
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            role = (
                "gating" if id(m) in gating else ("se" if m.kernel_size == (1, 1, 1) and m.bias is not None else "conv")
            )
            yield role, m.weight
            if m.bias is not None:
                yield "bias", m.bias
        elif isinstance(m, nn.BatchNorm3d):
            yield from (
                ("bn_scale", m.weight),
                ("bn_shift", m.bias),
                ("bn_mean", m.running_mean),
                ("bn_var", m.running_var),
            )
        elif isinstance(m, nn.Linear):
            yield from (("classifier", m.weight), ("bias", m.bias))


def _groups(pairs):
    g = defaultdict(list)
    for key, value in pairs:
        g[key].append(value)
    return g


def _stats(t: torch.Tensor):
    a = t.detach().double().flatten()
    return float(a.mean()), float(a.std(unbiased=False)), float(a.min()), float(a.max()), a.numel()


@pytest.fixture(scope="module")
def tf_init_model():
    torch.manual_seed(0)
    return rs3d.create_model("resnet3d_rs50", num_classes=400, init="tf")


def _compare(model: nn.Module) -> list:
    """Mismatches (role, shape, what) between ``model``'s initial tensors and TF's statistics."""
    tf = _groups(
        ((_tf_role(n), _torch_shape(str(s), _tf_role(n))), st)
        for n, s, st in zip(Z["init_names"], Z["init_shapes"], Z["init_stats"])
    )
    ours = _groups(((role, tuple(t.shape)), _stats(t)) for role, t in _rs3d_tensors(model))
    assert {k: len(v) for k, v in ours.items()} == {k: len(v) for k, v in tf.items()}  # 349 tensors, same roles
    bad = []
    for key, tf_list in tf.items():
        for (m_t, s_t, lo_t, hi_t, n), (m_o, s_o, lo_o, hi_o, _) in zip(tf_list, ours[key]):
            if s_t == 0:  # a constant: ones, zeros
                if (m_o, s_o) != (m_t, 0.0):
                    bad.append((key, "constant", m_t, m_o))
                continue
            se_mean, se_std = s_t / math.sqrt(n), s_t / math.sqrt(2 * n)
            if abs(m_o - m_t) > 5 * se_mean + 1e-12 or abs(s_o - s_t) > 5 * se_std:
                bad.append((key, "mean/std", (m_t, s_t), (m_o, s_o)))
            bound = max(abs(lo_t), abs(hi_t))  # truncation at 2 sigma / the uniform's limit
            if max(abs(lo_o), abs(hi_o)) > bound * 1.01 or (n > 1000 and max(abs(lo_o), abs(hi_o)) < bound * 0.95):
                bad.append((key, "bounds", bound, (lo_o, hi_o)))
    return bad


def test_tf_init_matches_tfs_statistics_layer_by_layer(tf_init_model):
    assert _compare(tf_init_model) == []


def test_pytorch_init_is_caught():
    """The PyTorch convention (Kaiming fan_out, last BN at 0, classifier N(0, 0.01)) fails the same
    comparison on the block convs, the self-gating and SE kernels, the last BNs and the classifier."""
    torch.manual_seed(0)
    roles = {key[0] for key, *_ in _compare(rs3d.create_model("resnet3d_rs50", num_classes=400))}
    assert {"conv", "gating", "se", "bn_scale", "classifier"} <= roles, roles


@torch.no_grad()
def test_tf_init_std_ratios_are_one(tf_init_model):
    """The PyTorch convention's std ratios to TF (block convs 1.41, SE 1.75, self-gating 6.1,
    classifier 0.35) are 1 with MODEL.INIT tf."""
    model = tf_init_model
    gate = model.layer4[-1].self_gating.fc.weight
    assert float(gate.std()) == pytest.approx(0.01 * 0.8796, rel=0.01)
    assert float(model.fc.weight.std()) == pytest.approx(0.05 / math.sqrt(3), rel=0.01)
    assert float(model.layer4[-1].bn3.weight.min()) == 1.0
    conv = model.layer3[0].conv2.weight
    assert float(conv.std()) == pytest.approx(math.sqrt(1.0 / conv[0].numel()), rel=0.02)
    assert np.isclose(
        Z["init_stats"][:, 4].sum() - sum(s[4] for n, s in zip(Z["init_names"], Z["init_stats"]) if "moving" in n),
        sum(p.numel() for p in model.parameters()),
    )  # 48,129,840 parameters on both sides


def test_the_tf_initialisation_builds_on_the_meta_device():
    """The sweep checks every point's model on the meta device (no values); the TF initialisation's
    redraw of out-of-range weights needs values and failed there (rs3d-sweep on the K400 configs)."""

    with torch.device("meta"):
        model = rs3d.create_model("resnet3d_rs26", num_classes=4, width_multiplier=0.25, init="tf")
    assert next(model.parameters()).is_meta
