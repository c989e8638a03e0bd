"""The backbone works where users deploy it: channels_last_3d, TorchScript, torch.export, ONNX, compile."""

import functools
import http.server
import json
import threading
import warnings

import pytest
import torch

import rs3d
from rs3d.errors import CheckpointError
from rs3d.models.pretrained import export_onnx, export_torchscript, pretrained_config


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
        assert torch.allclose(pooled, model.forward_head(model.forward_features(clip), pre_logits=True), atol=1e-6)


def test_torch_export(model_and_clip):
    model, clip, ref = model_and_clip
    program = torch.export.export(model, (clip,))
    with torch.no_grad():
        assert torch.allclose(program.module()(clip), ref, atol=1e-6)


def test_onnx_export_runs_in_onnxruntime_and_carries_the_preprocessing(model_and_clip, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    model, clip, ref = model_and_clip
    path = tmp_path / "rs26.onnx"
    config = pretrained_config(model, list("abcd"), {"num_frames": 8, "test_crop_size": 32, "mean": [0.45] * 3})
    export_onnx(model, str(path), config, clip)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"clip": clip.numpy()})
    assert torch.allclose(torch.from_numpy(out), ref, atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    stored = json.loads(meta["rs3d_config"])
    assert stored["preprocessing"]["mean"] == [0.45] * 3 and stored["class_names"] == list("abcd")
    assert stored["architecture"] == "resnet3d_rs26" and stored["model_args"]["width_multiplier"] == 0.25


def test_torchscript_file_carries_the_preprocessing(model_and_clip, tmp_path):
    model, clip, ref = model_and_clip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_torchscript(model, str(tmp_path / "m.pt"), pretrained_config(model, None, {"num_frames": 8}))
        extra = {"rs3d_config.json": ""}
        scripted = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra["rs3d_config.json"])["preprocessing"] == {"num_frames": 8}
    with torch.no_grad():
        assert torch.allclose(scripted(clip), ref, atol=1e-6)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_saved_folder_loads_bitwise_from_disk_and_over_http(model_and_clip, tmp_path, monkeypatch):
    model, clip, ref = model_and_clip
    folder = tmp_path / "m"
    rs3d.save_pretrained(model, str(folder), class_names=list("abcd"), preprocessing={"num_frames": 8})
    assert (folder / "classes.txt").read_text().split() == list("abcd")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        for loaded in (rs3d.load_model(str(folder)), rs3d.create_model("resnet3d_rs26", pretrained=url)):
            with torch.no_grad():
                assert not loaded.training and torch.equal(loaded(clip), ref)
            assert loaded.pretrained_cfg["preprocessing"] == {"num_frames": 8}
        with pytest.raises(CheckpointError, match="no config.json"):
            rs3d.load_model(str(tmp_path))
        with pytest.raises(CheckpointError, match="cannot download"):
            rs3d.load_model(url + "/nowhere")
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_torch_compile(model_and_clip):
    model, clip, ref = model_and_clip
    compiled = torch.compile(model)
    with torch.no_grad():
        assert torch.allclose(compiled(clip), ref, atol=1e-5)
