#!/usr/bin/env python
"""Parameters, GFLOPs and measured training-step latency / peak memory of registry models.

    python tools/model_stats.py --models resnet3d_rs50 slow_r50 --frames 32 --res 224
    python tools/model_stats.py --all --frames 32 --res 224 --json stats.json

GFLOPs are fvcore's count (one fused multiply-add = one FLOP, the convention of PySlowFast and
PyTorchVideo's model zoos) for one clip at inference. Latency is the median wall time of a full
training step (forward, backward, SGD update) at ``--batch`` on the current device; peak memory is
``torch.cuda.max_memory_allocated`` on a GPU and, on a CPU, the growth of the process's peak resident
memory during the step (each model runs in its own subprocess so the figures do not mix).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time

import torch

import rs3d


def count_gflops(name: str, frames: int, res: int) -> float:
    from fvcore.nn import FlopCountAnalysis

    model = rs3d.create_model(name, num_classes=400).eval()
    clip = torch.zeros(1, 3, frames, res, res)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, clip)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total() / 1e9


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_train_step(name: str, frames: int, res: int, batch: int, device: str, steps: int,
                       channels_last: bool) -> dict:
    """Median training-step time and peak memory, in this process."""
    torch.manual_seed(0)
    dev = torch.device(device)
    model = rs3d.create_model(name, num_classes=400).to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    clip = torch.randn(batch, 3, frames, res, res, device=dev)
    if channels_last:
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    label = torch.randint(0, 400, (batch,), device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(clip), label).backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    rss_before = _rss_bytes()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up (allocator, cuDNN algorithm choice, optimizer state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return {"train_step_s": statistics.median(times), "peak_mem_gib": peak / 2**30}


def _child(queue, kwargs) -> None:
    try:
        queue.put(measure_train_step(**kwargs))
    except Exception as e:  # out of memory and the like: reported in the table, not fatal
        queue.put({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"})


def stats_row(name: str, frames: int, res: int, batch: int, device: str, steps: int, measure: bool,
              channels_last: bool) -> dict:
    model = rs3d.create_model(name, num_classes=400)
    row = {"model": name, "frames": frames, "res": res, "batch": batch, "device": device,
           "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
           "gflops": count_gflops(name, frames, res)}
    del model
    if measure:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(queue, dict(name=name, frames=frames, res=res, batch=batch,
                                                             device=device, steps=steps,
                                                             channels_last=channels_last)))
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
        lines.append(f"| {r['model']} | {r['frames']}x{r['res']} | {r['params_m']:.2f} | {r['gflops']:.1f} "
                     f"| {step} | {mem} |")
    return "\n".join(lines)


def main(argv=None) -> int:
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
        names = [f"resnet3d_rs{d}" for d in (50, 101, 152, 200, 270, 350, 420)] + \
                ["resnet3d_rs50_paper", "r3d50", "slow_r50"]
    unknown = [n for n in names if n not in rs3d.list_models()]
    if unknown:
        print(f"error: unknown model(s) {unknown}; available: {', '.join(rs3d.list_models())}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        for frames in args.frames:
            for res in args.res:
                rows.append(stats_row(name, frames, res, args.batch, args.device, args.steps,
                                      not args.no_measure, args.channels_last))
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
