#!/usr/bin/env python
"""Parameters, GFLOPs and measured training-step latency / peak memory of registry models.

    python tools/model_stats.py --models resnet3d_rs50 slow_r50 --frames 32 --res 224
    python tools/model_stats.py --all --frames 32 --res 224 --json stats.json

Every figure comes from :mod:`rs3d.models.stats`: GFLOPs are fvcore's count (one fused multiply-add =
one FLOP, the convention of PySlowFast and PyTorchVideo's model zoos) for one clip at inference.
Latency is the median wall time of a full training step (forward, backward, SGD update) at
``--batch`` on ``--device``; peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and, on a
CPU, the growth of the process's peak resident memory during the steps (each model is measured in
its own subprocess so the figures do not mix). The device is printed under the table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys

import torch

import rs3d
from rs3d.cli import run_tool
from rs3d.errors import ConfigError
from rs3d.models.stats import count_flops, count_parameters, measure_train_step


def train_step_stats(
    name: str, frames: int, res: int, batch: int, device: str, steps: int, channels_last: bool
) -> dict:
    """Median training-step time and peak memory of a fresh ``name`` (seed 0), in this process."""
    torch.manual_seed(0)
    model = rs3d.create_model(name, num_classes=400)
    seconds, peak = measure_train_step(model, batch, frames, res, steps, device, channels_last=channels_last)
    return {"train_step_s": seconds, "peak_mem_gib": peak / 2**30}


def _child(queue, kwargs) -> None:
    try:
        queue.put(train_step_stats(**kwargs))
    except Exception as e:  # out of memory and the like: reported in the table, not fatal
        queue.put({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"})


def stats_row(
    name: str, frames: int, res: int, batch: int, device: str, steps: int, measure: bool, channels_last: bool
) -> dict:
    model = rs3d.create_model(name, num_classes=400)
    row = {
        "model": name,
        "frames": frames,
        "res": res,
        "batch": batch,
        "device": device,
        "params_m": count_parameters(model) / 1e6,
        "gflops": count_flops(model, frames, res),
    }
    del model
    if measure:  # in a fresh process, so one model's memory does not mix into the next one's figure
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(
            target=_child,
            args=(
                queue,
                dict(
                    name=name,
                    frames=frames,
                    res=res,
                    batch=batch,
                    device=device,
                    steps=steps,
                    channels_last=channels_last,
                ),
            ),
        )
        proc.start()
        proc.join()
        row.update(queue.get() if not queue.empty() else {"error": f"child exited with {proc.exitcode}"})
    return row


def format_table(rows: list) -> str:
    head = "| model | frames x res | params (M) | GFLOPs | train step (s/batch) | peak mem (GiB) |"
    lines = [head, "|---|---|---|---|---|---|"]
    for r in rows:
        step = f"{r['train_step_s']:.3f}" if "train_step_s" in r else r.get("error", "-")
        mem = f"{r['peak_mem_gib']:.2f}" if "peak_mem_gib" in r else "-"
        lines.append(
            f"| {r['model']} | {r['frames']}x{r['res']} | {r['params_m']:.2f} | {r['gflops']:.1f} | {step} | {mem} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print (and with --json, write) the table; an unknown model is one ``error:`` line, exit 2."""
    return run_tool(_main, argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet3d_rs50"])
    p.add_argument("--all", action="store_true", help="the zoo: RS-50..420, the paper variant, R3D-50, slow_r50")
    p.add_argument("--frames", nargs="+", type=int, default=[32])
    p.add_argument("--res", nargs="+", type=int, default=[224])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed training steps after one warm-up step")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--no-measure", action="store_true", help="parameters and GFLOPs only")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    names = args.models
    if args.all:
        names = [f"resnet3d_rs{d}" for d in (50, 101, 152, 200, 270, 350, 420)] + [
            "resnet3d_rs50_paper",
            "r3d50",
            "slow_r50",
        ]
    unknown = [n for n in names if n not in rs3d.list_models()]
    if unknown:
        raise ConfigError(f"--models: unknown model(s) {unknown}; available: {', '.join(rs3d.list_models())}")
    rows = []
    for name in names:
        for frames in args.frames:
            for res in args.res:
                rows.append(
                    stats_row(
                        name, frames, res, args.batch, args.device, args.steps, not args.no_measure, args.channels_last
                    )
                )
                print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"\n{device_name}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}\n")
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name, "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
