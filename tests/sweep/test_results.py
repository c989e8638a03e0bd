"""The collected table against the runs' own files, the Pareto front, the plot, the additive table."""

import csv
import json
import math

import pytest
from helpers import ROOT as REPO

from rs3d.sweep.additive import additive_table, describe_change, format_markdown, write_additive
from rs3d.sweep.collect import collect, write_results
from rs3d.sweep.grid import expand_grid, parse_axis, points_from_configs
from rs3d.sweep.pareto import front_line, pareto_front
from rs3d.sweep.plot import plot_pareto
from rs3d.sweep.runner import METRICS_FILE, STATS_FILE, run_point, run_sweep

QUIET = dict(log=lambda s: None)


# ----------------------------------------------------------------------------- collect
def test_collected_table_is_what_each_run_wrote(demo_cfg, tmp_path, fake_run):
    points = expand_grid(demo_cfg, [parse_axis("depth=26,50"), parse_axis("frames=4")], ["SOLVER.MAX_EPOCH", "2"])
    metrics = {points[0].name: {"top1": 61.25, "top5": 97.5}, points[1].name: {"top1": 70.0, "top5": 99.0}}
    run_sweep(points, str(tmp_path), steps=fake_run(metrics=metrics).steps(), **QUIET)
    # Each run's own figures, as the tools would have written them (different per point).
    for i, p in enumerate(points):
        with open(tmp_path / p.name / STATS_FILE, "w") as f:
            json.dump(
                {
                    "params_m": 0.5 + i,
                    "gflops": 0.1 * (i + 1),
                    "latency_ms_per_clip": 3.0 + i,
                    "peak_mem_gib": 0.25 * (i + 1),
                    "device": "cpu (2 threads)",
                    "measure_batch": 16,
                    "step_s": 0.1,
                },
                f,
            )
    rows = collect(points, str(tmp_path))
    csv_path, json_path = write_results(rows, str(tmp_path))
    with open(csv_path) as f:
        from_csv = list(csv.DictReader(f))
    from_json = json.loads(open(json_path).read())
    assert [r["name"] for r in from_csv] == [p.name for p in points] == [r["name"] for r in from_json]
    for p, row, crow in zip(points, from_json, from_csv):
        own_metrics = json.loads((tmp_path / p.name / METRICS_FILE).read_text())
        own_stats = json.loads((tmp_path / p.name / STATS_FILE).read_text())
        for key in ("top1", "top5", "num_videos", "weights"):
            assert row[key] == own_metrics[key]
        for key in ("params_m", "gflops", "latency_ms_per_clip", "peak_mem_gib", "device"):
            assert row[key] == own_stats[key]
            assert crow[key] == str(own_stats[key])
        assert row["error_pct"] == pytest.approx(100 - own_metrics["top1"])
        assert (row["status"], row["label"], row["depth"], row["frames"]) == ("done", p.label, p.info["depth"], 4)
        assert row["grid:depth"] == p.axes["depth"]


def test_points_not_run_failed_or_interrupted_say_so(demo_cfg, tmp_path, fake_run):
    points = expand_grid(demo_cfg, [parse_axis("frames=4,8,16")], ["SOLVER.MAX_EPOCH", "2"])
    run_point(points[0], str(tmp_path), fake_run(fail={(points[0].name, "test")}).steps(), **QUIET)
    d = tmp_path / points[1].name
    d.mkdir()
    (d / "sweep_point.json").write_text(json.dumps({"status": "running", "step": "train"}))
    rows = collect(points, str(tmp_path))
    assert [r["status"] for r in rows] == ["failed", "interrupted", "pending"]
    assert rows[0]["step"] == "test" and "fake test failure" in rows[0]["error"]
    assert rows[0]["top1"] is None and rows[2]["latency_ms_per_clip"] is None
    csv_path, _ = write_results(rows, str(tmp_path))
    assert list(csv.DictReader(open(csv_path)))[2]["top1"] == ""


# ----------------------------------------------------------------------------- pareto
def test_pareto_front_on_fixed_points():
    #        A    B    C    D    E    F (= B)  G (unknown)
    cost = [1.0, 2.0, 3.0, 2.5, 4.0, 2.0, None]
    err = [30.0, 20.0, 15.0, 25.0, 15.0, 20.0, 1.0]
    # By hand: A cheapest; B beats D (cheaper and better); C best error at cost 3, E same error
    # but dearer -> dominated; F ties B exactly, so neither dominates the other.
    assert pareto_front(cost, err) == [True, True, True, False, False, True, False]
    assert front_line(cost, err) == [0, 1, 5, 2]


