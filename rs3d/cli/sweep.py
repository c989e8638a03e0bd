"""Scaling sweeps, the additive study and the Pareto plot: ``rs3d-sweep``.

    rs3d-sweep --preset demo                       # 4 small points on the synthetic set
    rs3d-sweep --cfg configs/k400_rs50.yaml --grid depth=50,101,152 frames=16,32 \\
        --out output/sweep_rs DATA.PATH_TO_DATA_DIR /data/k400
    rs3d-sweep --configs configs/ablation/*.yaml --out output/ablation DATA.PATH_TO_DATA_DIR /data/k400
    rs3d-sweep ... --dry-run                       # list the points, train nothing
    rs3d-sweep ... --report-only                   # table and plot from the runs so far
    rs3d-sweep --cfg configs/demo.yaml --seeds 3 --out output/demo_seeds   # spread over seeds
    rs3d-sweep ... --launcher slurm --partition gpu --time 12:00:00   # one SLURM array element per point

Every point trains in ``OUT/NAME`` (``NAME`` = ``depth-frames-res`` plus the other varying axes);
running the same command again skips finished points and resumes interrupted ones. At the end
``OUT/results.csv`` / ``results.json`` hold one row per point, ``OUT/pareto.png`` the plot, and
for ``--configs`` ``OUT/additive.md`` the additive-study table. With ``--seeds N`` (or a
``--grid RNG_SEED=...`` axis) every point trains once per seed and ``OUT/seeds.csv`` / ``seeds.json``
give per point the mean, standard deviation and range of top-1 over seeds (the plot's error bars).
Trailing ``KEY VALUE`` pairs apply to every point. A mistake in the grid or the configs is one
``error:`` line and exit status 2, before anything trains; the exit status is 1 when a point failed
(the others still ran).

``--launcher slurm`` runs the points as one SLURM job array (submitit; one GPU and one process per
element, ``--parallelism`` at once), each element requeued after a preemption and resuming its
point; with ``--dry-run`` it prints the array's sbatch script, submitting nothing.
``--launcher slurm-local`` runs the same array through submitit on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ..cluster import parse_mem
from ..cluster.sweep_launcher import SlurmArrayLauncher
from ..data.synthetic import make_synthetic_dataset
from ..errors import ConfigError
from ..sweep import runner
from ..sweep.additive import additive_table, format_markdown, write_additive
from ..sweep.collect import collect, seed_summary, write_results
from ..sweep.grid import ALIASES, check_data, check_models, expand_grid, parse_axis, points_from_configs, with_seeds
from ..sweep.pareto import pareto_front
from ..sweep.plot import plot_pareto
from ..sweep.presets import PRESETS, get_preset
from ..sweep.rules import RULES, parse_rules
from . import run_tool
from .args import command_parser, split_at_dashdash
from .slurm_options import add_slurm_options, job_spec

LAUNCHERS = ("local", "slurm", "slurm-local")

# Other processes' average use of the machine during a point's timed steps above which the sweep
# says its latency cannot be trusted (rs3d.sweep.measure.OtherWork).
BUSY_CORES = 0.25


def _parser() -> argparse.ArgumentParser:
    p = command_parser(
        "rs3d-sweep",
        __doc__
        + "\ngrid short names: "
        + "; ".join(f"{k} = {v}" for k, v in ALIASES.items())
        + "\nrules: "
        + ", ".join(RULES)
        + "\npresets: "
        + ", ".join(PRESETS),
        examples=(
            "rs3d-sweep --preset demo",
            "rs3d-sweep --cfg configs/k400_rs50.yaml --grid MODEL.ARCH=resnet3d_rs50,resnet3d_rs101 "
            "DATA.NUM_FRAMES=16,32 --out out/sweep",
            "rs3d-sweep --configs configs/ablation/*.yaml --out out/ablation",
        ),
        docs="docs/reference.md (the additive study) and README.md (scaling sweeps)",
        config=False,
        overrides=False,
    )
    p.epilog = "KEY VALUE overrides go after the options (or after --opts).\n\n" + p.epilog
    p.add_argument("--cfg", default="", help="base config of the grid")
    p.add_argument(
        "--grid",
        action="append",
        nargs="+",
        default=[],
        metavar="KEY=V1,V2",
        help="one axis per KEY=V1,V2,...; axes multiply",
    )
    p.add_argument(
        "--configs",
        action="append",
        nargs="+",
        default=[],
        metavar="CFG",
        help="one point per config, in order (the additive study)",
    )
    p.add_argument("--preset", default="", help="a ready-made sweep (demo)")
    p.add_argument("--out", default="", help="sweep folder: one subfolder per point plus the results")
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="train every point N times, RNG_SEED = the config's seed + 0..N-1; report mean, std, range",
    )
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="RULE,RULE",
        help="the paper's scaling rules to apply (explicit values win)",
    )
    p.add_argument("--dry-run", action="store_true", help="list the points and exit")
    p.add_argument("--report-only", action="store_true", help="collect, plot and tabulate; train nothing")
    p.add_argument(
        "--measure-batch",
        type=int,
        default=128,
        help="largest batch the latency/memory measurement starts from (halved until it fits)",
    )
    p.add_argument("--measure-steps", type=int, default=5, help="timed training steps per point")
    p.add_argument("--quiet", action="store_true", help="do not echo the training logs")
    j = p.add_argument_group("where points run")
    j.add_argument(
        "--launcher",
        default="local",
        choices=LAUNCHERS,
        help="local: here, one after another; slurm: a SLURM job array, one element per point; "
        "slurm-local: the same array through submitit on this machine",
    )
    add_slurm_options(
        j,
        gpus_per_node=1,
        gpus_help="GPUs of each array element (0: CPU)",
        mem_help="memory of each element, e.g. 64G",
        time_help="time limit of each element: minutes, H:MM:SS, D-HH:MM:SS",
    )
    j.add_argument("--job-name", default="rs3d-sweep")
    j.add_argument("--folder", default=None, help="submitit's files (default OUT/submitit)")
    j.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="LINE",
        help="shell line run before each element (module load ..., source venv/bin/activate)",
    )
    j.add_argument("--parallelism", type=int, default=256, help="array elements running at once")
    return p


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Options, with KEY VALUE overrides gathered from wherever they stand, after ``--`` and after
    ``--opts`` (the rules of :mod:`rs3d.cli.args`; ``--grid``/``--configs`` take several values, so
    argparse alone cannot tell where their values end and the overrides begin)."""
    argv, after = split_at_dashdash(list(argv) if argv is not None else sys.argv[1:])
    opts: List[str] = []
    if "--opts" in argv:
        i = argv.index("--opts")
        argv, opts = argv[:i], argv[i + 1 :]
    args, extra = _parser().parse_known_args(argv)
    for tok in extra:
        if tok.startswith("--"):
            raise ConfigError(f"unknown option {tok} (see rs3d-sweep --help)")
    # --grid / --configs take several values: what follows them that is not an axis / a config is
    # the start of the KEY VALUE overrides.
    overrides = list(extra)
    grid, configs = [], []
    for group in args.grid:
        for i, tok in enumerate(group):
            if "=" not in tok:
                overrides += group[i:]
                break
            grid.append(tok)
    for group in args.configs:
        for i, tok in enumerate(group):
            if not tok.endswith((".yaml", ".yml")):
                overrides += group[i:]
                break
            configs.append(tok)
    args.grid, args.configs, args.overrides = grid, configs, overrides + after + opts
    if len(args.overrides) % 2:
        raise ConfigError(f"overrides must be KEY VALUE pairs; {args.overrides[-1]!r} has no value")
    return args


