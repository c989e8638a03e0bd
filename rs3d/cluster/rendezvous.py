"""The env:// rendezvous of a SLURM job launched with one task per GPU.

Why one task per GPU (SLURM starts every training process itself) rather than one ``torchrun``
per node: the process SLURM signals on preemption or at the time limit is then the trainer
itself, so :mod:`rs3d.engine.preemption` catches the signal, all ranks agree, the checkpoint is
written and submitit's requeue protocol (``TrainJob.checkpoint``) runs in the same process; with
torchrun in between, the agent would have to forward the signal, and submitit's handler would run
in the agent, which knows nothing of training. What torchrun adds, restarting a failed worker
group, is covered at the job level: the requeued job resumes from the newest good checkpoint.
(Sites without submitit use srun + torchrun, in docs/cluster.md.)

Each task learns its place from SLURM's variables, read by submitit's ``JobEnvironment``:

    MASTER_ADDR       first host of SLURM_JOB_NODELIST
    MASTER_PORT       $MASTER_PORT, else a port in [20000, 60000] drawn from the job id (the same
                      on every task, and again after a requeue)
    WORLD_SIZE        SLURM_NTASKS            (nodes x GPUs per node)
    RANK              SLURM_PROCID
    LOCAL_RANK        SLURM_LOCALID           (the GPU index on the node)
    LOCAL_WORLD_SIZE  WORLD_SIZE / SLURM_JOB_NUM_NODES
"""

from __future__ import annotations

import os

RENDEZVOUS_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def export_torch_env() -> dict:
    """Set the env:// variables of this task from SLURM's (inside a submitit job); returns them.

    Variables inherited from the submitting shell (sbatch exports its environment) are
    overwritten. CUDA_VISIBLE_DEVICES is left alone: each rank takes GPU LOCAL_RANK of the node
    (or the only one it sees, where SLURM binds one GPU per task).
    """
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return {k: os.environ[k] for k in RENDEZVOUS_VARIABLES}


def describe(nodes: int, tasks_per_node: int) -> list:
    """The rendezvous of a job of ``nodes`` x ``tasks_per_node`` tasks, as lines for ``--dry-run``."""
    world = nodes * tasks_per_node
    return [
        "rendezvous: env:// from SLURM's variables, one task per GPU (rs3d.cluster.rendezvous)",
        "  MASTER_ADDR=<first host of $SLURM_JOB_NODELIST>",
        "  MASTER_PORT=<$MASTER_PORT, else 20000-60000 drawn from $SLURM_JOB_ID>",
        f"  WORLD_SIZE={world} (= $SLURM_NTASKS: {nodes} nodes x {tasks_per_node} tasks)",
        f"  RANK=$SLURM_PROCID (0-{world - 1})  LOCAL_RANK=$SLURM_LOCALID (0-{tasks_per_node - 1})  "
        f"LOCAL_WORLD_SIZE={tasks_per_node}",
    ]
