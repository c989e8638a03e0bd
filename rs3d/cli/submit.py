"""``rs3d-submit``: submit a training run to SLURM through submitit, preemption-safe.

    rs3d-submit --cfg configs/k400_rs50.yaml --nodes 4 --gpus-per-node 8 \\
        --partition gpu --time 3-00:00:00 --cpus-per-task 10 --mem 480G \\
        DATA.PATH_TO_DATA_DIR /data/k400 OUTPUT_DIR /shared/out/rs50
    rs3d-submit ... --dry-run     # print the job (resources, command, rendezvous, sbatch)
    rs3d-submit ... --cluster local --gpus-per-node 0 --wait   # the same job on this machine

One task per GPU; each runs ``rs3d.cluster.TrainJob`` (training in-process, env:// rendezvous from
SLURM's variables). About ``--signal-delay`` seconds before the time limit SLURM sends USR2: every
rank finishes its step, a checkpoint is written and the job requeues itself (at most
``--max-requeues`` times after a time limit); a preempted job resumes the same way. Trailing
``KEY VALUE`` pairs override the config, as for ``rs3d-train``. A mistake in the options, the config
or the data folder is one ``error:`` line and exit status 2, before anything is submitted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from rs3d import file_io
from rs3d.cluster import TrainJob, build_executor, dry_run_text, parse_mem, parse_time
from rs3d.config import load_config, missing_data
from rs3d.errors import ConfigError

from . import run_tool
from .args import command_parser, parse_command
from .slurm_options import add_slurm_options, job_spec


def _parser() -> argparse.ArgumentParser:
    p = command_parser(
        "rs3d-submit",
        __doc__,
        docs="docs/cluster.md",
        examples=(
            "rs3d-submit --cfg configs/k400_rs50.yaml --nodes 4 --gpus-per-node 8 --partition gpu "
            "DATA.PATH_TO_DATA_DIR /data/k400 OUTPUT_DIR /shared/out/rs50 --dry-run",
        ),
        exit_statuses={1: "with --wait: the job failed"},
    )
    r = p.add_argument_group("resources")
    r.add_argument("--nodes", type=int, default=1)
    r.add_argument("--tasks-per-node", type=int, default=None, help="default: one per GPU (1 for a CPU job)")
    add_slurm_options(
        r,
        gpus_per_node=8,
        gpus_help="also the tasks per node (0: CPU job)",
        mem_help="memory per node, e.g. 480G",
        time_help="time limit: minutes, H:MM:SS or D-HH:MM:SS",
    )
    j = p.add_argument_group("job")
    j.add_argument("--job-name", default="rs3d")
    j.add_argument(
        "--folder",
        default=None,
        help="submitit's pickles and task logs, on a file system every node sees (default OUTPUT_DIR/submitit/%%j)",
    )
    j.add_argument(
        "--signal-delay",
        type=int,
        default=120,
        metavar="S",
        help="seconds before the time limit that USR2 comes (time to finish a step and save)",
    )
    j.add_argument("--max-requeues", type=int, default=10, help="requeues after a time limit")
    j.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="LINE",
        help="shell line run before the tasks start (repeatable), e.g. 'module load cuda'",
    )
    j.add_argument(
        "--cluster",
        default="slurm",
        choices=("slurm", "local"),
        help="local: submitit's LocalExecutor on this machine, one node",
    )
    j.add_argument("--dry-run", action="store_true", help="print the job and submit nothing")
    j.add_argument("--wait", action="store_true", help="wait for the job to end; its status is ours")
    return p


def _absolute_paths(cfg):
    """OUTPUT_DIR and DATA.PATH_TO_DATA_DIR made absolute (local ones), so that the job finds
    them whatever directory a requeued task starts in."""
    cfg = cfg.clone()
    cfg.defrost()
    for node, key in ((cfg, "OUTPUT_DIR"), (cfg.DATA, "PATH_TO_DATA_DIR")):
        value = getattr(node, key)
        if value and file_io.is_local(value) and not os.path.isabs(value):
            setattr(node, key, os.path.abspath(value))
    cfg.freeze()
    return cfg


def _option_problems(args) -> list:
    """Every mistake in the resource options, all at once."""
    problems = []
    for name in ("nodes", "max_requeues", "signal_delay"):
        if getattr(args, name) < (1 if name == "nodes" else 0):
            problems.append(f"--{name.replace('_', '-')} must be >= {1 if name == 'nodes' else 0}")
    if args.gpus_per_node < 0 or (args.tasks_per_node is not None and args.tasks_per_node < 1):
        problems.append("--gpus-per-node must be >= 0 and --tasks-per-node >= 1")
    if args.cluster == "local" and args.nodes != 1:
        problems.append("--cluster local runs one node; use --nodes 1")
    for check, value in ((parse_mem, args.mem), (parse_time, args.time)):
        if value is not None:
            try:
                check(value)  # a typo fails here, not in sbatch
            except ConfigError as e:
                problems.append(str(e))
    return problems


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(_parser(), argv)
    opts = args.opts
    problems = _option_problems(args)
    cfg = _absolute_paths(load_config(args.cfg_file or None, opts))
    data = missing_data(cfg, ("train", "val") if cfg.TRAIN.EVAL_PERIOD > 0 else ("train",))
    folder = args.folder
    if folder is None:
        if not file_io.is_local(cfg.OUTPUT_DIR):
            problems.append(
                f"OUTPUT_DIR {cfg.OUTPUT_DIR} is not a local path; give --folder "
                "(submitit's files must be on a file system every node sees)"
            )
        folder = os.path.join(cfg.OUTPUT_DIR, "submitit", "%j")
    if not args.dry_run:
        problems += data
    if problems:
        raise ConfigError("; ".join(problems))
    if data:  # a dry run only shows the job: the data may live where the job runs
        for d in data:
            print(f"warning: {d} (here; the job needs it where it runs)", file=sys.stderr)
    spec = job_spec(
        args,
        folder=folder,
        nodes=args.nodes,
        tasks_per_node=args.tasks_per_node,
        signal_delay_s=args.signal_delay,
        max_requeues=args.max_requeues,
    )
    executor = build_executor(spec, args.cluster, dry_run=args.dry_run)
    train_argv = ([("--cfg"), args.cfg_file] if args.cfg_file else []) + opts
    if args.dry_run:
        if args.cluster == "local":
            print(
                f"local job: 1 node x {spec.ntasks_per_node} task(s), time {spec.timeout_min:g} min, "
                f"submitit folder {folder}"
            )
        else:
            print(dry_run_text(spec, executor, train_argv, cfg))
        return 0
    job = executor.submit(TrainJob(cfg))
    print(
        f"submitted job {job.job_id}: {spec.nodes} node(s) x {spec.ntasks_per_node} task(s); "
        f"outputs {cfg.OUTPUT_DIR}; task logs {job.paths.stdout}"
    )
    if args.wait:
        job.wait()
        err = job.exception()
        if err is not None:
            print(f"error: job {job.job_id} failed; see {job.paths.stderr}", file=sys.stderr)
            return 1
        print(f"job {job.job_id} done")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