def plan(args) -> Tuple[list, str, Optional[dict]]:
    """(points, sweep folder, synthetic-set parameters or None) for the parsed command line."""
    preset = get_preset(args.preset) if args.preset else None
    if args.configs and (args.cfg or args.grid):
        raise ConfigError("--configs makes one point per config; use --cfg with --grid instead, not both")
    cfg_file = args.cfg or (preset.cfg if preset else "")
    grid = args.grid or (list(preset.grid) if preset and not args.configs else [])
    overrides = (list(preset.overrides) if preset else []) + args.overrides
    rules = parse_rules(args.rules or (list(preset.rules) if preset else []))
    out = args.out or (preset.out if preset else "")
    if not out:
        raise ConfigError("--out is required (the folder that holds every point's run)")
    if args.configs:
        missing = [c for c in args.configs if not os.path.isfile(c)]
        if missing:
            raise ConfigError(f"--configs: config file not found: {missing[0]}")
        points = points_from_configs(args.configs, overrides, rules)
    elif cfg_file:
        points = expand_grid(cfg_file, [parse_axis(a) for a in grid], overrides, rules)
    else:
        raise ConfigError("nothing to sweep: give --cfg with --grid, --configs, or --preset")
    seeds = args.seeds if args.seeds is not None else (preset.seeds if preset else None)
    if seeds is not None:
        points = with_seeds(points, seeds)
    check_models(points)
    return points, out, (preset.synthetic if preset else None)


