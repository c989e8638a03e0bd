"""Running points: resume of an interrupted sweep, failures recorded while the sweep goes on."""

import json
import os
import pickle
import sys

import pytest

from rs3d.errors import ConfigError
from rs3d.sweep.grid import expand_grid, parse_axis
from rs3d.sweep.runner import (
    METRICS_FILE,
    STATS_FILE,
    Launcher,
    LocalLauncher,
    Steps,
    read_status,
    run_point,
    run_sweep,
)


@pytest.fixture
def points(demo_cfg):
    return expand_grid(demo_cfg, [parse_axis("frames=4,8,16")], ["SOLVER.MAX_EPOCH", "3"])


def test_a_fresh_sweep_runs_every_step_of_every_point(points, tmp_path, fake_run):
    run = fake_run()
    statuses = run_sweep(points, str(tmp_path), steps=run.steps(), log=lambda s: None)
    assert [s["status"] for s in statuses] == ["done"] * 3
    assert [(n, s) for n, s, _ in run.calls] == [(p.name, s) for p in points for s in ("train", "test", "measure")]
    for p in points:
        d = tmp_path / p.name
        assert (d / METRICS_FILE).is_file() and (d / STATS_FILE).is_file()
        assert read_status(str(d))["status"] == "done"
        assert run.last_epoch(str(d)) == 3
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["name"] for p in manifest["points"]] == [p.name for p in points]


def test_rerun_skips_finished_points_and_resumes_half_done_ones(points, tmp_path, fake_run):
    root = str(tmp_path)
    done, half, fresh = points
    # An earlier run of this sweep: point 0 finished, point 1 was stopped after its first epoch.
    first = fake_run()
    run_point(done, root, first.steps(), log=lambda s: None)
    os.makedirs(tmp_path / half.name)
    first.write_checkpoint(str(tmp_path / half.name), 1)

    again = fake_run()
    run_sweep(points, root, steps=again.steps(), log=lambda s: None)
    assert again.steps_of(done.name) == []  # not re-run at all
    assert [c for c in again.calls if c[0] == half.name][0] == (half.name, "train", 1)  # resumed at epoch 1
    assert again.steps_of(fresh.name) == ["train", "test", "measure"]
    assert [c[2] for c in again.calls if c[0] == fresh.name][0] == 0  # from scratch
    assert all(read_status(str(tmp_path / p.name))["status"] == "done" for p in points)


def test_a_point_tested_but_not_measured_only_measures(points, tmp_path, fake_run):
    p = points[0]
    run = fake_run()
    run_point(p, str(tmp_path), run.steps(), log=lambda s: None)
    os.remove(tmp_path / p.name / STATS_FILE)
    again = fake_run()
    status = run_point(p, str(tmp_path), again.steps(), log=lambda s: None)
    assert again.steps_of(p.name) == ["measure"]
    assert status["skipped"] == ["train", "test"] and status["status"] == "done"


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(points, tmp_path, fake_run):
    run = fake_run(fail={(points[0].name, "train")}, crash={(points[1].name, "measure")})
    logged = []
    statuses = run_sweep(points, str(tmp_path), steps=run.steps(), log=logged.append)
    assert [s["status"] for s in statuses] == ["failed", "failed", "done"]
    assert (statuses[0]["step"], statuses[1]["step"]) == ("train", "measure")
    assert "fake train failure" in statuses[0]["error"]
    assert "RuntimeError: measure crashed" in statuses[1]["error"]
    assert run.steps_of(points[0].name) == ["train"]  # no test of a model that did not train
    assert run.steps_of(points[2].name) == ["train", "test", "measure"]
    on_disk = read_status(str(tmp_path / points[0].name))
    assert on_disk["status"] == "failed" and on_disk["step"] == "train"
    assert any("FAILED at train" in line for line in logged)
    # The next run retries the failed points only.
    again = fake_run()
    run_sweep(points, str(tmp_path), steps=again.steps(), log=lambda s: None)
    assert again.steps_of(points[0].name) == ["train", "test", "measure"]
    assert again.steps_of(points[1].name) == ["measure"]
    assert again.steps_of(points[2].name) == []


def test_a_folder_of_another_point_is_not_resumed(points, tmp_path, fake_run, demo_cfg):
    run_sweep(points[:1], str(tmp_path), steps=fake_run().steps(), log=lambda s: None)
    other = expand_grid(demo_cfg, [parse_axis("frames=4")], ["SOLVER.MAX_EPOCH", "5"])
    assert other[0].name == points[0].name
    with pytest.raises(ConfigError, match="holds a run with other settings"):
        run_sweep(other, str(tmp_path), steps=fake_run().steps(), log=lambda s: None)


def test_a_launcher_decides_where_points_run(points, tmp_path, fake_run):
    class Recording(Launcher):
        def launch(self, job, pts):
            self.job = job
            return [job(p) for p in reversed(pts)][::-1]

    launcher = Recording()
    statuses = run_sweep(points, str(tmp_path), launcher=launcher, steps=fake_run().steps(), log=lambda s: None)
    assert [s["name"] for s in statuses] == [p.name for p in points]
    # What a cluster launcher ships to other machines must pickle (real steps, not the fakes).
    job = type(launcher.job)(launcher.job.func, root=str(tmp_path), steps=Steps())
    assert pickle.loads(pickle.dumps(job)).keywords["root"] == str(tmp_path)
    assert pickle.loads(pickle.dumps(points[0])) == points[0]
    assert isinstance(LocalLauncher(), Launcher)


def test_a_failing_tool_reports_its_own_error_line(tmp_path):
    from pathlib import Path

    from rs3d.sweep.runner import _run_logged

    log = tmp_path / "step.log"
    log.write_text("error: an old failure of an earlier run\n")
    script = (
        "import sys; print('epoch 1'); print('error: DATA.PATH_TO_DATA_DIR x has no train.csv', "
        "file=sys.stderr); sys.exit(2)"
    )
    rc, why = _run_logged([sys.executable, "-c", script], log, "", echo=False)
    assert rc == 2
    assert why == f"exited with status 2: error: DATA.PATH_TO_DATA_DIR x has no train.csv (log: {log})"
    assert "epoch 1" in Path(log).read_text()
    rc, why = _run_logged(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], log, "", echo=False
    )
    assert rc == -9 and why.startswith("killed by signal 9")
