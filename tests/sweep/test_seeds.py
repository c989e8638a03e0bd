"""The spread over seeds: --seeds N / an RNG_SEED axis, the per-point mean, std and range, the
error bars of the plot."""

import csv
import json
import statistics

import pytest
from helpers import ROOT as REPO

from rs3d.cli import run_tool
from rs3d.cli.sweep import main
from rs3d.errors import ConfigError
from rs3d.sweep import runner
from rs3d.sweep.collect import collect, seed_summary
from rs3d.sweep.grid import expand_grid, parse_axis, with_seeds
from rs3d.sweep.presets import PRESETS
from rs3d.sweep.runner import run_sweep

DEMO = str(REPO / "configs" / "demo.yaml")
QUIET = dict(log=lambda s: None)


def test_seeds_multiply_the_points_and_start_at_the_configs_seed(demo_cfg):
    base = expand_grid(demo_cfg, [parse_axis("frames=4,8")], ["RNG_SEED", "5"])
    points = with_seeds(base, 3)
    assert [p.name for p in points] == [f"26-{f}-32_seed{s}" for f in (4, 8) for s in (5, 6, 7)]
    assert [p.load().RNG_SEED for p in points] == [5, 6, 7, 5, 6, 7]
    assert {p.info["seed_group"] for p in points[:3]} == {"26-4-32"}
    # everything else is the point's own config
    assert all(p.load().DATA.NUM_FRAMES == 4 for p in points[:3])
    with pytest.raises(ConfigError, match="seeds >= 1"):
        with_seeds(base, 0)


def test_a_grid_axis_over_rng_seed_groups_the_same_way(demo_cfg):
    points = expand_grid(demo_cfg, [parse_axis("frames=4,8"), parse_axis("RNG_SEED=0,1")])
    assert [p.name for p in points] == ["26-4-32_seed0", "26-4-32_seed1", "26-8-32_seed0", "26-8-32_seed1"]
    assert [p.info["seed_group"] for p in points] == ["26-4-32", "26-4-32", "26-8-32", "26-8-32"]
    with pytest.raises(ConfigError, match="one way"):
        with_seeds(points, 2)


def test_summary_is_mean_sample_std_and_range_of_the_finished_seeds(demo_cfg, tmp_path, fake_run):
    points = with_seeds(expand_grid(demo_cfg, [parse_axis("frames=4,8")], ["SOLVER.MAX_EPOCH", "1"]), 3)
    top1 = {
        "26-4-32_seed0": 90.0,
        "26-4-32_seed1": 94.0,
        "26-4-32_seed2": 96.0,
        "26-8-32_seed0": 80.0,
        "26-8-32_seed2": 84.0,
    }
    run = fake_run(metrics={k: {"top1": v, "top5": 99.0} for k, v in top1.items()}, fail={("26-8-32_seed1", "train")})
    run_sweep(points, str(tmp_path), steps=run.steps(), **QUIET)
    groups = seed_summary(collect(points, str(tmp_path)))
    assert [g["name"] for g in groups] == ["26-4-32", "26-8-32"]
    a, b = groups
    assert (a["seeds"], a["seeds_done"], a["status"]) == (3, 3, "done")
    assert a["top1_mean"] == pytest.approx(280 / 3)
    assert a["top1_std"] == pytest.approx(statistics.stdev([90, 94, 96]))  # sample std (n - 1)
    assert (a["top1_min"], a["top1_max"]) == (90.0, 96.0)
    assert a["error_pct"] == pytest.approx(100 - 280 / 3) and (a["error_min"], a["error_max"]) == (4.0, 10.0)
    # a failed seed is left out of the statistics and said so
    assert (b["seeds_done"], b["status"], b["seed_values"]) == (2, "2/3 done", [0, 2])
    assert b["top1_mean"] == 82.0 and b["top1_std"] == pytest.approx(statistics.stdev([80, 84]))


def test_plot_draws_the_std_as_error_bars_and_the_range():
    from matplotlib.container import ErrorbarContainer
    from matplotlib.figure import Figure

    from rs3d.sweep.plot import _draw

    rows = [
        {
            "name": "a",
            "label": "26-8-32",
            "seeds": 3,
            "seeds_done": 3,
            "error_pct": 6.0,
            "error_std": 2.0,
            "error_min": 4.0,
            "error_max": 9.0,
            "latency_ms_per_clip": 3.0,
        },
        {
            "name": "b",
            "label": "50-8-32",
            "seeds": 3,
            "seeds_done": 3,
            "error_pct": 5.0,
            "error_std": 0.5,
            "error_min": 4.5,
            "error_max": 5.5,
            "latency_ms_per_clip": 6.0,
        },
    ]
    ax = Figure().subplots()
    _draw(ax, rows, "latency_ms_per_clip", "latency")
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1
    segments = bars[0].lines[2][0].get_segments()
    assert sorted((round(s[0][1], 6), round(s[1][1], 6)) for s in segments) == [(4.0, 8.0), (4.5, 5.5)]
    ranges = [c for c in ax.collections if c.get_label() == "range over seeds"]
    assert sorted((s[0][1], s[1][1]) for s in ranges[0].get_segments()) == [(4.0, 9.0), (4.5, 5.5)]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["26-8-32 (n=3)", "50-8-32 (n=3)"]


def test_seeds_through_the_cli_write_seeds_csv_and_the_plot(tmp_path, capsys, monkeypatch, fake_run, synthetic_dataset):
    metrics = {f"26-8-32_seed{s}": {"top1": v, "top5": 99.0} for s, v in zip(range(3), (70.0, 75.0, 77.0))}
    run = fake_run(metrics=metrics)
    monkeypatch.setattr(runner, "Steps", lambda measure=None: run.steps())
    out = tmp_path / "s"
    rc = run_tool(
        main,
        [
            "--cfg",
            DEMO,
            "--seeds",
            "3",
            "--out",
            str(out),
            "--quiet",
            "DATA.PATH_TO_DATA_DIR",
            str(synthetic_dataset),
            "SOLVER.MAX_EPOCH",
            "1",
        ],
    )
    assert rc == 0
    assert [n for n, s, _ in run.calls if s == "train"] == ["26-8-32_seed0", "26-8-32_seed1", "26-8-32_seed2"]
    rows = list(csv.DictReader(open(out / "seeds.csv")))
    assert len(rows) == 1 and rows[0]["name"] == "26-8-32" and rows[0]["seeds_done"] == "3"
    assert float(rows[0]["top1_mean"]) == pytest.approx(74.0)
    assert float(rows[0]["top1_std"]) == pytest.approx(statistics.stdev([70, 75, 77]))
    assert json.loads((out / "seeds.json").read_text())[0]["top1_min"] == 70.0
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "26-8-32" in text and "74.00" in text and "3/3" in text
    assert run_tool(main, ["--cfg", DEMO, "--seeds", "0", "--out", str(out)]) == 2


def test_demo_seeds_preset_is_the_demo_recipe():
    """make demo's config and its epochs, the clip length rs3d-demo's recipe picks on the demo set,
    5 seeds from the config's own."""
    p = PRESETS["demo-seeds"]
    assert p.cfg == DEMO and p.grid == () and p.seeds == 5
    assert p.overrides == ("DATA.TARGET_FPS", "5.44")
    assert p.synthetic == PRESETS["demo"].synthetic
