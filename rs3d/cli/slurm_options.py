"""The SLURM options ``rs3d-submit`` and ``rs3d-sweep --launcher slurm`` share, and the
:class:`rs3d.cluster.JobSpec` they stand for."""

from __future__ import annotations

import argparse

from rs3d.cluster import JobSpec, parse_time


def add_slurm_options(group, *, gpus_per_node: int, gpus_help: str, mem_help: str, time_help: str) -> None:
    """``--gpus-per-node``, ``--cpus-per-task``, ``--mem``, ``--time``, ``--partition``,
    ``--account``, ``--qos`` and ``--constraint`` (the help of the first, mem and time per command)."""
    group.add_argument("--gpus-per-node", type=int, default=gpus_per_node, help=gpus_help)
    group.add_argument("--cpus-per-task", type=int, default=None, help="loader workers + 1 is a good start")
    group.add_argument("--mem", default=None, help=mem_help)
    group.add_argument("--time", default="24:00:00", help=time_help)
    group.add_argument("--partition", default=None)
    group.add_argument("--account", default=None)
    group.add_argument("--qos", default=None)
    group.add_argument("--constraint", default=None, help="node features, e.g. a100")


def job_spec(args: argparse.Namespace, **fields) -> JobSpec:
    """The job of the options of :func:`add_slurm_options`, ``--job-name`` and ``--setup``;
    ``fields``: the other ``JobSpec`` fields (folder, nodes, tasks per node, ...)."""
    return JobSpec(
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task,
        timeout_min=parse_time(args.time),
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        mem=args.mem,
        constraint=args.constraint,
        job_name=args.job_name,
        setup=list(args.setup),
        **fields,
    )
