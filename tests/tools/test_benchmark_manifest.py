"""benchmarks/manifest.py: the figures of the manifest benchmark are what their definitions say."""

import sys
from pathlib import Path

import helpers
import numpy as np
import pytest

if str(helpers.ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, as the tools see it
    sys.path.insert(0, str(helpers.ROOT))

from benchmarks import manifest, videos  # noqa: E402
from rs3d.data.synthetic import write_video  # noqa: E402


def test_per_video_cpu_is_the_median_round_over_the_videos():
    ticks = iter(
        [
            0.0,
            1.0,
            1.0,
            1.5,  # round 1: a 1.0 s, b 0.5 s
            2.0,
            5.0,
            5.0,
            5.25,  # round 2: a 3.0 s, b 0.25 s
            6.0,
            8.0,
            8.0,
            9.0,
        ]
    )  # round 3: a 2.0 s, b 1.0 s
    calls = []
    fns = {"a": lambda p: calls.append(("a", p)), "b": lambda p: calls.append(("b", p))}
    cpu = manifest.per_video_cpu(["x", "y"], 3, fns, clock=lambda: next(ticks))
    assert cpu == {"a": pytest.approx(2.0 / 2), "b": pytest.approx(0.5 / 2)}
    assert calls[:4] == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]  # interleaved within a round


def test_the_projection_is_the_per_core_rate_times_the_cores():
    p = manifest.project(100.0)
    assert p["minutes"] == pytest.approx(250_000 / (100.0 * 16) / 60)
    assert p["under_target"] and "extrapolated" in p["note"]
    assert not manifest.project(8.0)["under_target"]  # 250k / 128 per s = 32.6 min


def test_a_small_real_run_reports_consistent_rows(tmp_path, monkeypatch):
    def tiny(out_dir, num_videos, **_):
        paths = []
        for i in range(num_videos):
            path = Path(out_dir) / f"tiny_{i}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            frames = np.random.default_rng(i).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
            write_video(str(path), frames, 25, "libx264")
            paths.append(str(path))
        return paths

    monkeypatch.setattr(videos, "make_kinetics_like_videos", tiny)
    res = manifest.run(str(tmp_path), num_videos=8, rounds=1, build_rounds=1)
    rows = {r["contender"]: r for r in res["rows"]}
    base = rows["manifest row"]
    assert base["manifest_row_speed_vs"] == 1.0
    for r in res["rows"]:
        assert r["videos_per_cpu_s"] == pytest.approx(1000.0 / r["cpu_ms_per_video"])
        if r["manifest_row_speed_vs"] is not None:
            assert r["manifest_row_speed_vs"] == pytest.approx(r["cpu_ms_per_video"] / base["cpu_ms_per_video"])
    build = rows["rs3d-manifest build, 1 process (whole command)"]
    assert res["builds"][0]["videos"] == 8
    assert res["projection"]["minutes"] == pytest.approx(250_000 / (build["videos_per_cpu_s"] * 16) / 60)
    table = manifest.format_table(res)
    assert "| manifest row |" in table and "extrapolated" in table