def test_pareto_front_edge_cases():
    assert pareto_front([], []) == []
    assert pareto_front([5.0], [50.0]) == [True]
    assert pareto_front([1.0, 1.0], [10.0, 12.0]) == [True, False]  # same cost, worse error
    with pytest.raises(ValueError):
        pareto_front([1.0], [])


# ----------------------------------------------------------------------------- plot
def _rows():
    return [
        {
            "name": "26-4-32",
            "label": "26-4-32",
            "status": "done",
            "error_pct": 40.0,
            "latency_ms_per_clip": 2.0,
            "peak_mem_gib": 0.10,
            "device": "cpu",
        },
        {
            "name": "26-8-32",
            "label": "26-8-32",
            "status": "done",
            "error_pct": 30.0,
            "latency_ms_per_clip": 4.0,
            "peak_mem_gib": 0.15,
            "device": "cpu",
        },
        {
            "name": "50-4-32",
            "label": "50-4-32",
            "status": "done",
            "error_pct": 35.0,
            "latency_ms_per_clip": 5.0,
            "peak_mem_gib": 0.12,
            "device": "cpu",
        },
        {
            "name": "50-8-32",
            "label": "50-8-32",
            "status": "failed",
            "error_pct": None,
            "latency_ms_per_clip": None,
            "peak_mem_gib": None,
        },
    ]


def test_plot_is_a_valid_png(tmp_path):
    from matplotlib.image import imread

    path = plot_pareto(_rows(), str(tmp_path / "sub" / "pareto.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
    assert float(img[..., :3].std()) > 0.01  # something is drawn, not a blank canvas
    assert not list(tmp_path.glob("sub/*.tmp*"))


def test_plot_with_no_finished_point_still_writes_a_png(tmp_path):
    from matplotlib.image import imread

    path = plot_pareto(_rows()[3:], str(tmp_path / "p.png"))
    assert imread(path).ndim == 3


# ----------------------------------------------------------------------------- additive
ABLATION = sorted(str(p) for p in (REPO / "configs" / "ablation").glob("*.yaml"))


def test_describe_change_reads_the_row_comment():
    assert describe_change(ABLATION[1]) == "+ dropout 0.5 before the classifier"
    assert describe_change(ABLATION[0]) == "the 3D ResNet-50 baseline"
    assert describe_change(str(REPO / "configs" / "demo.yaml")) is None


def test_additive_table_rows_deltas_and_paper_numbers(tmp_path, fake_run):
    points = points_from_configs(ABLATION[:3])
    metrics = {
        "00_baseline": {"top1": 70.0, "top5": 90.0},
        "01_dropout": {"top1": 71.5, "top5": 91.0},
        "02_label_smoothing": {"top1": 71.0, "top5": 91.0},
    }
    run_sweep(points, str(tmp_path), steps=fake_run(metrics=metrics).steps(), **QUIET)
    table = additive_table(points, collect(points, str(tmp_path)))
    assert [e["row"] for e in table] == [0, 1, 2]
    assert [e["top1"] for e in table] == [70.0, 71.5, 71.0]
    assert table[0]["delta"] is None
    assert math.isclose(table[1]["delta"], 1.5) and math.isclose(table[2]["delta"], -0.5)
    assert table[1]["keys"] == "MODEL.DROPOUT_RATE 0.0 -> 0.5"
    assert table[2]["change"] == "+ label smoothing 0.1"
    assert [e["paper_top1"] for e in table] == [73.4, None, None]
    md, csv_path = write_additive(table, str(tmp_path))
    text = open(md).read()
    assert "| row | change | top-1 | Δ vs previous row | paper top-1 (K400) |" in text
    assert "| 1 | + dropout 0.5 before the classifier | 71.5 | +1.5 | " in text


def test_paper_numbers_for_the_whole_k400_study():
    points = points_from_configs(ABLATION)
    table = additive_table(points, [])
    ref = {e["name"]: e["paper_top1"] for e in table}
    assert (ref["00_baseline"], ref["07_scale_jitter"], ref["09_squeeze_excitation"]) == (73.4, 77.4, 78.2)
    assert sum(v is not None for v in ref.values()) == 3
    assert table[7]["paper_delta"] == pytest.approx(4.0) and table[7]["paper_delta_vs_row"] == 0
    assert table[9]["paper_delta"] == pytest.approx(0.8) and table[9]["paper_delta_vs_row"] == 7
    assert "+4.0 (vs row 0)" in format_markdown(table)


def test_no_paper_numbers_beside_other_data():
    points = points_from_configs(ABLATION[:2], ["MODEL.NUM_CLASSES", "4"])
    assert all("paper_top1" not in e for e in additive_table(points, []))
    assert "paper" not in format_markdown(additive_table(points, []))
