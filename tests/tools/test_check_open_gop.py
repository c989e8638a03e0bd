"""tools/check_open_gop.py: rs3d's readers deliver every frame of an open-GOP file exactly, and the
tool reports a reader's wrong frames as they are."""

import json

import helpers
import numpy as np


def test_rs3d_readers_are_exact_on_open_and_closed_gops(capsys):
    tool = helpers.load_tool("check_open_gop")
    assert tool.main(["--frames", "40", "--gop", "12"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    opened, closed = results["open_gop"], results["closed_gop"]
    assert opened["has_open_gop"] and not closed["has_open_gop"]
    for r in (opened, closed):
        assert r["frames"] == 40
        assert r["rs3d-decord"]["wrong"] == [] and r["rs3d-pyav"]["wrong"] == []
        assert r["rs3d-decord"]["max_error"] <= 0.5 and r["rs3d-pyav"]["max_error"] <= 0.5


def test_the_tool_reports_exactly_the_frames_a_reader_gets_wrong(tmp_path):
    """A reader that returns the next frame for frames 5-9 and the right one elsewhere."""
    from rs3d.data.synthetic import render_video, write_video

    tool = helpers.load_tool("check_open_gop")
    path = str(tmp_path / "v.mp4")
    write_video(path, render_video(2, np.random.default_rng(3), 64, 80, 20), 24, "libx264", {"g": "8"})
    ref = tool.sequential(path)
    r = tool.wrong_frames(
        path, {"half-wrong": lambda i: ref[i + 1] if 5 <= i < 10 else ref[i], "right": lambda i: ref[i]}
    )
    assert r["frames"] == 20 and r["has_open_gop"] is False
    assert r["half-wrong"]["wrong"] == [5, 6, 7, 8, 9] and r["half-wrong"]["max_error"] > 0.5
    assert r["right"] == {"wrong": [], "max_error": 0.0}
