"""Weights from two independent references load into rs3d and give the same outputs."""

import os
import re

import pytest
import torch
from torch import nn

import rs3d
from rs3d.models import ResNet3D
from rs3d.models.convert import CheckpointError, inflate_kernel, load_pretrained
from rs3d.models.zoo import model_args


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics and affine parameters, so a mis-mapped key shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_pytorchvideo_slow_r50_logits_match(tmp_path):
    hub = pytest.importorskip("pytorchvideo.models.hub")
    torch.manual_seed(0)
    ptv = hub.slow_r50(pretrained=False)
    randomize_bn(ptv)
    ptv.eval()
    path = tmp_path / "slow_r50_ptv.pyth"
    torch.save(ptv.state_dict(), path)

    model = rs3d.create_model("slow_r50", num_classes=400).eval()
    assert load_pretrained(model, str(path)) == "pytorchvideo"
    clip = torch.randn(1, 3, 8, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ptv(clip), model(clip)
    scale = expected.abs().max()
    assert torch.allclose(got, expected, rtol=0, atol=1e-5 * scale), (got - expected).abs().max()


def _pyslowfast_name(key: str) -> str:
    """rs3d key -> PySlowFast key, written from PySlowFast's naming (resnet_helper.py, stem_helper.py)."""
    if key.startswith("conv1."):
        return "s1.pathway0_stem.conv." + key[6:]
    if key.startswith("bn1."):
        return "s1.pathway0_stem.bn." + key[4:]
    if key.startswith("fc."):
        return "head.projection." + key[3:]
    stage, block, rest = re.match(r"layer(\d)\.(\d+)\.(.*)", key).groups()
    names = {
        "conv1": "branch2.a",
        "bn1": "branch2.a_bn",
        "conv2": "branch2.b",
        "bn2": "branch2.b_bn",
        "conv3": "branch2.c",
        "bn3": "branch2.c_bn",
        "downsample.0": "branch1",
        "downsample.1": "branch1_bn",
    }
    for ours, theirs in names.items():
        if rest.startswith(ours + "."):
            return f"s{int(stage) + 1}.pathway0_res{block}.{theirs}.{rest[len(ours) + 1 :]}"
    raise AssertionError(key)


def test_pyslowfast_checkpoint_loads_into_slow_r50(tmp_path):
    source = rs3d.create_model("slow_r50", num_classes=400)
    randomize_bn(source)
    ckpt = {"epoch": 196, "model_state": {"module." + _pyslowfast_name(k): v for k, v in source.state_dict().items()}}
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save(ckpt, path)
    model = rs3d.create_model("slow_r50", num_classes=400)
    assert load_pretrained(model, str(path)) == "pyslowfast"
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_timm_resnetrs50_inflated_matches_2d_on_static_clip(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net2d = timm.create_model("resnetrs50", pretrained=False, num_classes=1000)
    randomize_bn(net2d)
    net2d.eval()
    path = tmp_path / "resnetrs50.pth"
    torch.save(net2d.state_dict(), path)

    model = rs3d.create_model("resnet3d_rs50_paper", num_classes=1000).eval()
    assert load_pretrained(model, str(path), inflate=True, inflate_mode="center") == "2d"
    frame = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(2))
    clip = frame.unsqueeze(2).expand(-1, -1, 8, -1, -1).contiguous()
    with torch.no_grad():
        expected, got = net2d(frame), model(clip)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5 * expected.abs().max()), (got - expected).abs().max()


def test_2d_checkpoint_without_inflate_is_refused(tmp_path):
    timm = pytest.importorskip("timm")
    path = tmp_path / "resnetrs50.pth"
    torch.save(timm.create_model("resnetrs50", pretrained=False).state_dict(), path)
    with pytest.raises(CheckpointError, match="CHECKPOINT_INFLATE"):
        load_pretrained(rs3d.create_model("resnet3d_rs50_paper", num_classes=1000), str(path))


