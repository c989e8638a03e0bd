"""Sliding-window timelines: the change of class is found where it is, memory does not grow with
the video, the scores are those of the clips a full decode gives, and the outputs open."""

import csv
import json

import numpy as np
import pytest
import torch
from inference_helpers import cli_opts

from rs3d.cli.timeline import main as timeline_main
from rs3d.data import to_model_input
from rs3d.data import transforms as T
from rs3d.data.decode import read_frames
from rs3d.data.synthetic import render_video, write_video
from rs3d.errors import ConfigError, DataError
from rs3d.inference.timeline import (
    make_window,
    plan_windows,
    segments,
    sliding_window_scores,
    smooth,
    summarize,
    window_frames,
)

FPS = 12
CHANGE_FRAME = 40  # the video turns from red to blue at 40 / 12 = 3.33 s


class ColourModel(torch.nn.Module):
    """A stand-in with the model's interface whose answer is fixed by the content: class 0 when
    the clip is mostly red, class 1 when mostly blue."""

    def forward(self, x):
        red, blue = x[:, 0].mean((1, 2, 3)), x[:, 2].mean((1, 2, 3))
        return torch.stack([red - blue, blue - red], dim=1) * 20


def colour_video(path, seconds, change_frame=CHANGE_FRAME, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * FPS)
    frames = rng.integers(0, 40, (n, 48, 64, 3)).astype(np.uint8)  # some texture for the encoder
    frames[:change_frame, ..., 0] += 180
    frames[change_frame:, ..., 2] += 180
    write_video(str(path), frames, FPS, "libx264", {"g": "12", "bf": "2"})
    return str(path)


def scores_of(model, path, **kw):
    args = dict(window_s=2.0, stride_s=0.5, num_frames=8, crop_size=32, batch_size=3)
    args.update(kw)
    return sliding_window_scores(model, path, **args)


def test_windows_cover_the_video_at_the_right_frames():
    span, step = window_frames(2.0, 0.5, 12)
    assert (span, step) == (24, 6.0)
    w = make_window(3, span, step, 8)
    assert w.start == 18 and w.indices == tuple(18 + 3 * i for i in range(8))
    assert w.times(12) == {"start_s": 1.5, "end_s": 3.5, "center_s": 2.5}
    # At the training clip span (num_frames x sampling rate) the window samples every rate-th frame.
    assert make_window(0, 64, 32.0, 32).indices == tuple(range(0, 64, 2))
    windows = plan_windows(96, 12, 2.0, 0.5, 8)
    assert len(windows) == 13 and windows[-1].start + windows[-1].span == 96
    with pytest.raises(ConfigError, match="must be > 0"):
        window_frames(2.0, 0.0, 12)


def test_smoothing_is_a_centred_moving_average():
    x = np.array([[0.0], [3.0], [6.0], [0.0], [9.0]])
    np.testing.assert_allclose(smooth(x, 3)[:, 0], [1.5, 3.0, 3.0, 5.0, 4.5])
    np.testing.assert_array_equal(smooth(x, 1), x)
    with pytest.raises(ConfigError, match="odd"):
        smooth(x, 2)


def test_segments_split_halfway_between_window_centres():
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    segs = segments(scores, [1.0, 2.0, 3.0, 4.0], 5.0, ["a", "b"])
    assert [(s["name"], s["start_s"], s["end_s"], s["windows"]) for s in segs] == [
        ("a", 0.0, 2.5, 2),
        ("b", 2.5, 5.0, 2),
    ]
    assert segs[0]["score"] == pytest.approx(0.85)


def test_the_change_of_class_is_found_within_one_stride(tmp_path):
    path = colour_video(tmp_path / "red_then_blue.mp4", 8)
    result = scores_of(ColourModel(), path)
    assert result.fps == FPS and result.num_frames == 96 and len(result.windows) == 13
    summary = summarize(result, ["red", "blue"], smooth_width=3)
    segs = summary["segments"]
    assert [s["name"] for s in segs] == ["red", "blue"]
    change = CHANGE_FRAME / FPS
    assert abs(segs[1]["start_s"] - change) <= result.stride_s, (segs, change)
    # The windows wholly before / after the change are sure of their colour.
    for w, row in zip(result.windows, result.scores):
        t = w.times(FPS)
        if t["end_s"] <= change:
            assert row[0] > 0.99
        elif t["start_s"] >= change:
            assert row[1] > 0.99


def test_memory_does_not_grow_with_the_video_and_resize_chunks_do_not_change_scores(tmp_path):
    short = scores_of(ColourModel(), colour_video(tmp_path / "short.mp4", 8), resize_chunk=4)
    long = scores_of(ColourModel(), colour_video(tmp_path / "long.mp4", 24), resize_chunk=4)
    assert len(long.windows) == 45 and long.num_frames == 288
    # At most the frames of the windows in flight (one span: 24 frames) plus one resize chunk.
    assert long.peak_buffered_frames == short.peak_buffered_frames <= 24 + 4
    one_by_one = scores_of(ColourModel(), str(tmp_path / "long.mp4"), resize_chunk=1)
    np.testing.assert_allclose(one_by_one.scores, long.scores, atol=1e-12)


