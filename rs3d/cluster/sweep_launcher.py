"""Sweep points as a SLURM job array (submitit): ``rs3d.sweep``'s ``Launcher`` for a cluster.

``SlurmArrayLauncher(spec).launch(job, points)`` submits one array element per point; each runs
``job(point)`` (``rs3d.sweep.runner.run_point``: train, test, measure in the point's own folder,
each step a child process that resumes what is already there) and the statuses come back in the
order of ``points``. An element is one task (a point's commands run as one process each).

Preemption and time limits: SLURM signals every process of the element, so the point's training
process checkpoints and exits on its own (``rs3d.engine.preemption``); meanwhile :class:`PointJob`
only notes the signal, and once ``run_point`` has returned it hands submitit's signal to
submitit's handler, which requeues the element. The requeued element runs ``run_point`` again,
which skips the finished steps and resumes training from the checkpoint. (Letting submitit's
handler act when the signal arrives would requeue, and so kill, the element while its training
process is still writing the checkpoint.)
"""

from __future__ import annotations

import math
import re
import signal
from typing import Callable, List, Sequence

from rs3d.engine.preemption import STOP_SIGNALS, StopFlag

from ..errors import ConfigError
from ..sweep.runner import Launcher
from .launcher import JobSpec, build_executor, sbatch_script


class PointJob:
    """``job(point)`` inside a submitit array element, requeued after a preemption signal."""

    def __init__(self, job: Callable):
        self.job = job

    def __call__(self, point) -> dict:
        import submitit

        requeue_signal = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)
        flag = StopFlag(signals=tuple(dict.fromkeys((*STOP_SIGNALS, requeue_signal.name))))
        with flag:  # only notes the signal; the point's own processes act on it
            status = self.job(point)
        if flag.received == requeue_signal:
            handler = signal.getsignal(requeue_signal)  # submitit's
            if callable(handler):
                handler(requeue_signal, None)  # checkpoint() + requeue; exits
        return status

    def checkpoint(self, point):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(PointJob(self.job), point)


class SlurmArrayLauncher(Launcher):
    """Every point as an element of one SLURM job array (``cluster="local"``: on this machine)."""

    def __init__(self, spec: JobSpec, cluster: str = "slurm", parallelism: int = 256):
        if spec.nodes != 1 or spec.ntasks_per_node != 1:
            raise ConfigError(
                "a sweep point runs as one process: use --nodes 1 and one task "
                f"(got {spec.nodes} node(s) x {spec.ntasks_per_node} task(s))"
            )
        self.spec, self.cluster, self.parallelism = spec, cluster, parallelism

    def dry_run_text(self, num_points: int) -> str:
        """The job array for ``num_points`` points, as ``--dry-run`` prints it (no SLURM needed)."""
        executor = build_executor(self.spec, "slurm", dry_run=True)
        executor.update_parameters(array_parallelism=self.parallelism)
        executor.parameters["map_count"] = num_points  # what submitit's map_array sets: --array 0-(n-1)%p
        s, at_once = self.spec, min(num_points, self.parallelism)
        return "\n".join(
            [
                f"job array {s.job_name}: {num_points} element(s), at most {at_once} at once; each one process "
                f"with {s.gpus_per_node} GPU(s), time {math.ceil(s.timeout_min)} min, requeued after a "
                f"preemption (and up to {s.max_requeues} times after a time limit)",
                "each element runs one point: python -m rs3d.cli.train, rs3d.cli.test, rs3d.cli.sweep_measure",
                f"submitit folder: {s.folder}",
                "---- sbatch script ----",
                sbatch_script(executor),
            ]
        )

    def launch(self, job: Callable, points: Sequence) -> List[dict]:
        executor = build_executor(self.spec, self.cluster)
        if self.cluster == "slurm":
            executor.update_parameters(array_parallelism=self.parallelism)
        jobs = executor.map_array(PointJob(job), list(points))
        statuses = []
        for point, j in zip(points, jobs):
            try:
                statuses.append(j.result())
            except Exception as e:  # the element itself failed (not a failing step: run_point records those)
                statuses.append(
                    {
                        "name": point.name,
                        "label": point.label,
                        "status": "failed",
                        "step": "launch",
                        "error": f"job {j.job_id}: {_exception_line(e)}",
                    }
                )
        return statuses


def _exception_line(e: Exception) -> str:
    """The ``SomeError: message`` line of a failed element's traceback (submitit's error holds the
    whole traceback and the log paths)."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    errors = [x for x in lines if re.match(r"^[\w.]+(Error|Exception)\b", x)]
    return errors[-1] if errors else (lines[0] if lines else type(e).__name__)
