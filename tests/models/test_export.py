"""The backbone works where users deploy it: channels_last_3d, TorchScript, torch.export, ONNX, compile."""
import warnings

import pytest
import torch

import rs3d


@pytest.fixture(scope="module")
def model_and_clip():
    model = rs3d.create_model("resnet3d_rs26", num_classes=4, width_multiplier=0.25).eval()
    clip = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model, clip, model(clip)


def test_channels_last_3d(model_and_clip):
    model, clip, ref = model_and_clip
    model_cl = rs3d.create_model("resnet3d_rs26", num_classes=4, width_multiplier=0.25).eval()
    model_cl.load_state_dict(model.state_dict())
    model_cl = model_cl.to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        out = model_cl(clip.to(memory_format=torch.channels_last_3d))
    assert torch.allclose(out, ref, atol=1e-5)


def test_torchscript(model_and_clip):
    model, clip, ref = model_and_clip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    with torch.no_grad():
        assert torch.allclose(scripted(clip), ref, atol=1e-6)
        assert set(scripted.forward_stages(clip)) == {"res2", "res3", "res4", "res5"}
        pooled = scripted.forward_head(scripted.forward_features(clip), pre_logits=True)
        assert torch.allclose(pooled, model.forward_head(model.forward_features(clip), pre_logits=True),
                              atol=1e-6)


def test_torch_export(model_and_clip):
    model, clip, ref = model_and_clip
    program = torch.export.export(model, (clip,))
    with torch.no_grad():
        assert torch.allclose(program.module()(clip), ref, atol=1e-6)


def test_onnx_export_runs_in_onnxruntime(model_and_clip, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, clip, ref = model_and_clip
    path = tmp_path / "rs26.onnx"
    torch.onnx.export(model, (clip,), str(path), dynamo=True, input_names=["clip"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"clip": clip.numpy()})
    assert torch.allclose(torch.from_numpy(out), ref, atol=1e-5)


@pytest.mark.slow
def test_torch_compile(model_and_clip):
    model, clip, ref = model_and_clip
    compiled = torch.compile(model)
    with torch.no_grad():
        assert torch.allclose(compiled(clip), ref, atol=1e-5)
