"""A job's resources -> a submitit executor; the text ``--dry-run`` prints; the submission.

``JobSpec`` holds what a user asks SLURM for; ``build_executor(spec)`` turns it into submitit's
``SlurmExecutor`` (or ``LocalExecutor``, the same protocol on this machine, for trying a job
without a cluster), one task per GPU, ``--requeue`` so that a preempted job can come back, and
submitit's ``--signal=USR2@<signal_delay_s>`` so training can checkpoint before the end.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..errors import ConfigError
from . import rendezvous

CLUSTERS = ("slurm", "local")


@dataclass
class JobSpec:
    folder: str  # submitit's pickles and per-task logs (shared by all nodes)
    nodes: int = 1
    gpus_per_node: int = 8
    tasks_per_node: Optional[int] = None  # None: one per GPU (one on a CPU-only job)
    cpus_per_task: Optional[int] = None
    timeout_min: float = 60 * 24  # SLURM gets whole minutes (rounded up)
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    mem: Optional[str] = None  # per node, SLURM's syntax (480G); checked by parse_mem
    constraint: Optional[str] = None
    job_name: str = "rs3d"
    signal_delay_s: int = 120  # USR2 this long before the time limit
    max_requeues: int = 10  # requeues after a time limit (preemptions are not counted)
    setup: list = field(default_factory=list)  # shell lines run before the tasks (module load, ...)

    @property
    def ntasks_per_node(self) -> int:
        return self.tasks_per_node or max(self.gpus_per_node, 1)


def parse_time(text: str) -> float:
    """SLURM's time formats -> minutes: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.

    Seconds are kept (submitit's local executor uses them); SLURM itself counts whole minutes."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2})", text.strip())
    if not m:
        raise ConfigError(f"--time {text!r}: use minutes, H:MM:SS or D-HH:MM:SS")
    nums = [int(x) for x in m.group(2).split(":")]
    if m.group(1) is None:  # M, M:S, H:M:S
        h, mi, s = nums if len(nums) == 3 else (0, nums[0], (nums + [0])[1])
    else:  # D-H, D-H:M, D-H:M:S
        h, mi, s = (nums + [0, 0])[:3]
    seconds = int(m.group(1) or 0) * 86400 + h * 3600 + mi * 60 + s
    if seconds < 1:
        raise ConfigError(f"--time {text!r} is zero")
    return seconds / 60


def parse_mem(text: str) -> float:
    """``480G``, ``480GB``, ``512000M``, ``1T`` or a number of GB -> GB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text.strip(), flags=re.IGNORECASE)
    if not m:
        raise ConfigError(f"--mem {text!r}: use e.g. 480G or 512000M")
    scale = {"K": 2**-20, "M": 2**-10, "": 1, "G": 1, "T": 1024}[m.group(2).upper()]
    return float(m.group(1)) * scale


def _dry_run_slurm_executor(folder, **kwargs):
    """submitit's SlurmExecutor on a machine without SLURM, only to render the sbatch script:
    the parameters go through the same checks and conversions as for a real submission."""
    from submitit import SlurmExecutor

    class DryRun(SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 1

    return DryRun(folder, **kwargs)


def build_executor(spec: JobSpec, cluster: str = "slurm", dry_run: bool = False):
    """The submitit executor for ``spec``; ``dry_run`` builds a SLURM one without SLURM."""
    import submitit

    if cluster == "local":
        ex = submitit.LocalExecutor(spec.folder, max_num_timeout=spec.max_requeues)
        ex.update_parameters(
            timeout_min=spec.timeout_min,
            tasks_per_node=spec.ntasks_per_node,
            gpus_per_node=spec.gpus_per_node,
            signal_delay_s=spec.signal_delay_s,
            setup=list(spec.setup),
        )
        return ex
    if cluster != "slurm":
        raise ConfigError(f"--cluster must be one of {', '.join(CLUSTERS)}; got {cluster!r}")
    make = _dry_run_slurm_executor if dry_run else submitit.SlurmExecutor
    try:
        ex = make(spec.folder, max_num_timeout=spec.max_requeues)
    except RuntimeError as e:  # no srun on this machine
        raise ConfigError(f"cannot submit to SLURM from here ({e}); use --dry-run to see the job") from None
    params = dict(
        job_name=spec.job_name,
        nodes=spec.nodes,
        ntasks_per_node=spec.ntasks_per_node,
        time=math.ceil(spec.timeout_min),
        signal_delay_s=spec.signal_delay_s,
        additional_parameters={"requeue": True},
    )
    if spec.gpus_per_node:
        params["gpus_per_node"] = spec.gpus_per_node
    optional = dict(
        cpus_per_task=spec.cpus_per_task,
        partition=spec.partition,
        account=spec.account,
        qos=spec.qos,
        constraint=spec.constraint,
        mem=spec.mem,
        setup=list(spec.setup) or None,
    )
    params.update({k: v for k, v in optional.items() if v is not None})
    ex.update_parameters(**params)
    return ex


def sbatch_script(executor) -> str:
    """The sbatch file submitit writes for ``executor`` (a SLURM one)."""
    return executor._make_submission_file_text(executor._submitit_command_str, "dry-run")


def dry_run_text(spec: JobSpec, executor, train_argv: Sequence[str], cfg) -> str:
    """What ``--dry-run`` prints: resources, the per-task command, the rendezvous, the script."""
    world = spec.nodes * spec.ntasks_per_node
    lines = [
        f"job {spec.job_name}: {spec.nodes} node(s) x {spec.ntasks_per_node} task(s) per node = "
        f"{world} process(es); {spec.gpus_per_node} GPU(s) per node, one per task; "
        f"time {math.ceil(spec.timeout_min)} min; USR2 {spec.signal_delay_s} s before the end; "
        f"up to {spec.max_requeues} requeues after a time limit",
        "each task runs: rs3d.cluster.TrainJob, in-process equal to",
        "  " + shlex.join([sys.executable, "-m", "rs3d.cli.train", *train_argv]),
        f"  OUTPUT_DIR {cfg.OUTPUT_DIR} (checkpoints; the job resumes there after a requeue)",
        *rendezvous.describe(spec.nodes, spec.ntasks_per_node),
        f"submitit folder: {spec.folder}",
        "---- sbatch script ----",
        sbatch_script(executor),
    ]
    return "\n".join(lines)
