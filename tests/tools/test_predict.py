"""tools/predict.py: top-5 per video with the test protocol, on real encoded videos."""
import csv
import json

import pytest
import torch

import rs3d
from rs3d.data.synthetic import make_synthetic_dataset
from helpers import load_tool
from rs3d.engine.evaluate import kinetics400_class_names


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    data = root / "data"
    make_synthetic_dataset(str(data), num_classes=3, train_per_class=0, val_per_class=0,
                           test_per_class=1, min_frames=20, max_frames=24, workers=1)
    torch.manual_seed(0)
    model = rs3d.create_model("resnet3d_rs26", num_classes=3, width_multiplier=0.25)
    ckpt = root / "model.pyth"
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "epoch": 1}, ckpt)
    videos = [str(data / line.split()[0]) for line in (data / "test.csv").read_text().splitlines()]
    opts = ["MODEL.ARCH", "resnet3d_rs26", "MODEL.WIDTH_MULTIPLIER", "0.25", "MODEL.NUM_CLASSES", "3",
            "DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data),
            "TEST.CHECKPOINT_FILE_PATH", str(ckpt), "DATA.NUM_FRAMES", "4", "DATA.TEST_CROP_SIZE", "32",
            "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3", "DATA_LOADER.NUM_WORKERS", "0"]
    return {"root": root, "data": data, "videos": videos, "opts": opts, "ckpt": ckpt}


def test_split_videos_and_overrides():
    split = load_tool("predict").split_videos_and_overrides
    assert split(["a.mp4", "TEST.USE_EMA", "False", "b.mp4"]) == (["a.mp4", "b.mp4"], ["TEST.USE_EMA", "False"])
    assert split(["a.mp4", "--opts", "OUTPUT_DIR", "x"]) == (["a.mp4"], ["OUTPUT_DIR", "x"])


def test_prints_top_classes_by_name_and_matches_the_test_run(setup, capsys):
    videos = setup["videos"][:2]
    assert load_tool("predict").main(videos + setup["opts"]) == 0
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    assert lines[0] == videos[0]
    names = (setup["data"] / "classes.txt").read_text().split()
    ranked = [line.split() for line in lines[1:4]]
    assert [r[0] for r in ranked] == ["1.", "2.", "3."] and sorted(r[2] for r in ranked) == sorted(names)
    assert float(ranked[0][1]) >= float(ranked[1][1]) >= float(ranked[2][1])

    # Same protocol as tools/test_net.py: the same top class and score for the same video.
    out = setup["root"] / "test_out"
    assert load_tool("test_net").main(setup["opts"] + ["OUTPUT_DIR", str(out)]) == 0
    capsys.readouterr()
    rows = {r["path"]: r for r in csv.DictReader(open(out / "test_predictions.csv"))}
    assert load_tool("predict").main(["--json"] + videos + setup["opts"]) == 0
    preds = json.loads(capsys.readouterr().out)
    for p in preds:
        row = rows[p["path"]]
        assert p["top"][0]["name"] == row["name_1"]
        assert p["top"][0]["score"] == pytest.approx(float(row["score_1"]), abs=1e-6)


def test_a_broken_video_is_reported_and_the_others_predicted(setup, tmp_path, capsys):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("hello")
    assert load_tool("predict").main([setup["videos"][0], str(bad)] + setup["opts"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}\n  error: " in out and "  1. " in out


def test_kinetics400_names_when_the_model_has_400_classes(setup, tmp_path, capsys):
    torch.manual_seed(0)
    model = rs3d.create_model("resnet3d_rs26", num_classes=400, width_multiplier=0.25)
    torch.save({"model": model.state_dict(), "epoch": 1}, tmp_path / "k400.pyth")
    opts = ["MODEL.ARCH", "resnet3d_rs26", "MODEL.WIDTH_MULTIPLIER", "0.25",
            "TEST.CHECKPOINT_FILE_PATH", str(tmp_path / "k400.pyth"), "DATA.NUM_FRAMES", "4",
            "DATA.TEST_CROP_SIZE", "32", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1"]
    assert load_tool("predict").main(["--json", setup["videos"][0]] + opts) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    names = kinetics400_class_names()
    assert len(pred["top"]) == 5 and all(t["name"] == names[t["class"]] for t in pred["top"])


def test_mistakes_are_one_line_and_exit_2(setup, tmp_path, capsys):
    tool = load_tool("predict")
    assert tool.main(setup["opts"]) == 2
    assert capsys.readouterr().err.startswith("error: no video given")
    assert tool.main([setup["videos"][0]] + setup["opts"] + ["TEST.CHECKPOINT_FILE_PATH", str(tmp_path / "x.pyth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.pyth" in err[0]
