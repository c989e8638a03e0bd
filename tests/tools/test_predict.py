"""rs3d-predict: top-5 per video with the test protocol, on real encoded videos."""

import csv
import json
import shutil

import pytest
import torch
from helpers import load_tool

import rs3d
from rs3d.checkpoint import METADATA_KEY, checkpoint_metadata
from rs3d.cli import predict as predict_cli
from rs3d.cli.args import split_videos_and_overrides
from rs3d.config import load_config
from rs3d.data import kinetics400_class_names
from rs3d.data.synthetic import make_synthetic_dataset
from rs3d.errors import ConfigError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    data = root / "data"
    make_synthetic_dataset(
        str(data),
        num_classes=3,
        train_per_class=0,
        val_per_class=0,
        test_per_class=1,
        min_frames=20,
        max_frames=24,
        workers=1,
    )
    torch.manual_seed(0)
    model = rs3d.create_model("resnet3d_rs26", num_classes=3, width_multiplier=0.25)
    ckpt = root / "model.pyth"
    videos = [str(data / line.split()[0]) for line in (data / "test.csv").read_text().splitlines()]
    opts = [
        "MODEL.ARCH",
        "resnet3d_rs26",
        "MODEL.WIDTH_MULTIPLIER",
        "0.25",
        "MODEL.NUM_CLASSES",
        "3",
        "DATA.PATH_TO_DATA_DIR",
        str(data),
        "DATA.PATH_PREFIX",
        str(data),
        "TEST.CHECKPOINT_FILE_PATH",
        str(ckpt),
        "DATA.NUM_FRAMES",
        "4",
        "DATA.TEST_CROP_SIZE",
        "32",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "2",
        "TEST.NUM_SPATIAL_CROPS",
        "3",
        "DATA_LOADER.NUM_WORKERS",
        "0",
    ]
    stored = load_config(None, opts)  # what training writes beside the weights
    torch.save(
        {
            "model": model.state_dict(),
            "ema": model.state_dict(),
            "epoch": 1,
            "cfg": stored.dump(),
            METADATA_KEY: checkpoint_metadata(stored),
        },
        ckpt,
    )
    return {"root": root, "data": data, "videos": videos, "opts": opts, "ckpt": ckpt}


def test_split_videos_and_overrides(tmp_path, monkeypatch):
    split = split_videos_and_overrides
    assert split(["a.mp4", "TEST.USE_EMA", "False", "b.mp4"]) == (["a.mp4", "b.mp4"], ["TEST.USE_EMA", "False"])
    assert split(["a.mp4", "--opts", "OUTPUT_DIR", "x"]) == (["a.mp4"], ["OUTPUT_DIR", "x"])
    # A file that exists is a video whatever its name looks like (a camera's GOPR0001.MP4).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "GOPR0001.MP4").write_bytes(b"")
    assert split(["GOPR0001.MP4", "a.mp4", "TEST.USE_EMA", "False"]) == (
        ["GOPR0001.MP4", "a.mp4"],
        ["TEST.USE_EMA", "False"],
    )
    # After "--" everything is a video, even what does not exist and looks like a key.
    assert split(["OUTPUT_DIR", "o", "--", "GOPR0002.MP4", "--opts"]) == (
        ["GOPR0002.MP4", "--opts"],
        ["OUTPUT_DIR", "o"],
    )
    with pytest.raises(ConfigError, match="^GOPR0003.MP4: an override without a value"):
        split(["a.mp4", "GOPR0003.MP4"])
    with pytest.raises(ConfigError, match="^--json: options go before the videos"):
        split(["a.mp4", "--json"])


def test_prints_top_classes_by_name_and_matches_the_test_run(setup, capsys):
    videos = setup["videos"][:2]
    assert predict_cli.main(videos + setup["opts"]) == 0
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
    assert predict_cli.main(["--json"] + videos + setup["opts"]) == 0
    preds = json.loads(capsys.readouterr().out)
    for p in preds:
        row = rows[p["path"]]
        assert p["top"][0]["name"] == row["name_1"]
        assert p["top"][0]["score"] == pytest.approx(float(row["score_1"]), abs=1e-6)


