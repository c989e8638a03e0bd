"""Every tool scores as the test does and reads the clip the model was trained on: multi-label
models give per-class sigmoids in predict, timeline and Grad-CAM (predict equals the test row),
and the timeline's default window is the trained clip's span."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import tiny_model

from rs3d.config import load_config
from rs3d.data.synthetic import write_video
from rs3d.evaluation import run_test
from rs3d.inference import timeline as timeline_mod
from rs3d.inference.gradcam import center_clip, choose_layer, grad_cam, mass_in_boxes, stage_map_sizes
from rs3d.inference.model import LoadedModel
from rs3d.inference.predict import predict
from rs3d.inference.timeline import run_timeline, spacing_warning, trained_window_s


def multi_label(cfg):
    cfg.DATA.MULTI_LABEL = True
    cfg.TEST.ENSEMBLE_METHOD = "max"
    return cfg


def test_predict_equals_the_test_row_on_a_multi_label_model(cfg, tmp_path):
    cfg = multi_label(cfg)
    cfg.OUTPUT_DIR = str(tmp_path)
    run_test(cfg)
    rows = list(csv.DictReader(open(tmp_path / "test_predictions.csv")))
    preds = predict(cfg, [r["path"] for r in rows], k=4)
    for p, row in zip(preds, rows):
        assert p["top"][0]["name"] == row["name_1"]
        assert p["top"][0]["score"] == pytest.approx(float(row["score_1"]), abs=1e-6)
    # Sigmoids, not a softmax: the 4 classes' scores need not add up to 1.
    assert any(abs(sum(t["score"] for t in p["top"]) - 1) > 1e-3 for p in preds)


def test_timeline_and_gradcam_use_the_sigmoid_on_a_multi_label_model(cfg, tmp_path):
    cfg = multi_label(cfg)
    video = sorted(Path(cfg.DATA.PATH_TO_DATA_DIR, "videos", "test").glob("*.mp4"))[0]
    (summary,) = run_timeline(cfg, [str(video)], window_s=0.5, stride_s=0.25, smooth_width=1, out_dir=str(tmp_path))
    rows = list(csv.DictReader(open(summary["files"]["csv"])))
    names = open(Path(cfg.DATA.PATH_TO_DATA_DIR) / "classes.txt").read().split()
    assert any(abs(sum(float(r[n]) for n in names) - 1) > 1e-3 for r in rows)

    model = tiny_model()
    x, _ = center_clip(cfg, str(video))
    result = grad_cam(model, x, "res3", activation="sigmoid")
    with torch.no_grad():
        logit = model(x)[0, result.class_index].double()
    assert result.score == pytest.approx(float(logit.sigmoid()), rel=1e-6)


# ----------------------------------------------------------------------------- timeline defaults
class ColourModel(torch.nn.Module):
    """A stand-in with the model's interface whose answer is fixed by the content: class 0
    ("red") when the clip is mostly red, class 1 ("blue") when mostly blue."""

    def forward(self, x):
        red, blue = x[:, 0].mean((1, 2, 3)), x[:, 2].mean((1, 2, 3))
        return torch.stack([red - blue, blue - red], dim=1) * 20


def clips_of_known_classes(path, classes, seconds, fps=12, seed=0):
    """One video made of clips of the given classes (0 red, 1 blue), each ``seconds`` long."""
    rng = np.random.default_rng(seed)
    parts = []
    for c in classes:
        frames = rng.integers(0, 40, (int(seconds * fps), 48, 64, 3)).astype(np.uint8)
        frames[..., 0 if c == 0 else 2] += 180
        parts.append(frames)
    write_video(str(path), np.concatenate(parts), fps, "libx264", {"g": "12", "bf": "2"})
    return str(path)


@pytest.fixture
def colour_run(monkeypatch, tmp_path):
    cfg = load_config(
        None,
        [
            "MODEL.NUM_CLASSES",
            "2",
            "DATA.NUM_FRAMES",
            "8",
            "DATA.SAMPLING_RATE",
            "1",
            "DATA.TARGET_FPS",
            "6.0",
            "DATA.TEST_CROP_SIZE",
            "32",
            "DEVICE",
            "cpu",
        ],
    )
    loaded = LoadedModel(
        ColourModel(), "colour.pyth", "model", torch.device("cpu"), torch.float32, class_names=["red", "blue"]
    )
    monkeypatch.setattr(timeline_mod, "load_model", lambda _cfg: loaded)
    truth = [0, 1, 0, 1]
    video = clips_of_known_classes(tmp_path / "long.mp4", truth, seconds=4.0)
    return cfg, video, truth


def test_the_default_window_is_the_trained_span_and_names_the_true_class(colour_run, tmp_path):
    cfg, video, truth = colour_run
    assert trained_window_s(cfg, fps=12) == pytest.approx(8 / 6.0)
    (s,) = run_timeline(cfg, [video], smooth_width=1, out_dir=str(tmp_path / "tl"))
    assert s["window_s"] == pytest.approx(8 / 6.0) and s["warning"] == ""
    right = [w["top"][0]["name"] == ["red", "blue"][truth[int(w["center_s"] // 4.0)]] for w in s["windows"]]
    assert len(right) >= 20 and sum(right) / len(right) >= 0.8, sum(right) / len(right)
    starts = [seg["start_s"] for seg in s["top_segments"]]
    assert starts == sorted(starts) and [seg["name"] for seg in s["segments"]] == ["red", "blue", "red", "blue"]


def test_a_window_three_times_the_trained_span_warns(colour_run, tmp_path, caplog):
    cfg, video, _ = colour_run
    (s,) = run_timeline(cfg, [video], window_s=3 * 8 / 6.0, smooth_width=1, out_dir=str(tmp_path / "tl"))
    assert "trained on frames 0.167 s apart (3x" in s["warning"]
    assert "trained on frames" in caplog.text
    saved = json.loads(Path(s["files"]["json"]).read_text())
    assert saved["warning"] == s["warning"]
    # Within ~25% of the trained spacing: no warning.
    assert spacing_warning(cfg, 1.2 * 8 / 6.0, 12) == "" and spacing_warning(cfg, 1.3 * 8 / 6.0, 12)


# ----------------------------------------------------------------------------- Grad-CAM mechanics
def test_the_automatic_layer_is_the_deepest_with_a_7x7_map():
    model = tiny_model()
    small, large = torch.rand(1, 3, 4, 16, 16), torch.rand(1, 3, 4, 112, 112)
    assert stage_map_sizes(model, small)["res5"][1:] == (1, 1)
    layer, reason = choose_layer(model, small)
    assert layer == "res2" and "no stage has a 7x7 map" in reason and "4x4" in reason
    assert choose_layer(model, torch.rand(1, 3, 4, 32, 32))[0] == "res2"  # 8x8
    assert choose_layer(model, large)[0] == "res4"  # res4 7x7, res5 4x4 at 112 pixels


def test_mass_in_boxes_counts_the_share_of_the_map_inside_the_boxes():
    cam = np.zeros((2, 10, 10))
    cam[0, 2:4, 2:4] = 1.0  # inside frame 0's box
    cam[1, 8, 8] = 2.0  # outside frame 1's box
    boxes = [(2, 2, 4, 4), (0, 0, 5, 5)]
    assert mass_in_boxes(cam, boxes) == pytest.approx(4 / 6)
    assert mass_in_boxes(np.zeros((2, 10, 10)), boxes) == 0.0


def test_the_direction_videos_give_the_balls_box_per_frame():
    from rs3d.data.synthetic_directions import render_video as direction_video

    boxes = []
    frames = direction_video(0, np.random.default_rng(3), 112, 144, 15.0, 20, boxes=boxes)  # left to right
    again = direction_video(0, np.random.default_rng(3), 112, 144, 15.0, 20)
    assert np.array_equal(frames, again)  # asking for the boxes changes nothing drawn
    assert len(boxes) == 20 and all(x1 - x0 == pytest.approx(y1 - y0) for x0, y0, x1, y1 in boxes)
    centres = [(x0 + x1) / 2 for x0, _, x1, _ in boxes]
    assert all(b > a for a, b in zip(centres, centres[1:]))
    # A map that is 1 at each box's centre lies wholly inside the boxes.
    cam = np.zeros((20, 112, 144))
    for t, (x0, y0, x1, y1) in enumerate(boxes):
        cam[t, int((y0 + y1) / 2), int((x0 + x1) / 2)] = 1.0
    assert mass_in_boxes(cam, boxes) == pytest.approx(1.0)


def test_the_scores_feature_of_a_multi_label_model_is_its_prediction(cfg, tmp_path):
    from rs3d.data import VideoRecord
    from rs3d.inference.features import extract_from_config

    cfg = multi_label(cfg)
    video = str(sorted(Path(cfg.DATA.PATH_TO_DATA_DIR, "videos", "test").glob("*.mp4"))[0])
    extract_from_config(cfg, [VideoRecord(video, -1)], str(tmp_path), root=str(Path(video).parent), layer="scores")
    (feature,) = [np.load(p) for p in (tmp_path / "features").rglob("*.npy")]
    (pred,) = predict(cfg, [video], k=4)
    for t in pred["top"]:
        assert feature[t["class"]] == pytest.approx(t["score"], abs=1e-6)


def test_the_stored_config_is_the_base_but_not_the_training_machines_device_and_folder(tmp_path):
    from rs3d.checkpoint import METADATA_KEY, checkpoint_metadata, load_model_config

    trained = load_config(
        None,
        [
            "MODEL.NUM_CLASSES",
            "3",
            "DATA.NUM_FRAMES",
            "6",
            "DEVICE",
            "cuda",
            "OUTPUT_DIR",
            "/cluster/runs/a",
            "DATA.TARGET_FPS",
            "7.5",
        ],
    )
    torch.save(
        {"model": {}, "cfg": trained.dump(), METADATA_KEY: checkpoint_metadata(trained, ["a", "b", "c"])},
        tmp_path / "m.pyth",
    )
    cfg = load_model_config("", ["TEST.CHECKPOINT_FILE_PATH", str(tmp_path / "m.pyth"), "DATA.NUM_FRAMES", "4"])
    assert (cfg.MODEL.NUM_CLASSES, cfg.DATA.TARGET_FPS, cfg.DATA.NUM_FRAMES) == (3, 7.5, 4)  # override on top
    assert cfg.DEVICE is None and cfg.OUTPUT_DIR == "./output"
