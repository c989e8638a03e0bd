"""rs3d-sweep: bad input stops before training (one line, exit 2); failed points; the reports."""

import csv
import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT as REPO

from rs3d.cli import run_tool
from rs3d.cli.sweep import main, parse
from rs3d.sweep import runner
from rs3d.sweep.presets import PRESETS

DEMO = str(REPO / "configs" / "demo.yaml")


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a point was started")

    monkeypatch.setattr(runner, "run_point", refuse)
    monkeypatch.setattr(runner, "run_sweep", refuse)


@pytest.fixture
def fake_steps(monkeypatch, fake_run):
    """The CLI's steps replaced by FakeRun's; returns a setter for its failures/metrics."""
    holder = {}

    def use(**kw):
        holder["run"] = fake_run(**kw)
        monkeypatch.setattr(runner, "Steps", lambda measure=None: holder["run"].steps())
        return holder["run"]

    return use


@pytest.mark.parametrize(
    "grid, words",
    [
        (["MODEL.DEPTHH=26,50"], "unknown config key MODEL.DEPTHH"),
        (["frames=4,eight"], "DATA.NUM_FRAMES expects int"),
        (["depth=26,fifty"], "depth=fifty: expects an integer"),
        (["MODEL.SE_RATIO=0.25,2.0"], "the model cannot be built"),
    ],
)
def test_bad_grid_is_one_line_exit_2_before_any_training(grid, words, tmp_path, capsys, no_training):
    rc = run_tool(main, ["--cfg", DEMO, "--grid", *grid, "--out", str(tmp_path / "sweep")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]
    assert not (tmp_path / "sweep").exists()


def test_bad_override_and_unknown_rule_and_preset_exit_2(tmp_path, capsys, no_training):
    out = str(tmp_path / "s")
    assert run_tool(main, ["--cfg", DEMO, "--grid", "frames=4", "--out", out, "SOLVER.NOPE", "1"]) == 2
    assert run_tool(main, ["--cfg", DEMO, "--grid", "frames=4", "--out", out, "--rules", "more-dropout"]) == 2
    assert run_tool(main, ["--preset", "huge", "--dry-run"]) == 2
    assert run_tool(main, ["--cfg", DEMO, "--configs", DEMO, "--out", out]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(ln.startswith("error: ") for ln in lines)
    assert "SOLVER.NOPE" in lines[0] and "more-dropout" in lines[1] and "huge" in lines[2]


def test_the_tool_itself_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rs3d.cli.sweep",
            "--cfg",
            DEMO,
            "--grid",
            "depth=26,50",
            "MODEL.WIDTH=0.5",
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --grid: unknown config key MODEL.WIDTH "
        "(short names: depth, width, frames, stride, res, train_res, test_res)"
    ]
    assert not (tmp_path / "s").exists()


def test_overrides_are_found_after_the_grid_and_after_opts():
    args = parse(
        [
            "--cfg",
            DEMO,
            "--grid",
            "depth=26,50",
            "frames=4",
            "SOLVER.MAX_EPOCH",
            "2",
            "--out",
            "o",
            "--opts",
            "LOG_PERIOD",
            "5",
        ]
    )
    assert args.grid == ["depth=26,50", "frames=4"]
    assert args.overrides == ["SOLVER.MAX_EPOCH", "2", "LOG_PERIOD", "5"]
    args = parse(["--configs", "a.yaml", "b.yaml", "TRAIN.BATCH_SIZE", "8", "--out", "o"])
    assert args.configs == ["a.yaml", "b.yaml"] and args.overrides == ["TRAIN.BATCH_SIZE", "8"]


def test_dry_run_lists_points_and_trains_nothing(tmp_path, capsys, no_training):
    out = tmp_path / "s"
    assert run_tool(main, ["--preset", "demo", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "4 point(s)" in text
    for name in ("26-4-32", "26-8-32", "50-4-32", "50-8-32"):
        assert name in text
    assert not out.exists()


def test_a_failing_point_is_in_the_table_and_the_sweep_goes_on(tmp_path, capsys, fake_steps, synthetic_dataset):
    run = fake_steps(fail={("26-4-32", "train")})
    out = tmp_path / "s"
    rc = run_tool(
        main,
        [
            "--cfg",
            DEMO,
            "--grid",
            "frames=4,8",
            "--out",
            str(out),
            "--quiet",
            "DATA.PATH_TO_DATA_DIR",
            str(synthetic_dataset),
            "SOLVER.MAX_EPOCH",
            "1",
        ],
    )
    assert rc == 1
    assert run.steps_of("26-8-32") == ["train", "test", "measure"]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["name"], r["status"]) for r in rows] == [("26-4-32", "failed"), ("26-8-32", "done")]
    assert rows[0]["step"] == "train" and "fake train failure" in rows[0]["error"]
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "failed at train: fake train failure of 26-4-32" in text


def test_missing_data_is_refused_before_training(tmp_path, capsys, no_training):
    rc = run_tool(
        main,
        [
            "--cfg",
            DEMO,
            "--grid",
            "frames=4",
            "--out",
            str(tmp_path / "s"),
            "DATA.PATH_TO_DATA_DIR",
            str(tmp_path / "nowhere"),
        ],
    )
    assert rc == 2 and "nowhere" in capsys.readouterr().err


def test_additive_study_through_the_cli(tmp_path, capsys, fake_steps, synthetic_dataset):
    fake_steps(metrics={"00_baseline": {"top1": 40.0, "top5": 90.0}, "01_dropout": {"top1": 45.0, "top5": 95.0}})
    configs = [str(REPO / "configs" / "ablation" / f) for f in ("00_baseline.yaml", "01_dropout.yaml")]
    out = tmp_path / "abl"
    rc = run_tool(
        main,
        [
            "--configs",
            *configs,
            "--out",
            str(out),
            "--quiet",
            "DATA.PATH_TO_DATA_DIR",
            str(synthetic_dataset),
            "MODEL.NUM_CLASSES",
            "4",
        ],
    )
    assert rc == 0
    md = (out / "additive.md").read_text()
    assert "| 1 | + dropout 0.5 before the classifier | 45.0 | +5.0 |" in md
    assert json.loads((out / "results.json").read_text())[1]["top1"] == 45.0
    # Run again: nothing is re-run, the report is the same.
    again = fake_steps()
    assert (
        run_tool(
            main,
            [
                "--configs",
                *configs,
                "--out",
                str(out),
                "--quiet",
                "DATA.PATH_TO_DATA_DIR",
                str(synthetic_dataset),
                "MODEL.NUM_CLASSES",
                "4",
            ],
        )
        == 0
    )
    assert again.calls == [] and (out / "additive.md").read_text() == md


def test_demo_presets_use_the_demo_dataset():
    demo_set = importlib.import_module("rs3d.cli.demo").DEMO_SET  # what rs3d-demo writes
    assert PRESETS["demo"].synthetic is demo_set and PRESETS["demo-seeds"].synthetic is demo_set


@pytest.mark.slow
def test_two_tiny_points_end_to_end_and_resume(tmp_path, synthetic_dataset):
    """The real commands: train 1 epoch, 30-view-style test, measurement; a second run re-runs
    nothing. The sweep runs as installed: only a copy of the ``rs3d`` package is importable (no
    checkout, no tools/), from another folder."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "rs3d", site / "rs3d", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = shutil.copy(DEMO, elsewhere / "tiny.yaml")
    env = dict(os.environ, PYTHONPATH=str(site))
    where = subprocess.run(
        [sys.executable, "-c", "import rs3d; print(rs3d.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()
    assert where == str(site / "rs3d" / "__init__.py")
    out = tmp_path / "s"
    cmd = [
        sys.executable,
        "-m",
        "rs3d.cli.sweep",
        "--cfg",
        str(cfg),
        "--grid",
        "frames=2,4",
        "--out",
        str(out),
        "--measure-batch",
        "2",
        "--measure-steps",
        "1",
        "--quiet",
        "DATA.PATH_TO_DATA_DIR",
        str(synthetic_dataset),
        "SOLVER.MAX_EPOCH",
        "1",
        "TRAIN.EVAL_PERIOD",
        "0",
        "TRAIN.BATCH_SIZE",
        "4",
        "SOLVER.REFERENCE_BATCH_SIZE",
        "4",
        "DATA.TRAIN_CROP_SIZE",
        "16",
        "DATA.TEST_CROP_SIZE",
        "16",
        "DATA.TRAIN_JITTER_SCALES",
        "[16, 20]",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "2",
        "TEST.NUM_SPATIAL_CROPS",
        "3",
        "TENSORBOARD.ENABLE",
        "False",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())
    assert [(r["name"], r["status"]) for r in rows] == [("26-2-16", "done"), ("26-4-16", "done")]
    for r in rows:
        own = json.loads((out / r["name"] / "test_metrics.json").read_text())
        assert r["top1"] == own["top1"] and r["num_videos"] == own["num_videos"] == 8
        assert r["weights"] == own["weights"]
        assert r["measure_batch"] == 2 and r["latency_ms_per_clip"] > 0
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    ckpts = sorted((out / "26-2-16" / "checkpoints").glob("*.pyth"))
    stamp = [p.stat().st_mtime_ns for p in ckpts]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[sweep] 26-2-16: train" not in proc.stdout
    assert [p.stat().st_mtime_ns for p in ckpts] == stamp


def test_a_changed_sweep_in_the_same_folder_is_refused_before_training(
    tmp_path, capsys, fake_steps, synthetic_dataset, monkeypatch
):
    args = [
        "--cfg",
        DEMO,
        "--grid",
        "frames=4",
        "--out",
        str(tmp_path / "s"),
        "--quiet",
        "DATA.PATH_TO_DATA_DIR",
        str(synthetic_dataset),
    ]
    fake_steps()
    assert run_tool(main, args + ["SOLVER.MAX_EPOCH", "1"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(runner, "run_sweep", lambda *a, **k: pytest.fail("a point was started"))
    assert run_tool(main, args + ["SOLVER.MAX_EPOCH", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a run with other settings" in err[0]


def test_the_command_prints_one_error_line_itself(tmp_path, capsys, no_training):
    """rs3d-sweep's entry point runs through run_tool like every command (no traceback)."""
    assert main(["--cfg", DEMO, "--grid", "depth=26,fifty", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "fifty" in err[0]


def test_slurm_array_dry_run_prints_the_array_without_slurm(tmp_path, capsys, no_training):
    out = tmp_path / "s"
    assert (
        main(
            [
                "--preset",
                "demo",
                "--out",
                str(out),
                "--dry-run",
                "--launcher",
                "slurm",
                "--partition",
                "gpu",
                "--time",
                "2:00:00",
                "--mem",
                "64G",
                "--parallelism",
                "3",
                "--setup",
                "source venv/bin/activate",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "job array rs3d-sweep: 4 element(s), at most 3 at once" in text
    for line in (
        "#SBATCH --array=0-3%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=120",
        "#SBATCH --mem=64G",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --requeue",
        "source venv/bin/activate",
    ):
        assert line in text, line
    assert f"submitit folder: {out / 'submitit'}" in text and not out.exists()
    assert main(["--preset", "demo", "--out", str(out), "--dry-run", "--launcher", "slurm", "--mem", "lots"]) == 2
    assert "--mem 'lots'" in capsys.readouterr().err


def test_the_launcher_option_reaches_the_sweep(tmp_path, monkeypatch, synthetic_dataset):
    """--launcher slurm-local hands run_sweep a job-array launcher with the asked resources."""
    from rs3d.cluster.sweep_launcher import SlurmArrayLauncher

    seen = {}

    def record(points, root, launcher=None, **kw):
        seen["launcher"] = launcher
        return []

    monkeypatch.setattr(runner, "run_sweep", record)
    monkeypatch.setattr("rs3d.cli.sweep.report", lambda *a, **k: [])
    argv = [
        "--cfg",
        DEMO,
        "--grid",
        "frames=4",
        "--out",
        str(tmp_path / "s"),
        "--quiet",
        "DATA.PATH_TO_DATA_DIR",
        str(synthetic_dataset),
    ]
    assert main(argv + ["--launcher", "slurm-local", "--gpus-per-node", "0", "--time", "30"]) == 0
    launcher = seen["launcher"]
    assert isinstance(launcher, SlurmArrayLauncher) and launcher.cluster == "local"
    assert launcher.spec.gpus_per_node == 0 and launcher.spec.timeout_min == 30
    assert launcher.spec.folder == str(tmp_path / "s" / "submitit")
    assert main(argv) == 0 and seen["launcher"] is None  # the default: here, one after another


def test_overrides_after_dashdash_follow_the_shared_convention():
    """``--`` ends the options as in every other command: what follows is KEY VALUE overrides, even
    a value that looks like an option (the old parser refused ``--`` as an unknown option)."""
    args = parse(["--grid", "depth=26,50", "--out", "o", "--", "SOLVER.MAX_EPOCH", "3", "OUTPUT_DIR", "--x"])
    assert args.grid == ["depth=26,50"] and args.out == "o"
    assert args.overrides == ["SOLVER.MAX_EPOCH", "3", "OUTPUT_DIR", "--x"]
    both = parse(["--grid", "depth=26", "TRAIN.BATCH_SIZE", "8", "--out", "o", "--", "SOLVER.MAX_EPOCH", "3"])
    assert both.overrides == ["TRAIN.BATCH_SIZE", "8", "SOLVER.MAX_EPOCH", "3"]