def test_inflation_modes():
    w = torch.randn(4, 3, 3, 3)
    center = inflate_kernel(w, 5, "center")
    assert center.shape == (4, 3, 5, 3, 3)
    assert torch.equal(center[:, :, 2], w) and center[:, :, [0, 1, 3, 4]].abs().sum() == 0
    mean = inflate_kernel(w, 5, "mean")
    assert torch.allclose(mean.sum(2), w)  # a static clip sees the 2D response away from the borders
    with pytest.raises(ValueError, match="inflate_mode"):
        inflate_kernel(w, 3, "edge")


def test_mean_inflation_matches_2d_away_from_temporal_borders(tmp_path):
    timm = pytest.importorskip("timm")
    net2d = timm.create_model("resnet26", pretrained=False, num_classes=10).eval()
    path = tmp_path / "r26.pth"
    torch.save(net2d.state_dict(), path)
    # slow_r50's stem at timm resnet26's depth (a name fixes its depth, so build ResNet3D directly).
    model = ResNet3D(
        **dict(model_args("slow_r50"), depth=26, num_classes=10, temporal_kernels=(1, 1, 1, 1), stem_temporal_kernel=3)
    ).eval()
    load_pretrained(model, str(path), inflate=True, inflate_mode="mean")
    frame = torch.randn(1, 3, 64, 64)
    clip = frame.unsqueeze(2).expand(-1, -1, 5, -1, -1).contiguous()
    with torch.no_grad():
        stem2d = net2d.conv1(frame)
        stem3d = model.conv1(clip)
    assert torch.allclose(stem3d[:, :, 2], stem2d, atol=1e-5)  # interior frame: all 3 taps see the frame


