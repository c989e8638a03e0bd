"""The model zoo: shapes, parameter counts, regularisers, bad arguments, backbone use."""

import re

import pytest
import torch

import rs3d
from rs3d.errors import ConfigError
from rs3d.layers import DropPath
from rs3d.models import BLOCKS_PER_DEPTH, ResNet3D, stage_drop_path_rates
from rs3d.models.resnet3d import avg_shortcut, conv_shortcut
from rs3d.models.zoo import model_args

TINY = dict(width_multiplier=0.25)


def tiny_clip(b=2, t=8, s=32):
    return torch.randn(b, 3, t, s, s, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- parameter counts
# Independent of rs3d's code: the parameter formula of the architecture written out from
# ../shared/REFERENCE.md ("Architecture", "Released 3D code", appendix E), layer by layer.
def _bn(c):
    return 2 * c


def _block(cin, w, kt, se, gating, shortcut):
    cout = 4 * w
    n = cin * w * kt + _bn(w) + w * w * 9 + _bn(w) + w * cout + _bn(cout)
    if se:
        r = int(cout * 0.25)
        n += cout * r + r + r * cout + cout
    if gating:
        n += cout * cout + cout
    if shortcut:
        n += cin * cout + _bn(cout)
    return n


def expected_params(blocks, kernels, stem, stem_pool_conv, se, gating_last, num_classes=400):
    if stem == "deep":  # 32 [5,3,3] -> 32 [1,3,3] -> 64 [1,3,3], BN after each
        n = 3 * 32 * 5 * 9 + _bn(32) + 32 * 32 * 9 + _bn(32) + 32 * 64 * 9 + _bn(64)
    else:  # 64 [kt,7,7]
        n = 3 * 64 * stem * 49 + _bn(64)
    if stem_pool_conv:
        n += 64 * 64 * 9 + _bn(64)
    cin = 64
    for i, nb in enumerate(blocks):
        w = 64 * 2**i
        for j in range(nb):
            kt = kernels[i][j % len(kernels[i])]
            n += _block(cin, w, kt, se, gating_last and j == nb - 1, j == 0)
            cin = 4 * w
    return n + cin * num_classes + num_classes


RS = [[1], [1], [3], [3]]
EXPECTED = {
    # rs3d registry name: (formula arguments, pinned value computed by the formula above)
    "slow_r50": (
        dict(blocks=BLOCKS_PER_DEPTH[50], kernels=RS, stem=1, stem_pool_conv=False, se=False, gating_last=False),
        32_454_096,
    ),  # = PyTorchVideo's slow_r50 (REFERENCE: 32.45 M)
    "r3d50": (
        dict(
            blocks=BLOCKS_PER_DEPTH[50],
            kernels=[[3, 3, 3], [3, 1], [3, 1], [1, 3, 1]],
            stem=5,
            stem_pool_conv=False,
            se=False,
            gating_last=False,
        ),
        28_043_472,
    ),
    "resnet3d_rs50_paper": (
        dict(blocks=BLOCKS_PER_DEPTH[50], kernels=RS, stem="deep", stem_pool_conv=True, se=True, gating_last=False),
        42_592_432,
    ),
    "resnet3d_rs50": (
        dict(blocks=BLOCKS_PER_DEPTH[50], kernels=RS, stem="deep", stem_pool_conv=False, se=True, gating_last=True),
        48_129_840,
    ),
    "resnet3d_rs101": (
        dict(blocks=BLOCKS_PER_DEPTH[101], kernels=RS, stem="deep", stem_pool_conv=False, se=True, gating_last=True),
        84_969_520,
    ),
    "resnet3d_rs152": (
        dict(blocks=BLOCKS_PER_DEPTH[152], kernels=RS, stem="deep", stem_pool_conv=False, se=True, gating_last=True),
        114_788_144,
    ),
    "resnet3d_rs200": (
        dict(blocks=BLOCKS_PER_DEPTH[200], kernels=RS, stem="deep", stem_pool_conv=False, se=True, gating_last=True),
        121_376_560,
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_count_matches_reference_formula(name):
    args, pinned = EXPECTED[name]
    assert expected_params(**args) == pinned
    model = rs3d.create_model(name, num_classes=400)
    assert sum(p.numel() for p in model.parameters()) == pinned


@pytest.mark.parametrize("depth", [270, 350, 420])
def test_parameter_count_large_depths(depth):
    # Built on the meta device: counting needs shapes, not 200M+ floats.
    with torch.device("meta"):
        model = rs3d.create_model(f"resnet3d_rs{depth}", num_classes=400)
    got = sum(p.numel() for p in model.parameters())
    assert got == expected_params(BLOCKS_PER_DEPTH[depth], RS, "deep", False, True, True)


def test_depth_table_matches_paper():
    # REFERENCE.md, Table 9 / appendix F.
    assert BLOCKS_PER_DEPTH[50] == (3, 4, 6, 3)
    assert BLOCKS_PER_DEPTH[200] == (3, 24, 36, 3)
    assert BLOCKS_PER_DEPTH[420] == (4, 44, 87, 4)
    for depth in (26, 50, 101, 152, 200, 350):  # the others are names, not exact layer counts (270 has 272)
        assert 3 * sum(BLOCKS_PER_DEPTH[depth]) + 2 == depth


# ---------------------------------------------------------------- every registered model
@pytest.mark.parametrize("name", rs3d.list_models())
def test_every_model_forward_backward_tiny(name):
    # The entry's own arguments at a tiny size: the deep ones at depth 26 (only the block count differs).
    args = dict(model_args(name), **TINY, num_classes=5)
    if name.startswith("resnet3d_rs"):
        args["depth"] = 26
    model = ResNet3D(**args)
    out = model(tiny_clip())
    assert out.shape == (2, 5)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", rs3d.list_models())
def test_every_name_builds_the_depth_it_states(name):
    with torch.device("meta"):
        model = rs3d.create_model(name, num_classes=400)
    assert model.depth == int(re.findall(r"\d+", name)[-1])  # r3d50, resnet3d_rs101, resnet3d_rs50_paper


def test_rs50_shapes_follow_released_code():
    # REFERENCE: 32 input frames become 16 after the stem and stay 16; strides 4, 8, 16, 32.
    model = rs3d.create_model("resnet3d_rs50", num_classes=0, **TINY).eval()
    feats = model.forward_stages(torch.randn(1, 3, 32, 64, 64))
    assert [tuple(f.shape[2:]) for f in feats.values()] == [(16, 16, 16), (16, 8, 8), (16, 4, 4), (16, 2, 2)]
    assert [f.shape[1] for f in feats.values()] == [info["num_chs"] for info in model.feature_info]
    assert [info["reduction"] for info in model.feature_info] == [4, 8, 16, 32]


def test_num_classes_zero_returns_pooled_features():
    model = rs3d.create_model("resnet3d_rs26", num_classes=0, **TINY).eval()
    x = tiny_clip()
    assert torch.equal(model(x), model.forward_head(model.forward_features(x), pre_logits=True))
    assert model(x).shape == (2, model.num_features)


def test_forward_features_and_head_follow_timm():
    # timm's contract: forward_features -> unpooled map; forward_head pools (+dropout) and classifies.
    model = rs3d.create_model("resnet3d_rs26", num_classes=5, dropout_rate=0.5, **TINY).eval()
    x = tiny_clip(t=8, s=64)
    fmap = model.forward_features(x)
    assert fmap.shape == (2, model.num_features, 4, 2, 2)  # T/2 after the stem, H/32 and W/32
    assert torch.equal(fmap, model.forward_stages(x)["res5"])
    pooled = model.forward_head(fmap, pre_logits=True)
    assert torch.allclose(pooled, fmap.mean((2, 3, 4)), atol=1e-6)
    logits = model.forward_head(fmap)
    assert torch.allclose(logits, pooled @ model.get_classifier().weight.T + model.get_classifier().bias, atol=1e-6)
    assert torch.equal(model(x), logits)


def test_reset_classifier():
    model = rs3d.create_model("resnet3d_rs26", num_classes=5, **TINY)
    model.reset_classifier(7)
    assert model(tiny_clip()).shape == (2, 7)
    assert model.get_classifier() is model.fc and model.fc.out_features == 7 and model.num_classes == 7
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), torch.nn.Identity)
    assert model(tiny_clip()).shape == (2, model.num_features)


def test_the_name_fixes_the_depth_and_nothing_else():
    with pytest.raises(ConfigError) as e:
        rs3d.create_model("resnet3d_rs50", depth=101)
    assert "depth=101" in str(e.value) and "'resnet3d_rs101'" in str(e.value)
    assert rs3d.create_model("resnet3d_rs26", depth=26, **TINY).depth == 26  # restating it is harmless
    model = rs3d.create_model("resnet3d_rs26", width_multiplier=0.5, drop_path_rate=0.2, se_ratio=0.0)
    assert model.num_features == 1024 and isinstance(model.layer1[0].se, torch.nn.Identity)
    assert model.layer4[0].drop_path.drop_prob == pytest.approx(0.2)


# ---------------------------------------------------------------- shortcut injection
def test_shortcut_strings_build_the_injected_layers_with_unchanged_keys():
    conv = rs3d.create_model("resnet3d_rs26", **TINY)
    avg = rs3d.create_model("resnet3d_rs26", shortcut="avg", **TINY)
    # Keys that pretrained conversion (PyTorchVideo, PySlowFast, timm) maps onto.
    assert {k for k in conv.state_dict() if k.startswith("layer2.0.downsample.")} == {
        "layer2.0.downsample.0.weight",
        *(
            f"layer2.0.downsample.1.{b}"
            for b in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        ),
    }
    assert {k for k in avg.state_dict() if k.startswith("layer2.0.downsample.")} == {
        "layer2.0.downsample.1.weight",
        *(
            f"layer2.0.downsample.2.{b}"
            for b in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        ),
    }
    assert conv.layer2[0].downsample[0].stride == (1, 2, 2)
    assert isinstance(avg.layer2[0].downsample[0], torch.nn.AvgPool3d)
    assert isinstance(avg.layer1[0].downsample[0], torch.nn.Identity)  # stride 1: channels change only
    assert isinstance(conv.layer1[1].downsample, torch.nn.Identity)  # same shape: no projection


def test_a_callable_shortcut_is_passed_to_every_projecting_block():
    calls = []

    def recording(in_channels, out_channels, stride, norm_layer):
        calls.append((in_channels, out_channels, stride))
        return conv_shortcut(in_channels, out_channels, stride, norm_layer)

    model = ResNet3D(depth=26, num_classes=3, width_multiplier=0.25, shortcut=recording)
    assert calls == [(16, 64, (1, 1, 1)), (64, 128, (1, 2, 2)), (128, 256, (1, 2, 2)), (256, 512, (1, 2, 2))]
    assert model(tiny_clip()).shape == (2, 3)
    torch.manual_seed(0)
    by_name = ResNet3D(depth=26, width_multiplier=0.25, shortcut="avg")
    torch.manual_seed(0)
    by_callable = ResNet3D(depth=26, width_multiplier=0.25, shortcut=avg_shortcut)
    a, b = by_name.state_dict(), by_callable.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_width_multiplier_scales_channels():
    model = rs3d.create_model("resnet3d_rs26", num_classes=0, width_multiplier=0.5)
    assert model.num_features == 1024


def test_temporal_kernels_per_block_follow_r3d50_baseline():
    model = rs3d.create_model("r3d50")
    kernels = [
        [b.conv1.kernel_size[0] for b in stage] for stage in (model.layer1, model.layer2, model.layer3, model.layer4)
    ]
    assert kernels == [[3, 3, 3], [3, 1, 3, 1], [3, 1, 3, 1, 3, 1], [1, 3, 1]]


def test_self_gating_placement():
    released = rs3d.create_model("resnet3d_rs50", **TINY)
    gated = [
        [not isinstance(b.self_gating, torch.nn.Identity) for b in s]
        for s in (released.layer1, released.layer2, released.layer3, released.layer4)
    ]
    assert gated == [[False, False, True], [False] * 3 + [True], [False] * 5 + [True], [False, False, True]]
    du = rs3d.create_model("resnet3d_rs50", self_gating="all_after_se", **TINY)
    assert all(
        not isinstance(b.self_gating, torch.nn.Identity) and not b.gate_before_se
        for s in (du.layer1, du.layer4)
        for b in s
    )


# ---------------------------------------------------------------- regularisers
def test_stage_drop_path_schedule_matches_released_code():
    rates = stage_drop_path_rates(0.1, (3, 4, 6, 3), "stage")
    assert [r[0] for r in rates] == pytest.approx([0.04, 0.06, 0.08, 0.10])
    assert all(len(set(r)) == 1 for r in rates)
    model = rs3d.create_model("resnet3d_rs50", drop_path_rate=0.1, **TINY)
    assert [b.drop_path.drop_prob for b in model.layer3] == pytest.approx([0.08] * 6)


def test_linear_drop_path_schedule():
    rates = [r for stage in stage_drop_path_rates(0.2, (2, 2, 2, 2), "linear") for r in stage]
    assert rates == pytest.approx([0.2 * i / 7 for i in range(8)])


def test_drop_path_statistics_and_eval_identity():
    layer = DropPath(0.3)
    x = torch.ones(20000, 4)
    layer.train()
    torch.manual_seed(0)
    y = layer(x)
    dropped = (y[:, 0] == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.02  # ~ 5 standard deviations of a binomial at n=20000
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    assert torch.all((y == 0).all(1) | (y != 0).all(1))  # whole sample dropped, not elements
    layer.eval()
    assert torch.equal(layer(x), x)


def test_dropout_and_drop_path_only_in_training():
    model = rs3d.create_model("resnet3d_rs26", num_classes=5, drop_path_rate=0.5, dropout_rate=0.5, **TINY)
    x = tiny_clip()
    model.eval()
    a, b = model(x), model(x)
    assert torch.equal(a, b)
    model.train()
    torch.manual_seed(1)
    c = model(x)
    torch.manual_seed(2)
    d = model(x)
    assert not torch.allclose(c, d)


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "call, names",
    [
        (lambda: rs3d.create_model("resnet3d_rs51"), ["resnet3d_rs51", "resnet3d_rs50"]),
        (lambda: ResNet3D(depth=77), ["depth=77", "420"]),
        (lambda: rs3d.create_model("resnet3d_rs50", depth=77), ["depth=77", "fixes depth=50", "resnet3d_rs420"]),
        (lambda: rs3d.create_model("resnet3d_rs50", se_ratio=1.5), ["se_ratio=1.5", "0.25"]),
        (lambda: rs3d.create_model("resnet3d_rs50", se_ratio=-0.1), ["se_ratio=-0.1"]),
        (lambda: rs3d.create_model("resnet3d_rs50", stem_type="wide"), ["stem_type='wide'", "deep"]),
        (lambda: rs3d.create_model("resnet3d_rs50", shortcut="max"), ["shortcut='max'", "avg"]),
        (lambda: rs3d.create_model("resnet3d_rs50", drop_path_rate=1.0), ["drop_path_rate=1.0"]),
        (lambda: rs3d.create_model("resnet3d_rs50", temporal_kernels=(1, 2, 3, 3)), ["temporal_kernels"]),
    ],
)
def test_bad_arguments_name_argument_and_allowed_values(call, names):
    with pytest.raises(ValueError) as e:
        call()
    for n in names:
        assert n in str(e.value)


def test_build_model_from_config():
    from rs3d.config import get_cfg

    cfg = get_cfg()
    cfg.MODEL.ARCH = "r3d50"
    cfg.MODEL.NUM_CLASSES = 7
    cfg.MODEL.STEM_TYPE = "deep"
    cfg.MODEL.SE_RATIO = 0.25
    cfg.MODEL.WIDTH_MULTIPLIER = 0.25
    cfg.MODEL.DROPOUT_RATE = 0.3
    model = rs3d.build_model(cfg)
    assert isinstance(model.conv1, torch.nn.Sequential)  # ResNet-D stem switched on
    assert model.layer1[0].se.fc1.out_channels == 16
    assert model.dropout.p == 0.3 and model.num_classes == 7
