"""Cluster runs: SLURM jobs through submitit with one task per GPU, requeued on preemption.

``rs3d-submit`` (``rs3d.cli.submit``) builds the job; every task runs :class:`TrainJob`, which
fills the env:// rendezvous from SLURM's variables and trains in-process; a preemption or time
limit checkpoints and requeues (docs/cluster.md).
"""

from .job import TrainJob
from .launcher import JobSpec, build_executor, dry_run_text, parse_mem, parse_time
from .rendezvous import export_torch_env

__all__ = ["TrainJob", "JobSpec", "build_executor", "dry_run_text", "export_torch_env", "parse_mem", "parse_time"]
