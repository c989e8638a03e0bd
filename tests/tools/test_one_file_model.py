"""A trained checkpoint is enough on its own: copied alone into an empty folder, every tool that
uses a model runs from there with no --cfg and names the classes; its export loads back bitwise."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rs3d
from rs3d.checkpoint import METADATA_KEY
from rs3d.data.synthetic import render_video, write_video

ROOT = Path(__file__).resolve().parents[2]
MODEL = ["MODEL.ARCH", "resnet3d_rs26", "MODEL.WIDTH_MULTIPLIER", "0.25", "MODEL.NUM_CLASSES", "4"]


def tool(module, *args, cwd):
    """Run ``python -m rs3d.cli.MODULE ARGS`` in ``cwd`` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", f"rs3d.cli.{module}", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(synthetic_dataset, tmp_path_factory):
    """One epoch of a tiny model on the synthetic data (a real rs3d-train run), then its checkpoint
    copied ALONE into an empty folder as model.pyth."""
    root = tmp_path_factory.mktemp("one_file")
    run = tool(
        "train",
        *MODEL,
        "DATA.PATH_TO_DATA_DIR",
        synthetic_dataset,
        "OUTPUT_DIR",
        root / "run",
        "DATA.NUM_FRAMES",
        "4",
        "DATA.SAMPLING_RATE",
        "2",
        "DATA.TRAIN_CROP_SIZE",
        "32",
        "DATA.TEST_CROP_SIZE",
        "32",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "2",
        "TEST.NUM_SPATIAL_CROPS",
        "1",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "DEVICE",
        "cpu",
        "TRAIN.BATCH_SIZE",
        "4",
        "SOLVER.MAX_EPOCH",
        "1",
        "TRAIN.AMP_DTYPE",
        "float32",
        "TRAIN.EVAL_PERIOD",
        "0",
        "TENSORBOARD.ENABLE",
        "False",
        cwd=root,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    empty = root / "elsewhere"
    empty.mkdir()
    shutil.copy(root / "run" / "checkpoints" / "checkpoint_epoch_00001.pyth", empty / "model.pyth")
    video = sorted((synthetic_dataset / "videos" / "test").glob("*.mp4"))[0]
    shutil.copy(video, empty / "video.mp4")
    frames = np.concatenate([render_video(c, np.random.default_rng(c), 48, 64, 30) for c in (0, 1)])
    write_video(str(empty / "long.mp4"), frames, 15, "libx264")
    names = (synthetic_dataset / "classes.txt").read_text().split()
    assert sorted(os.listdir(empty)) == ["long.mp4", "model.pyth", "video.mp4"]
    return {"dir": empty, "names": names, "ckpt": empty / "model.pyth"}


def test_the_checkpoint_describes_itself(trained):
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    meta = ckpt[METADATA_KEY]
    assert meta["class_names"] == trained["names"] and meta["rs3d_version"] == rs3d.__version__
    assert meta["architecture"]["name"] == "resnet3d_rs26" and meta["architecture"]["num_classes"] == 4
    assert meta["architecture"]["kwargs"]["width_multiplier"] == 0.25
    clip = meta["clip"]
    assert (clip["num_frames"], clip["sampling_rate"], clip["test_crop_size"]) == (4, 2, 32)
    assert clip["mean"] == [0.0, 0.0, 0.0] and clip["std"] == [1.0, 1.0, 1.0]
    assert meta["multi_label"] is False and "data_manifest" in meta and "MODEL:" in ckpt["cfg"]


def test_predict_timeline_features_and_gradcam_from_the_checkpoint_alone(trained):
    d, names = trained["dir"], trained["names"]
    ck = ["TEST.CHECKPOINT_FILE_PATH", "model.pyth"]
    p = tool("predict", *ck, "--", "video.mp4", cwd=d)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 + 4 and all(line.split()[-1] in names for line in lines[1:]), p.stdout

    t = tool("timeline", "--out", "tl", *ck, "--", "long.mp4", cwd=d)
    assert t.returncode == 0, t.stderr
    summary = json.loads((d / "tl" / "long.timeline.json").read_text())
    assert summary["window_s"] == pytest.approx(4 * 2 / 15)  # the trained clip's span at 15 fps
    assert summary["warning"] == "" and all(s["name"] in names for s in summary["segments"])
    starts = [s["start_s"] for s in summary["top_segments"]]
    assert starts == sorted(starts)  # printed in time order

    f = tool("extract_features", "--folder", ".", "--out", "feats", *ck, cwd=d)
    assert f.returncode == 0, f.stderr
    info = json.loads((d / "feats" / "extract_info.json").read_text())
    assert info["class_names"] == names and info["arch"] == "resnet3d_rs26"
    assert len(list((d / "feats" / "features").glob("*.npy"))) == 2

    g = tool("visualize", "gradcam", "--no-mp4", "--out", "gc", *ck, "--", "video.mp4", cwd=d)
    assert g.returncode == 0, g.stderr
    cam = json.loads((d / "gc" / "video.gradcam.json").read_text())
    assert cam["name"] in names and cam["layer_choice"]
    # 32-pixel input: res2 (8x8) is the only stage with a >= 7x7 map, and the choice is said.
    assert cam["layer"] == "res2" and "deepest stage with a >= 7x7 map (8x8" in cam["layer_choice"]


def test_a_cfg_that_contradicts_the_checkpoint_is_one_line(trained, tmp_path):
    cfg = tmp_path / "other.yaml"
    cfg.write_text("MODEL:\n  NUM_CLASSES: 7\n")
    p = tool(
        "predict",
        "--cfg",
        cfg,
        "TEST.CHECKPOINT_FILE_PATH",
        trained["ckpt"],
        "--",
        trained["dir"] / "video.mp4",
        cwd=tmp_path,
    )
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, p.stderr
    assert "MODEL.NUM_CLASSES 7 (checkpoint: 4)" in err[0] and "drop --cfg" in err[0]
    assert "size mismatch" not in p.stderr
    cfg.write_text(
        "MODEL:\n  ARCH: resnet3d_rs26\n  WIDTH_MULTIPLIER: 0.25\n  NUM_CLASSES: 4\nDATA:\n  MULTI_LABEL: true\n"
    )
    p = tool(
        "predict",
        "--cfg",
        cfg,
        "TEST.CHECKPOINT_FILE_PATH",
        trained["ckpt"],
        "--",
        trained["dir"] / "video.mp4",
        cwd=tmp_path,
    )
    assert p.returncode == 2 and "DATA.MULTI_LABEL True (checkpoint: False)" in p.stderr, p.stderr


def test_an_old_checkpoint_loads_with_a_warning_naming_what_is_missing(trained, tmp_path):
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    old = {k: v for k, v in ckpt.items() if k not in ("cfg", METADATA_KEY)}
    torch.save(old, tmp_path / "old.pyth")
    shutil.copy(trained["dir"] / "video.mp4", tmp_path / "video.mp4")
    p = tool(
        "predict",
        *MODEL,
        "DATA.NUM_FRAMES",
        "4",
        "DATA.TEST_CROP_SIZE",
        "32",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "1",
        "TEST.NUM_SPATIAL_CROPS",
        "1",
        "TEST.CHECKPOINT_FILE_PATH",
        "old.pyth",
        "--",
        "video.mp4",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "no config, class names, architecture, clip, rs3d version" in p.stderr
    assert p.stdout.strip().splitlines()[1].split()[-1] in "0123"  # no names known: indices, said above


def test_export_round_trip_is_bitwise_from_the_folder_and_through_torch_hub(trained, tmp_path):
    out = tmp_path / "exported"
    p = tool("export", "--out", out, "--torchscript", "TEST.CHECKPOINT_FILE_PATH", trained["ckpt"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(out)) == ["classes.txt", "config.json", "model.safetensors", "model.torchscript.pt"]
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"] == trained["names"] and config["preprocessing"]["num_frames"] == 4
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    reference = rs3d.create_model("resnet3d_rs26", num_classes=4, width_multiplier=0.25).eval()
    reference.load_state_dict(ckpt["ema"])
    clip = torch.rand(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(clip)
        for model in (
            rs3d.load_model(str(out)),
            rs3d.create_model("resnet3d_rs26", pretrained=str(out)),
            torch.hub.load(str(ROOT), "resnet3d_rs26", source="local", pretrained=str(out)),
        ):
            assert not model.training and torch.equal(model(clip), want)
            assert model.pretrained_cfg["class_names"] == trained["names"]
    extra = {"rs3d_config.json": ""}
    scripted = torch.jit.load(str(out / "model.torchscript.pt"), _extra_files=extra)
    assert json.loads(extra["rs3d_config.json"])["preprocessing"]["test_crop_size"] == 32
    with torch.no_grad():
        assert torch.equal(scripted(clip), want)
    with pytest.raises(rs3d.errors.CheckpointError, match="not 'resnet3d_rs50'"):
        rs3d.create_model("resnet3d_rs50", pretrained=str(out))