def test_classifier_of_another_label_set_is_left_for_fine_tuning(tmp_path):
    source = rs3d.create_model("resnet3d_rs26", num_classes=400, width_multiplier=0.25)
    path = tmp_path / "k400.pyth"
    torch.save({"model": source.state_dict(), "epoch": 3}, path)
    model = rs3d.create_model("resnet3d_rs26", num_classes=10, width_multiplier=0.25)
    fc_before = model.fc.weight.clone()
    assert load_pretrained(model, str(path)) == "rs3d"
    assert torch.equal(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert torch.equal(model.fc.weight, fc_before)


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pyth"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_pretrained(rs3d.create_model("resnet3d_rs26", width_multiplier=0.25), str(path))
    assert not marker.exists()


def test_wrong_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "r26.pyth"
    torch.save({"model": rs3d.create_model("resnet3d_rs26", width_multiplier=0.25).state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_pretrained(rs3d.create_model("slow_r50", width_multiplier=0.25), str(path))


# ----------------------------------------------------------------------------- fine-tuning starts
def test_report_of_an_rs3d_checkpoint_with_another_label_set(tmp_path):
    from rs3d.models.convert import load_pretrained_report

    raw, ema = (rs3d.create_model("resnet3d_rs26", num_classes=400, width_multiplier=0.25) for _ in range(2))
    path = tmp_path / "k400.pyth"
    torch.save({"model": raw.state_dict(), "ema": ema.state_dict()}, path)
    model = rs3d.create_model("resnet3d_rs26", num_classes=10, width_multiplier=0.25)
    report = load_pretrained_report(model, str(path))
    total = len(model.state_dict())
    assert (report.fmt, report.weights, report.head, report.loaded, report.total) == (
        "rs3d",
        "ema",
        (400, 10),
        total - 2,
        total,
    )
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ema.state_dict().items() if not k.startswith("fc."))
    assert "new classifier for 10 classes (the file's has 400)" in report.describe()
    assert load_pretrained_report(model, str(path), prefer_ema=False).weights == "model"


def test_pyslowfast_checkpoint_with_another_head_loads_its_backbone(tmp_path):
    from rs3d.models.convert import load_pretrained_report

    source = rs3d.create_model("slow_r50", num_classes=400, width_multiplier=0.25)
    randomize_bn(source)
    torch.save(
        {"model_state": {_pyslowfast_name(k): v for k, v in source.state_dict().items()}},
        tmp_path / "SLOW_8x8_R50.pyth",
    )
    model = rs3d.create_model("slow_r50", num_classes=51, width_multiplier=0.25)
    fc = model.fc.weight.clone()
    report = load_pretrained_report(model, str(tmp_path / "SLOW_8x8_R50.pyth"))
    assert report.fmt == "pyslowfast" and report.head == (400, 51) and model.fc.weight.shape == (51, 512)
    assert torch.equal(model.fc.weight, fc)
    for k, v in source.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(model.state_dict()[k], v), k


def test_pytorchvideo_weights_with_another_head_load_their_backbone(tmp_path):
    hub = pytest.importorskip("pytorchvideo.models.hub")
    from rs3d.models.convert import convert_pytorchvideo_resnet, load_pretrained_report

    torch.manual_seed(0)
    ptv = hub.slow_r50(pretrained=False)
    randomize_bn(ptv)
    torch.save(ptv.state_dict(), tmp_path / "ptv.pyth")
    model = rs3d.create_model("slow_r50", num_classes=101)
    report = load_pretrained_report(model, str(tmp_path / "ptv.pyth"))
    assert report.fmt == "pytorchvideo" and report.head == (400, 101) and model.fc.out_features == 101
    expected = convert_pytorchvideo_resnet(ptv.state_dict())
    for k, v in expected.items():
        if not k.startswith("fc."):
            assert torch.equal(model.state_dict()[k], v), k


def test_timm_2d_weights_with_another_head_inflate_into_the_backbone(tmp_path):
    timm = pytest.importorskip("timm")
    from rs3d.models.convert import load_pretrained_report

    net2d = timm.create_model("resnet26", pretrained=False, num_classes=1000)
    randomize_bn(net2d)
    torch.save(net2d.state_dict(), tmp_path / "r26.pth")
    model = ResNet3D(
        **dict(model_args("slow_r50"), depth=26, num_classes=5, temporal_kernels=(1, 1, 3, 3), stem_temporal_kernel=3)
    )
    report = load_pretrained_report(model, str(tmp_path / "r26.pth"), inflate=True, inflate_mode="mean")
    assert report.fmt == "2d" and report.head == (1000, 5) and model.fc.weight.shape == (5, 2048)
    assert torch.equal(model.conv1.weight, inflate_kernel(net2d.conv1.weight, 3, "mean"))
    assert torch.equal(model.layer3[0].conv1.weight, inflate_kernel(net2d.layer3[0].conv1.weight, 3, "mean"))
    assert torch.equal(model.layer4[1].bn2.running_var, net2d.layer4[1].bn2.running_var)


# ----------------------------------------------------------------------------- whose keys, not whose wrapper
def test_pytorchvideo_model_zoo_file_loads_by_its_keys(tmp_path):
    """PyTorchVideo's model zoo (what ``slow_r50(pretrained=True)`` downloads) stores
    ``{"model_state": <PyTorchVideo keys>}``; PySlowFast's ``PTVResNet`` stores the same network
    as ``self.model``, so its keys are ``model.blocks...``. Both are PyTorchVideo weights."""
    hub = pytest.importorskip("pytorchvideo.models.hub")
    from rs3d.checkpoint.weights import load_weights
    from rs3d.models.convert import convert_pytorchvideo_resnet

    torch.manual_seed(0)
    ptv = hub.slow_r50(pretrained=False, stem_dim_out=16, model_num_class=10)  # the zoo's layout at width 0.25
    randomize_bn(ptv)
    expected = convert_pytorchvideo_resnet(ptv.state_dict())
    zoo = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": ptv.state_dict()}, zoo)
    pyslowfast = tmp_path / "checkpoint_epoch_00196.pyth"
    torch.save({"epoch": 196, "model_state": {"model." + k: v for k, v in ptv.state_dict().items()}}, pyslowfast)
    for path in (zoo, pyslowfast):
        model = rs3d.create_model("slow_r50", num_classes=10, width_multiplier=0.25)
        assert load_pretrained(model, str(path)) == "pytorchvideo"
        assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
        model = rs3d.create_model("slow_r50", num_classes=10, width_multiplier=0.25)
        assert load_weights(model, str(path)) == "pytorchvideo"  # what rs3d-test does with it
        assert torch.equal(model.fc.weight, expected["fc.weight"])


def test_weights_of_another_width_name_the_config_that_fits(tmp_path):
    """A wider PyTorchVideo slow_r50 (here 0.25, as 1.0 into 0.25 but smaller) into a width-0.125
    config, an RS-50 into an RS-26 config: the error says which MODEL.ARCH / WIDTH_MULTIPLIER /
    NUM_CLASSES the file fits."""
    hub = pytest.importorskip("pytorchvideo.models.hub")
    from rs3d.checkpoint.weights import load_weights
    from rs3d.errors import EvaluationError

    ptv = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": hub.slow_r50(pretrained=False, stem_dim_out=16).state_dict()}, ptv)
    with pytest.raises(CheckpointError) as e:
        load_weights(rs3d.create_model("slow_r50", num_classes=400, width_multiplier=0.125), str(ptv))
    assert "the file fits MODEL.ARCH slow_r50 MODEL.WIDTH_MULTIPLIER 0.25 MODEL.NUM_CLASSES 400" in str(e.value)
    assert "shape mismatch" in str(e.value) and "\n" not in str(e.value)

    rs50 = tmp_path / "rs50.pyth"
    torch.save({"model": rs3d.create_model("resnet3d_rs50", num_classes=7, width_multiplier=0.125).state_dict()}, rs50)
    with pytest.raises(
        EvaluationError, match="fits MODEL.ARCH resnet3d_rs50 MODEL.WIDTH_MULTIPLIER 0.125 MODEL.NUM_CLASSES 7"
    ):
        load_weights(rs3d.create_model("resnet3d_rs26", num_classes=7, width_multiplier=0.125), str(rs50))
    with pytest.raises(
        EvaluationError, match="fits MODEL.ARCH resnet3d_rs50 MODEL.WIDTH_MULTIPLIER 0.125 MODEL.NUM_CLASSES 7"
    ):
        load_weights(rs3d.create_model("resnet3d_rs50", num_classes=7, width_multiplier=0.25), str(rs50))
    with pytest.raises(CheckpointError, match="fits MODEL.ARCH resnet3d_rs50 MODEL.WIDTH_MULTIPLIER 0.125"):
        load_pretrained(rs3d.create_model("resnet3d_rs50", num_classes=3, width_multiplier=0.25), str(rs50))


def test_weights_no_registered_model_fits_say_what_they_hold():
    from rs3d.models.convert import fit_hint

    sd = rs3d.create_model("resnet3d_rs26", num_classes=5, width_multiplier=0.125).state_dict()
    sd["fc.weight"] = torch.zeros(5, 999)
    hint = fit_hint(sd)
    assert hint.startswith("no registered MODEL.ARCH fits it") and "depth 26" in hint and "MODEL.NUM_CLASSES 5" in hint


@pytest.mark.parametrize(
    "convert, key",
    [
        ("convert_pytorchvideo_resnet", "blocks.0.pool.weight"),  # a stem part rs3d has not
        ("convert_pytorchvideo_resnet", "blocks.2.res_blocks.0.branch2.conv_d.weight"),
        ("convert_pytorchvideo_resnet", "blocks.6.proj.weight"),
        ("convert_pyslowfast_resnet", "s1.pathway0_stem.pool.weight"),
        ("convert_pyslowfast_resnet", "s3.pathway0_res1.branch3.weight"),
    ],
)
def test_a_key_without_an_rs3d_counterpart_is_refused_by_name(convert, key):
    import rs3d.models.convert as C

    source = "PyTorchVideo" if "pytorchvideo" in convert else "PySlowFast"
    with pytest.raises(C.CheckpointError, match=f"{source} key '{re.escape(key)}' has no rs3d counterpart"):
        getattr(C, convert)({key: torch.zeros(1)})