def test_a_broken_video_is_reported_and_the_others_predicted(setup, tmp_path, capsys):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("hello")
    assert predict_cli.main([setup["videos"][0], str(bad)] + setup["opts"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}\n  error: " in out and "  1. " in out


def test_kinetics400_names_when_the_model_has_400_classes(setup, tmp_path, capsys):
    torch.manual_seed(0)
    model = rs3d.create_model("resnet3d_rs26", num_classes=400, width_multiplier=0.25)
    torch.save({"model": model.state_dict(), "epoch": 1}, tmp_path / "k400.pyth")
    opts = [
        "MODEL.ARCH",
        "resnet3d_rs26",
        "MODEL.WIDTH_MULTIPLIER",
        "0.25",
        "TEST.CHECKPOINT_FILE_PATH",
        str(tmp_path / "k400.pyth"),
        "DATA.NUM_FRAMES",
        "4",
        "DATA.TEST_CROP_SIZE",
        "32",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "1",
        "TEST.NUM_SPATIAL_CROPS",
        "1",
    ]
    assert predict_cli.main(["--json", setup["videos"][0]] + opts) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    names = kinetics400_class_names()
    assert len(pred["top"]) == 5 and all(t["name"] == names[t["class"]] for t in pred["top"])


def _one_error_line(capsys):
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.err
    assert out.out == ""  # stopped before predicting anything
    return lines[0]


def test_a_video_named_like_a_config_key_is_predicted(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(setup["videos"][0], tmp_path / "GOPR0001.MP4")
    opts = setup["opts"]
    assert predict_cli.main(["--json", "GOPR0001.MP4", setup["videos"][0]] + opts) == 0
    a, b = json.loads(capsys.readouterr().out)
    assert a["path"] == "GOPR0001.MP4" and a["error"] == "" and a["top"] == b["top"]
    # Missing, such a name is an override only before "--"; after it, a video that is not there.
    assert predict_cli.main(["--json", setup["videos"][0]] + opts + ["--", "GOPR0002.MP4"]) == 2
    assert _one_error_line(capsys) == "error: GOPR0002.MP4: video not found"


def test_a_folder_stands_for_every_video_under_it_sorted_by_path(setup, tmp_path, capsys):
    # The one folder rule of every command (rs3d.cli.videos): subfolders included, as for a
    # Kinetics-style class/video.mp4 tree; options may follow the videos.
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(setup["videos"][1], folder / "b clip.MP4")
    shutil.copy(setup["videos"][0], folder / "a.mp4")
    shutil.copy(setup["videos"][2], folder / "sub" / "c.mp4")
    (folder / "notes.txt").write_text("not a video")
    assert predict_cli.main([str(folder), setup["videos"][2], "--json"] + setup["opts"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in preds] == [
        str(folder / "a.mp4"),
        str(folder / "b clip.MP4"),
        str(folder / "sub" / "c.mp4"),
        setup["videos"][2],
    ]
    assert all(p["error"] == "" and len(p["top"]) == 3 for p in preds)


def test_an_empty_folder_is_refused_with_the_reason(setup, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a video")
    assert predict_cli.main([setup["videos"][0], str(tmp_path / "empty")] + setup["opts"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {tmp_path / 'empty'}: no video files under this folder")


def test_missing_videos_are_all_named_before_any_work(setup, tmp_path, capsys):
    missing = [str(tmp_path / "nope1.mp4"), str(tmp_path / "nope 2.mp4")]
    assert predict_cli.main([setup["videos"][0], *missing] + setup["opts"]) == 2
    assert _one_error_line(capsys) == f"error: 2 videos not found: {missing[0]}, {missing[1]}"


def test_mistakes_are_one_line_and_exit_2(setup, tmp_path, capsys):
    tool = predict_cli
    assert tool.main(setup["opts"]) == 2
    assert capsys.readouterr().err.startswith("error: no video given")
    assert (
        tool.main([setup["videos"][0]] + setup["opts"] + ["TEST.CHECKPOINT_FILE_PATH", str(tmp_path / "x.pyth")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.pyth" in err[0]


def test_window_turns_predict_into_a_timeline_of_the_video(setup, tmp_path, capsys):
    """`--window SEC` gives scores per window written as JSON, not one label per file."""
    out = tmp_path / "timeline"
    argv = [
        "--window",
        "0.5",
        "--stride",
        "0.25",
        "--smooth",
        "1",
        "--out",
        str(out),
        "--json",
        setup["videos"][0],
    ] + setup["opts"]
    assert predict_cli.main(argv) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert summary["error"] in ("", None)
    written = json.loads(open(summary["files"]["json"]).read())
    starts = [w["start_s"] for w in written["windows"]]
    assert len(starts) >= 2 and starts == sorted(starts)
    # Window starts fall on frames, so each stride is 0.25 s to within one frame.
    assert all(abs(b - a - 0.25) <= 1 / written["fps"] + 1e-6 for a, b in zip(starts, starts[1:]))
    # A stride without a window is a mistake in the command, not a silent single-label run.
    assert predict_cli.main(["--stride", "1", setup["videos"][0]] + setup["opts"]) == 2


def test_non_finite_scores_are_one_line_and_exit_1(setup, tmp_path, capsys):
    """NaN weights: the scores are NaN and their "top classes" would be arbitrary; refused."""
    torch.manual_seed(0)
    model = rs3d.create_model("resnet3d_rs26", num_classes=3, width_multiplier=0.25)
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    bad = tmp_path / "nan.pyth"
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "epoch": 1}, bad)
    assert predict_cli.main(setup["videos"][:2] + setup["opts"] + ["TEST.CHECKPOINT_FILE_PATH", str(bad)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: the model gives non-finite (NaN/inf) scores for 2 of 2 videos"
    ), err
    assert captured.out == ""