def test_scores_equal_the_model_on_the_clips_of_a_full_decode(tiny_checkpoint, tmp_path):
    _, model = tiny_checkpoint
    path = str(tmp_path / "v.mp4")
    write_video(path, render_video(2, np.random.default_rng(0), 64, 80, 60), 15, "libx264", {"bf": "2"})
    result = scores_of(model, path, window_s=1.0, stride_s=0.4, num_frames=4, num_crops=3)
    windows = plan_windows(60, 15, 1.0, 0.4, 4)
    assert [w.indices for w in result.windows] == [w.indices for w in windows]
    every, _, length = read_frames(path, lambda n: np.arange(n), backend="pyav")  # a full decode
    assert length == 60
    with torch.no_grad():
        for w, row in zip(windows, result.scores):
            clips = T.short_side_crops(every[list(w.indices)], 32, 3)  # the 3 crops the test cuts
            probs = model(to_model_input(clips, (0, 0, 0), (1, 1, 1))).softmax(1).mean(0)
            np.testing.assert_allclose(row, probs.double().numpy(), atol=1e-5)
    np.testing.assert_allclose(result.scores.sum(1), 1.0, atol=1e-9)


def _long_video(tmp_path, name="walk.mp4", frames=60, fps=15):
    path = tmp_path / name
    write_video(str(path), render_video(1, np.random.default_rng(1), 64, 80, frames), fps, "libx264")
    return str(path)


def test_the_tool_writes_json_csv_and_a_png_with_class_names(cfg, tmp_path, capsys):
    import matplotlib.image

    video = _long_video(tmp_path)
    out = tmp_path / "out"
    assert timeline_main(["--window", "1", "--stride", "0.5", "--out", str(out), video] + cli_opts(cfg)) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "walk.timeline.json").read_text())
    names = open(f"{cfg.DATA.PATH_TO_DATA_DIR}/classes.txt").read().split()
    assert summary["num_windows"] == 7 and summary["duration_s"] == pytest.approx(4.0)
    assert all(t["name"] in names for w in summary["windows"] for t in w["top"])
    assert summary["segments"][0]["start_s"] == 0.0 and summary["segments"][-1]["end_s"] == pytest.approx(4.0)
    assert summary["top_segments"] and summary["top_segments"][0]["name"] in printed
    rows = list(csv.DictReader(open(out / "walk.timeline.csv")))
    assert len(rows) == 7 and set(names) <= set(rows[0])
    assert sum(float(rows[0][n]) for n in names) == pytest.approx(1.0, abs=1e-4)
    image = matplotlib.image.imread(str(out / "walk.timeline.png"))
    assert image.shape[:2] == (400, 1000) and image.std() > 0.01


def test_bad_input_is_one_line_and_exit_2_or_listed(cfg, broken_videos, tmp_path, capsys):
    video = _long_video(tmp_path, frames=30)  # 2 s
    opts = cli_opts(cfg)
    assert timeline_main(["--window", "5", "--out", str(tmp_path), video] + opts) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "window (5 s) is longer than the video (2.00 s" in err[0] and video in err[0]

    assert timeline_main(["--window", "1", str(tmp_path / "nope.mp4")] + opts) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.mp4" in err[0]

    assert timeline_main(["--window", "1", "--stride", "-1", video] + opts) == 2
    assert "must be > 0" in capsys.readouterr().err

    # A file that exists but is no video: listed, and the other video still done.
    out = tmp_path / "out"
    assert timeline_main(["--window", "1", "--out", str(out), str(broken_videos["not_a_video"]), video] + opts) == 1
    printed = capsys.readouterr().out
    assert f"{broken_videos['not_a_video']}\n  error: " in printed
    assert (out / "walk.timeline.json").is_file()


def test_a_window_longer_than_the_video_in_the_library(tmp_path):
    path = colour_video(tmp_path / "v.mp4", 1, change_frame=6)
    with pytest.raises(DataError, match="longer than the video"):
        scores_of(ColourModel(), path, window_s=3.0)


def test_the_options_another_command_can_take_for_a_timeline_mode(cfg, tmp_path, capsys):
    """What rs3d-predict's --window mode runs: its parser plus add_timeline_options, then run_timelines."""
    import argparse

    from rs3d.cli.args import add_timeline_options, timeline_requested
    from rs3d.cli.timeline import run_timelines
    from rs3d.config import load_config

    p = argparse.ArgumentParser()
    p.add_argument("--topk", type=int, default=5)
    add_timeline_options(p, window_required=False)
    assert not timeline_requested(p.parse_args([]))
    with pytest.raises(ConfigError, match="--stride needs --window"):
        timeline_requested(p.parse_args(["--stride", "1"]))
    args = p.parse_args(["--window", "1", "--stride", "0.5", "--out", str(tmp_path)])
    assert timeline_requested(args)
    video = _long_video(tmp_path)
    frozen = load_config(None, cli_opts(cfg))
    assert run_timelines(frozen, [video], args, as_json=True) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert summary["num_windows"] == 7 and summary["error"] == "" and "windows" not in summary
