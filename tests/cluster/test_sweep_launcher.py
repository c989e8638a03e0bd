"""The job-array launcher of rs3d.sweep on submitit's LocalExecutor: statuses in the points' order,
an element signalled with submitit's preemption signal is requeued and runs its point again, an
element that crashes is a failed status, not an exception."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from rs3d.cluster import JobSpec
from rs3d.cluster.sweep_launcher import SlurmArrayLauncher
from rs3d.errors import ConfigError
from rs3d.sweep.grid import Point


def fake_run_point(point, root):
    """Stands for rs3d.sweep.runner.run_point: counts its runs in ``root/<name>.runs``; the point
    ``pre`` is preempted on its first run (after noting it), ``bad`` crashes."""
    runs = Path(root) / f"{point.name}.runs"
    n = int(runs.read_text()) + 1 if runs.exists() else 1
    runs.write_text(str(n))
    if point.name == "bad":
        raise RuntimeError("the element itself failed")
    if point.name == "pre" and n == 1:
        os.kill(os.getpid(), signal.SIGUSR2)  # what SLURM sends before it takes the node back
        time.sleep(0.2)
    return {"name": point.name, "status": "done", "runs": n}


@pytest.mark.slow
def test_array_elements_run_requeue_and_report_in_order(tmp_path, monkeypatch):
    import functools

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the elements cannot import this file
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    points = [Point(name=n, label=n, cfg_file="", opts=[]) for n in ("a", "pre", "bad", "b")]
    spec = JobSpec(folder=str(tmp_path / "submitit" / "%j"), gpus_per_node=0, timeout_min=30)
    statuses = SlurmArrayLauncher(spec, cluster="local").launch(
        functools.partial(fake_run_point, root=str(tmp_path)), points
    )
    assert [s["name"] for s in statuses] == ["a", "pre", "bad", "b"]
    assert [s["status"] for s in statuses] == ["done", "done", "failed", "done"]
    assert statuses[1]["runs"] == 2 and statuses[0]["runs"] == statuses[3]["runs"] == 1  # requeued once
    assert statuses[2]["step"] == "launch" and "the element itself failed" in statuses[2]["error"]


def test_a_point_is_one_process():
    with pytest.raises(ConfigError, match="one process"):
        SlurmArrayLauncher(JobSpec(folder="x", nodes=2, gpus_per_node=1))
    with pytest.raises(ConfigError, match="one process"):
        SlurmArrayLauncher(JobSpec(folder="x", gpus_per_node=8))  # 8 tasks