def _ensure_synthetic(points, synthetic: Optional[dict]) -> None:
    if not synthetic:
        return
    where = points[0].load().DATA.PATH_TO_DATA_DIR
    if not where or (Path(where) / "train.csv").is_file():
        return  # no folder named (check_data says so) or the data is there
    data_dir = Path(where)

    print(f"[sweep] writing the synthetic dataset to {data_dir} ...", flush=True)
    make_synthetic_dataset(str(data_dir), **synthetic)


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def summary_lines(rows) -> List[str]:
    on_lat = pareto_front([r.get("latency_ms_per_clip") for r in rows], [r.get("error_pct") for r in rows])
    on_mem = pareto_front([r.get("peak_mem_gib") for r in rows], [r.get("error_pct") for r in rows])
    head = (
        f"{'point':<28} {'status':<11} {'top-1':>6} {'top-5':>6} {'params M':>8} {'GFLOPs':>8} "
        f"{'ms/clip':>8} {'peak GiB':>8}  front"
    )
    lines = [head]
    for r, fl, fm in zip(rows, on_lat, on_mem):
        front = ",".join(n for n, f in (("latency", fl), ("memory", fm)) if f)
        lines.append(
            f"{r['name']:<28} {r['status']:<11} {_fmt(r.get('top1'), '6.1f')} "
            f"{_fmt(r.get('top5'), '6.1f')} {_fmt(r.get('params_m'), '8.3f')} "
            f"{_fmt(r.get('gflops'), '8.3f')} {_fmt(r.get('latency_ms_per_clip'), '8.2f')} "
            f"{_fmt(r.get('peak_mem_gib'), '8.3f')}  {front}"
        )
        if r["status"] == "failed":
            lines.append(f"    failed at {r.get('step')}: {r.get('error')}")
    return lines


def seed_lines(groups) -> List[str]:
    lines = [f"{'point':<28} {'seeds':>5} {'top-1 mean':>10} {'std':>5} {'min':>6} {'max':>6} {'top-5 mean':>10}"]
    for g in groups:
        lines.append(
            f"{g['name']:<28} {g['seeds_done']:>2}/{g['seeds']:<2} {_fmt(g['top1_mean'], '10.2f')} "
            f"{_fmt(g['top1_std'], '5.2f')} {_fmt(g['top1_min'], '6.1f')} {_fmt(g['top1_max'], '6.1f')} "
            f"{_fmt(g['top5_mean'], '10.2f')}"
        )
    return lines


def report(points, out: str, additive: bool) -> List[dict]:
    """Collect the runs into results.csv/json (and seeds.csv/json), draw pareto.png, write
    additive.md; print a summary."""
    rows = collect(points, out)
    csv_path, json_path = write_results(rows, out)
    groups = seed_summary(rows)
    png = plot_pareto(
        groups or rows,
        os.path.join(out, "pareto.png"),
        title="speed-accuracy Pareto curve, spread over seeds" if groups else None,
    )
    print("\n".join(summary_lines(rows)))
    if groups:
        print("\n".join(seed_lines(groups)))
        print(f"[sweep] {', '.join(write_results(groups, out, stem='seeds'))}")
    busy = [r["name"] for r in rows if (r.get("other_cores_busy") or 0) > BUSY_CORES]
    if busy:
        print(
            f"[sweep] note: {', '.join(busy)} measured while other processes kept more than {BUSY_CORES:g} "
            "core(s) busy; their latency is an overestimate (delete model_stats.json to re-measure)"
        )
    print(f"[sweep] {csv_path}, {json_path}, {png}")
    if additive:
        table = additive_table(points, rows)
        md, _ = write_additive(table, out)
        print(format_markdown(table), end="")
        print(f"[sweep] {md}")
    return rows


def launcher_of(args, out: str) -> Optional[SlurmArrayLauncher]:
    """The job-array launcher ``--launcher`` asks for (None: points run here, one after another)."""
    if args.launcher == "local":
        return None
    if args.mem:
        parse_mem(args.mem)
    if args.parallelism < 1:
        raise ConfigError(f"--parallelism must be >= 1; got {args.parallelism}")
    spec = job_spec(
        args, folder=os.path.abspath(args.folder or os.path.join(out, "submitit")), nodes=1, tasks_per_node=1
    )
    cluster = "local" if args.launcher == "slurm-local" else "slurm"
    return SlurmArrayLauncher(spec, cluster=cluster, parallelism=args.parallelism)


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: expected a number of seeds >= 1")
    if args.measure_batch < 1 or args.measure_steps < 1:
        raise ConfigError("--measure-batch and --measure-steps must be >= 1")
    points, out, synthetic = plan(args)
    launcher = launcher_of(args, out)
    print(f"[sweep] {len(points)} point(s) in {out}:")
    for p in points:
        extra = " ".join(f"{k}={v}" for k, v in {**p.axes, **p.rules}.items())
        print(f"    {p.name:<28} {p.label:<12} {os.path.relpath(p.cfg_file)} {extra}")
    if args.dry_run:
        if launcher is not None:
            print(launcher.dry_run_text(len(points)))
        return 0
    if not args.report_only:
        runner.check_resumable(points, out)
        _ensure_synthetic(points, synthetic)
        check_data(points)
        steps = runner.Steps(measure=runner.measure_step(batch_cap=args.measure_batch, steps=args.measure_steps))
        runner.run_sweep(points, out, launcher=launcher, steps=steps, echo=not args.quiet)
    rows = report(points, out, additive=bool(args.configs))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
