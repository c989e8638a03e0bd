"""Speed and memory benchmarks of rs3d against its peers, each printing a table and writing JSON.

Run from the repository root (``benchmarks/`` is a folder of the checkout, not installed)::

    python -m benchmarks model --models slow_r50 resnet3d_rs50 --frames 8 --res 112 --batch 2 \\
        --variants base cl bf16 --json model.json       # rs3d slow_r50 vs PyTorchVideo slow_r50 added
    python -m benchmarks optim --model resnet3d_rs50 --json optim.json   # SGD for-loop/foreach/fused
    python -m benchmarks e2e --dataset kinetics-like --model resnet3d_rs50 --width 0.25 --json e2e.json
    python -m benchmarks data --json data.json      # loader benchmark + decord/PyAV/torchcodec
    python -m benchmarks loader --videos 12 --workers 2 --json loader.json   # the loader benchmark alone
    python -m benchmarks worker-split --num-videos 4 --rounds 6              # decode vs augmentation per clip
    python -m benchmarks clips --json clips.json    # training clips per CPU core, every lever
    python -m benchmarks manifest --videos 200 --json manifest.json   # rs3d-manifest videos per CPU-s
    python -m benchmarks estimate --mfu 0.4 --peak-tflops 989 --clips-json clips.json

Every speed comparison is measured in one run, contenders interleaved (A, B, A, B, ...), medians
reported. Absolute numbers come with the device, versions and date in the JSON. FLOP convention:
fvcore GFLOPs count a multiply-add as one; achieved TFLOP/s multiply by 2 (multiply and add) and
by 3 (forward + backward).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from rs3d.cli import error_line, run_tool
from rs3d.data import decode as D
from rs3d.errors import ConfigError, DataError

from . import loader as loader_benchmark
from . import manifest as manifest_benchmark
from . import measure, train_clips
from .decoders import BACKENDS, run_compare_in_child
from .e2e import run_e2e
from .models import PTV_PREFIX, bench_point, parse_variant, ratios, sgd_step_times
from .videos import make_kinetics_like_videos, write_csv
from .worker_split import measure as measure_worker_split

DEFAULT_CACHE = os.path.join(tempfile.gettempdir(), "rs3d_benchmark_cache")
K400_TRAIN_VIDEOS = 215_570


def table(rows: Sequence[dict], cols: Sequence[tuple]) -> str:
    """Markdown table; ``cols`` = (header, key or function of the row, format)."""
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for _, key, fmt in cols:
            v = key(r) if callable(key) else r.get(key)
            cells.append("-" if v is None else (fmt.format(v) if fmt else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_json(path: Optional[str], payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"\nwrote {path}")


def _device(arg: str) -> torch.device:
    return torch.device(arg or ("cuda" if torch.cuda.is_available() else "cpu"))


def _header(env: dict, command: str) -> str:
    load = env.get("load_avg_1min")
    return (
        f"{env['device']}; {', '.join(f'{k} {v}' for k, v in env['versions'].items())}; "
        f"{env['date_utc']}; 1-min load average {load:.1f} on {env['cpu_count']} cores\n"
        f"command: {command}\n"
    )


def _command(argv: Optional[Sequence[str]]) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return "python -m benchmarks " + " ".join(args)


# ----------------------------------------------------------------------------- model
def cmd_model(args) -> int:
    import rs3d

    dev = _device(args.device)
    names = list(args.models)
    unknown = [n for n in names if not n.startswith(PTV_PREFIX) and n not in rs3d.list_models()]
    if unknown:
        raise ConfigError(f"--models: unknown model(s) {unknown}; available: {', '.join(rs3d.list_models())}")
    try:
        for v in args.variants:
            parse_variant(v)
    except ValueError as e:
        raise ConfigError(f"--variants: {e}") from e
    # The peer must do the same arithmetic: no PyTorchVideo row when rs3d models are narrowed.
    if "slow_r50" in names and not args.no_ptv and not args.width and PTV_PREFIX + "slow_r50" not in names:
        names.append(PTV_PREFIX + "slow_r50")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    overrides = {"width_multiplier": args.width} if args.width else {}
    peak = measure.peak_tflops(dev, args.peak_tflops)
    env = measure.environment(dev, ("pytorchvideo", "fvcore"))
    cache = {}  # GFLOPs per (model, frames, res, overrides), counted once for all variants and batches
    rows: List[dict] = []
    cols = [
        ("model", "model", None),
        ("variant", "variant", None),
        ("frames x res", lambda r: f"{r['frames']}x{r['res']}", None),
        ("batch", "batch", None),
        ("params (M)", "params_m", "{:.2f}"),
        ("GFLOPs/clip", "gflops", "{:.2f}"),
        ("train step (s)", "train_step_s", "{:.3f}"),
        ("train clips/s", "train_clips_s", "{:.2f}"),
        ("infer clips/s", "infer_clips_s", "{:.2f}"),
        ("train peak mem (GiB)", "train_peak_mem_gib", "{:.2f}"),
        ("infer peak mem (GiB)", "infer_peak_mem_gib", "{:.2f}"),
        ("achieved TFLOP/s", "train_tflops", "{:.3f}"),
        ("MFU", "mfu", "{:.1%}"),
        ("warm-up (s)", "warmup_s", "{:.1f}"),
        ("error", "error", None),
    ]
    print(_header(env, _command(args.argv)))
    print(table([], cols))
    for frames in args.frames:
        for res in args.res:
            for batch in args.batch:
                point = bench_point(
                    names,
                    args.variants,
                    frames,
                    res,
                    batch,
                    dev,
                    args.rounds,
                    args.warmup,
                    overrides,
                    peak,
                    not args.no_inference,
                    cache,
                )
                rows.extend(point)
                print("\n".join(table(point, cols).splitlines()[2:]), flush=True)
    rat = ratios(rows)
    rcols = [
        ("comparison", "what", None),
        ("frames x res", lambda r: f"{r['frames']}x{r['res']}", None),
        ("batch", "batch", None),
        ("train step ratio", "train_step_ratio", "{:.3f}"),
        (
            "per-round range",
            lambda r: (
                r.get("train_step_ratio_rounds")
                and f"{min(r['train_step_ratio_rounds']):.2f}-{max(r['train_step_ratio_rounds']):.2f}"
            ),
            None,
        ),
        ("inference ratio", "infer_step_ratio", "{:.3f}"),
        ("train memory ratio", "train_mem_ratio", "{:.3f}"),
    ]
    print(f"\nRatios (< 1 = faster / lighter; medians of {args.rounds} interleaved rounds)\n")
    print(table(rat, rcols))
    if peak is None:
        print("\nMFU: no peak known for this device (pass --peak-tflops)")
    _write_json(
        args.json,
        {
            "benchmark": "model",
            "command": _command(args.argv),
            **env,
            "flop_convention": "fvcore multiply-adds per clip; TFLOP/s = GFLOPs x 2 x 3 (fwd+bwd) x clips/s",
            "peak_tflops": peak,
            "rounds": args.rounds,
            "rows": rows,
            "ratios": rat,
        },
    )
    return 0


# ----------------------------------------------------------------------------- optim
def cmd_optim(args) -> int:

    dev = _device(args.device)
    env = measure.environment(dev)
    print(_header(env, _command(args.argv)))
    result = sgd_step_times(args.model, dev, args.rounds)
    print(
        table(
            result["rows"],
            [
                ("SGD implementation", "mode", None),
                ("model", "model", None),
                ("params (M)", "params_m", "{:.1f}"),
                ("tensors", "num_tensors", None),
                ("step (ms)", lambda r: r.get("step_s") and r["step_s"] * 1e3, "{:.1f}"),
                ("ratio vs for-loop", "ratio_vs_for_loop", "{:.3f}"),
                ("error", "error", None),
            ],
        )
    )
    _write_json(args.json, {"benchmark": "optim", "command": _command(args.argv), **env, **result})
    return 0


# ----------------------------------------------------------------------------- e2e
def _kinetics_like_dir(cache: str, num_videos: int, num_classes: int = 4) -> str:

    paths = make_kinetics_like_videos(os.path.join(cache, "kinetics_like"), num_videos)
    d = os.path.join(cache, f"kinetics_like_set_{num_videos}")
    os.makedirs(d, exist_ok=True)
    for split in ("train", "val"):
        write_csv(paths, os.path.join(d, f"{split}.csv"), num_classes)
    Path(d, "classes.txt").write_text("".join(f"class_{i}\n" for i in range(num_classes)))
    return d


def _synthetic_dir(cache: str, per_class: int) -> str:
    from rs3d.data.synthetic import make_synthetic_dataset

    d = os.path.join(cache, f"synthetic_{per_class}")
    if not os.path.exists(os.path.join(d, "classes.txt")):
        make_synthetic_dataset(d, num_classes=8, train_per_class=per_class, val_per_class=1, test_per_class=1)
    return d


def cmd_e2e(args) -> int:
    from rs3d.data import read_classes

    dev = _device(args.device)
    if args.dataset == "synthetic":
        data_dir = _synthetic_dir(args.cache_dir, args.videos_per_class)
    elif args.dataset == "kinetics-like":
        data_dir = _kinetics_like_dir(args.cache_dir, args.num_videos)
    else:
        data_dir = args.dataset
        if not os.path.isfile(os.path.join(data_dir, "train.csv")):
            raise DataError(f"--dataset {data_dir}: no train.csv there (or use 'synthetic' / 'kinetics-like')")
    classes = read_classes(data_dir)
    keys = {
        "DEVICE": dev.type,
        "DATA.PATH_TO_DATA_DIR": data_dir,
        "MODEL.ARCH": args.model,
        "MODEL.NUM_CLASSES": len(classes) if classes else 400,
        **({"MODEL.WIDTH_MULTIPLIER": args.width} if args.width else {}),
        "DATA.NUM_FRAMES": args.frames,
        "DATA.SAMPLING_RATE": args.stride,
        "DATA.TRAIN_CROP_SIZE": args.crop,
        "DATA_LOADER.NUM_WORKERS": args.workers,
        "DATA_LOADER.PERSISTENT_WORKERS": args.workers > 0,
        "DATA.DECODING_BACKEND": args.backend,
        "TRAIN.BATCH_SIZE": args.batch,
        "TRAIN.AMP_DTYPE": args.amp,
        "TRAIN.CHANNELS_LAST": args.channels_last,
    }
    cfg = measure.rs3d_config(keys, args.opts)
    env = measure.environment(dev, ("decord", "av"))
    print(_header(env, _command(args.argv)))
    res = run_e2e(cfg, args.steps, sync=not args.no_sync)
    cols = [
        ("model", lambda r: args.model + (f" (width {args.width})" if args.width else ""), None),
        ("data", lambda r: args.dataset if args.dataset in ("synthetic", "kinetics-like") else "dir", None),
        ("clip", lambda r: f"{args.frames}x{args.stride} @ {args.crop}", None),
        ("batch", "batch", None),
        ("workers", lambda r: args.workers, None),
        ("iters", "iterations", None),
        ("first batch (s)", "first_batch_wait_s", "{:.2f}"),
        ("data wait (s/iter)", "median_data_wait_s", "{:.3f}"),
        ("compute (s/iter)", "median_compute_s", "{:.3f}"),
        ("wait share", "data_wait_fraction", "{:.0%}"),
        ("clips/s", "clips_s", "{:.2f}"),
        ("compute-only clips/s", "compute_only_clips_s", "{:.2f}"),
        ("limited by", "limited_by", None),
    ]
    print(table([res], cols))
    _write_json(
        args.json,
        {
            "benchmark": "e2e",
            "command": _command(args.argv),
            **env,
            "config": {
                "model": args.model,
                "width": args.width,
                "dataset": args.dataset,
                "frames": args.frames,
                "stride": args.stride,
                "crop": args.crop,
                "batch": args.batch,
                "workers": args.workers,
                "backend": args.backend,
                "amp": args.amp,
                "channels_last": args.channels_last,
            },
            "result": res,
        },
    )
    return 0


# ----------------------------------------------------------------------------- data
LOADER_DEFAULT_ARGS = ["--videos", "8", "--rss-reads", "0"]


def _loader_benchmark(args) -> tuple:
    """(result, printable table) of the loader benchmark (``benchmarks/loader.py``) on ``--loader-args``."""
    argv = list(args.loader_args) if args.loader_args else list(LOADER_DEFAULT_ARGS)
    try:
        largs = loader_benchmark.parse_args(argv)
    except SystemExit as e:
        raise ConfigError(f"--loader-args {argv}: rejected by the loader benchmark (exit {e.code})") from e
    res = loader_benchmark.run(largs)
    res["argv"] = argv
    return res, loader_benchmark.format_table(res)


def cmd_loader(args) -> int:
    """The loader benchmark alone: rs3d vs PyTorchVideo vs the full-decode floor."""
    try:
        res = loader_benchmark.run(args)
    except (OSError, ValueError, RuntimeError) as e:  # a missing file, a video that will not decode
        raise DataError(error_line(e)) from e
    print(loader_benchmark.format_table(res))
    _write_json(args.json, res)
    return 0


def cmd_worker_split(args) -> int:
    """Where a loader worker's CPU time goes for one training clip: decoding vs crop+resize+flip."""
    if args.rounds < 2:
        raise ConfigError("--rounds must be at least 2 (the first is warm-up)")
    paths = make_kinetics_like_videos(os.path.join(args.cache_dir, "kinetics_like"), args.num_videos)
    res = measure_worker_split(paths, args.rounds, backend=args.backend)
    print(
        f"{res['clips']} clips of 32x2 at 224 from 256x340 files, 1 thread: decode {res['decode_ms']} ms, "
        f"crop+resize+flip {res['augment_ms']} ms per clip ({100 * res['augment_share']:.1f}% of the "
        f"worker's time); workers that only decoded would serve {res['decode_only_speedup']}x the clips"
    )
    _write_json(args.json, res)
    return 0


def cmd_data(args) -> int:
    dev = torch.device("cpu")
    env = measure.environment(dev, ("decord", "av", "torchcodec"))
    print(_header(env, _command(args.argv)))
    loader, text = _loader_benchmark(args) if not args.no_loader else ({"skipped": "--no-loader"}, "")
    print(
        "loader benchmark (python -m benchmarks loader "
        f"{' '.join(loader.get('argv', []))}):\n{text or json.dumps(loader)}\n"
    )
    missing = [p for p in args.videos if not os.path.isfile(p)]
    if missing:
        raise DataError(f"--videos: no such file {missing[0]}")
    paths = list(args.videos) or make_kinetics_like_videos(
        os.path.join(args.cache_dir, "kinetics_like"),
        args.num_videos,
        height=args.height,
        width=args.width,
        seconds=args.seconds,
        gop=args.gop,
    )
    dec = run_compare_in_child(paths, args.backends or list(BACKENDS), args.rounds)
    print(
        f"decoders, single-threaded, {len(paths)} videos"
        + (f" ({args.height}x{args.width}, {args.seconds:g} s, keyframe every {args.gop})" if not args.videos else "")
        + f", median of {args.rounds} interleaved rounds"
    )
    if dec.get("torchcodec_note"):
        print(f"torchcodec: {dec['torchcodec_note']}")
    print(
        table(
            sorted(dec["rows"], key=lambda r: (r["workload"], r["backend"])),
            [
                ("backend", "backend", None),
                ("workload", "workload", None),
                ("frames/s (wall)", "frames_s", "{:.0f}"),
                ("frames per CPU-s", "frames_per_cpu_s", "{:.0f}"),
                ("32x2 clips per CPU-s", "clips_per_cpu_s", "{:.2f}"),
                ("per CPU-s vs decord", "cpu_speed_vs_decord", "{:.2f}"),
                ("mean |diff| vs PyAV", "mean_abs_diff_vs_pyav", "{:.2f}"),
                ("error", "error", None),
            ],
        )
    )
    _write_json(
        args.json,
        {
            "benchmark": "data",
            "command": _command(args.argv),
            **env,
            "videos": paths,
            "loader": loader,
            "decoders": dec,
        },
    )
    return 0


# ----------------------------------------------------------------------------- clips
def cmd_clips(args) -> int:

    env = measure.environment(torch.device("cpu"), ("decord", "av", "pytorchvideo"))
    print(_header(env, _command(args.argv)))
    paths = train_clips.default_paths()
    if args.paths:
        wanted = set(args.paths)
        unknown = wanted - {p.name for p in paths}
        if unknown:
            raise ConfigError(f"--paths: unknown {sorted(unknown)}; known: {[p.name for p in paths]}")
        paths = [p for i, p in enumerate(paths) if i == 0 or p.name in wanted]  # the default stays first
    res = train_clips.run(
        args.cache_dir,
        num_kinetics=args.num_kinetics,
        footage=not args.no_footage,
        videos=args.videos,
        rounds=args.rounds,
        batch=args.batch,
        workers=args.workers,
        rss_reads=args.rss_reads,
        exact_items=args.exact_items,
        paths=paths,
        gpu_clips_s=args.gpu_clips_s,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(train_clips.format_tables(res))
    _write_json(args.json, {"benchmark": "clips", "command": _command(args.argv), **env, **res})
    return 0


# ----------------------------------------------------------------------------- manifest
def cmd_manifest(args) -> int:
    env = measure.environment(torch.device("cpu"), ("av",))
    print(_header(env, _command(args.argv)))
    res = manifest_benchmark.run(
        args.cache_dir, num_videos=args.videos, rounds=args.rounds, build_rounds=args.build_rounds
    )
    print(
        f"{res['videos']} Kinetics-named videos ({res['distinct_files']} distinct 256x340 10 s H.264 files, "
        f"{res['mean_file_mb']:.2f} MB each on average, page cache warm), one thread, median of "
        f"{res['rounds']} interleaved rounds"
    )
    print(manifest_benchmark.format_table(res))
    _write_json(args.json, {"benchmark": "manifest", "command": _command(args.argv), **env, **res})
    return 0


# ----------------------------------------------------------------------------- estimate
def estimate(gflops_per_clip: float, clips: int, epochs: int, mfu: float, peak_tflops: float) -> dict:
    """GPU-hours from FLOPs: clips x epochs x GFLOPs x 2 x 3 / (MFU x peak)."""
    total_flop = gflops_per_clip * 1e9 * 2 * 3 * clips * epochs
    per_gpu_clips_s = mfu * peak_tflops * 1e12 / (gflops_per_clip * 1e9 * 2 * 3)
    return {
        "total_pflop": total_flop / 1e15,
        "clips_per_s_per_gpu": per_gpu_clips_s,
        "gpu_hours": total_flop / (mfu * peak_tflops * 1e12) / 3600,
    }


def cmd_estimate(args) -> int:
    import rs3d
    from rs3d.models.stats import count_flops

    gflops = args.gflops or count_flops(rs3d.create_model(args.model, num_classes=400), args.frames, args.res)
    est = estimate(gflops, args.videos, args.epochs, args.mfu, args.peak_tflops)
    out = {
        "benchmark": "estimate",
        "command": _command(args.argv),
        "model": args.model,
        "frames": args.frames,
        "res": args.res,
        "gflops_per_clip": gflops,
        "videos": args.videos,
        "epochs": args.epochs,
        "mfu_assumed": args.mfu,
        "peak_tflops": args.peak_tflops,
        **est,
        "note": "an estimate from FLOPs and an assumed MFU, not a measurement",
    }
    print(f"{args.model} {args.frames}x{args.res}: {gflops:.1f} GFLOPs/clip (fvcore multiply-adds)")
    print(f"{args.videos} clips x {args.epochs} epochs x {gflops:.1f} GFLOPs x 2 x 3 = {est['total_pflop']:.0f} PFLOP")
    print(
        f"at MFU {args.mfu:.0%} of {args.peak_tflops:g} TFLOP/s: {est['clips_per_s_per_gpu']:.0f} clips/s per GPU, "
        f"{est['gpu_hours']:.0f} GPU-hours (ESTIMATE, not measured)"
    )
    if args.decode_json:
        with open(args.decode_json) as f:
            dec = json.load(f)["decoders"]["rows"]
        best = {}
        for r in dec:
            if r.get("workload") == "clip" and r.get("clips_per_cpu_s"):
                best[r["backend"]] = r["clips_per_cpu_s"]
        out["decode_clips_per_cpu_s"] = best
        print(f"decoded 32x2 clips needed per GPU: {est['clips_per_s_per_gpu']:.0f}/s")
        for b, c in sorted(best.items(), key=lambda kv: -kv[1]):
            cores = est["clips_per_s_per_gpu"] / c
            out.setdefault("cores_needed_per_gpu", {})[b] = cores
            print(f"  {b}: {c:.2f} clips per CPU-second -> {cores:.0f} cores per GPU for decoding alone")
    if args.clips_json:
        with open(args.clips_json) as f:
            rows = [r for r in json.load(f)["rows"] if r.get("clips_per_cpu_s")]
        print(f"training clips (whole loader path) needed per GPU: {est['clips_per_s_per_gpu']:.0f}/s")
        for r in rows:
            cores = est["clips_per_s_per_gpu"] / r["clips_per_cpu_s"]
            out.setdefault("loader_cores_per_gpu", {})[r["path"]] = cores
            print(f"  {r['path']}: {r['clips_per_cpu_s']:.2f} clips per CPU-second -> {cores:.1f} cores per GPU")
    _write_json(args.json, out)
    return 0


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("model", help="train/inference throughput, peak memory, TFLOP/s, vs PyTorchVideo")
    m.add_argument("--models", nargs="+", default=["slow_r50", "resnet3d_rs50"])
    m.add_argument("--no-ptv", action="store_true", help="do not add PyTorchVideo's slow_r50 next to slow_r50")
    m.add_argument("--frames", nargs="+", type=int, default=[8])
    m.add_argument("--res", nargs="+", type=int, default=[112])
    m.add_argument("--batch", nargs="+", type=int, default=[2])
    m.add_argument(
        "--variants",
        nargs="+",
        default=["base", "cl"],
        help="'base' or '+'-joined flags from cl, bf16, compile (e.g. cl+bf16)",
    )
    m.add_argument("--width", type=float, default=None, help="width multiplier for rs3d models (small tests)")
    m.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (median reported)")
    m.add_argument("--warmup", type=int, default=1, help="untimed steps first (+1 with compile)")
    m.add_argument("--no-inference", action="store_true")
    m.add_argument("--no-cudnn-benchmark", action="store_true")
    m.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: table)")
    m.set_defaults(fn=cmd_model)

    o = sub.add_parser("optim", help="SGD step time: for-loop vs foreach vs fused")
    o.add_argument("--model", default="resnet3d_rs50")
    o.add_argument("--rounds", type=int, default=7)
    o.set_defaults(fn=cmd_optim)

    e = sub.add_parser("e2e", help="the real training loop: data wait vs compute per iteration")
    e.add_argument("--dataset", default="synthetic", help="'synthetic', 'kinetics-like' or a data dir")
    e.add_argument("--videos-per-class", type=int, default=4, help="synthetic set size (8 classes)")
    e.add_argument("--num-videos", type=int, default=8, help="kinetics-like set size")
    e.add_argument("--model", default="resnet3d_rs50")
    e.add_argument("--width", type=float, default=None)
    e.add_argument("--frames", type=int, default=8)
    e.add_argument("--stride", type=int, default=2)
    e.add_argument("--crop", type=int, default=112)
    e.add_argument("--batch", type=int, default=2)
    e.add_argument("--workers", type=int, default=2)
    e.add_argument("--backend", default="decord", choices=["decord", "pyav", "torchcodec"])
    e.add_argument("--steps", type=int, default=6)
    e.add_argument("--amp", default="float32", choices=["float32", "bfloat16", "float16"])
    e.add_argument("--channels-last", action="store_true")
    e.add_argument("--no-sync", action="store_true", help="(GPU) do not synchronise before timing")
    e.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config KEY VALUE overrides")
    e.set_defaults(fn=cmd_e2e)

    d = sub.add_parser("data", help="loader benchmark and decoder comparison")
    d.add_argument("--videos", nargs="*", default=[], help="files to decode (default: Kinetics-like videos)")
    d.add_argument("--num-videos", type=int, default=4)
    d.add_argument("--height", type=int, default=256)
    d.add_argument("--width", type=int, default=340)
    d.add_argument("--seconds", type=float, default=10.0)
    d.add_argument("--gop", type=int, default=250, help="keyframe interval of the generated videos")
    d.add_argument("--backends", nargs="+", default=None)
    d.add_argument("--rounds", type=int, default=3)
    d.add_argument("--no-loader", action="store_true", help="skip the loader benchmark")
    d.add_argument(
        "--loader-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="arguments of the loader benchmark (`loader --help`; last on the line; default: "
        + " ".join(LOADER_DEFAULT_ARGS)
        + ")",
    )
    d.set_defaults(fn=cmd_data)

    mf = sub.add_parser(
        "manifest",
        help="rs3d-manifest build: videos per CPU-second vs a plain probe and "
        "whole-file hashing; the 250k-video projection (benchmarks/manifest.py)",
    )
    mf.add_argument("--videos", type=int, default=200, help="videos listed (links to 4 distinct files)")
    mf.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the per-video contenders")
    mf.add_argument("--build-rounds", type=int, default=3, help="whole builds timed (median reported)")
    mf.set_defaults(fn=cmd_manifest)

    c = sub.add_parser(
        "clips",
        help="training clips per CPU core: the default loader path, each lever, the "
        "best combination, PyTorchVideo's decord loader (benchmarks/train_clips.py)",
    )
    c.add_argument("--num-kinetics", type=int, default=4, help="distinct Kinetics-like files (30/25/30/24 fps)")
    c.add_argument("--no-footage", action="store_true", help="leave out bikes.mp4 (camera footage)")
    c.add_argument(
        "--videos",
        type=int,
        default=40,
        help="videos per pass (the files cycled; with few, fixed costs dominate a pass)",
    )
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--batch", type=int, default=8, help="TRAIN.BATCH_SIZE (clips)")
    c.add_argument("--workers", type=int, default=1)
    c.add_argument("--rss-reads", type=int, default=2000, help="videos read per new path (0 = skip)")
    c.add_argument("--exact-items", type=int, default=3, help="items per path checked against a sequential decode")
    c.add_argument("--gpu-clips-s", type=float, default=746.0, help="clips/s one GPU trains (section 7)")
    c.add_argument("--paths", nargs="+", default=None, help="measure only these (by name; the default path stays)")
    c.set_defaults(fn=cmd_clips)

    s = sub.add_parser("estimate", help="GPU-hours for a full run from FLOPs and an assumed MFU")
    s.add_argument("--model", default="resnet3d_rs50")
    s.add_argument("--frames", type=int, default=32)
    s.add_argument("--res", type=int, default=224)
    s.add_argument("--gflops", type=float, default=None, help="skip the fvcore count")
    s.add_argument("--videos", type=int, default=K400_TRAIN_VIDEOS)
    s.add_argument("--epochs", type=int, default=350)
    s.add_argument("--mfu", type=float, default=0.4)
    s.add_argument("--peak-tflops", type=float, default=989.0)
    s.add_argument("--decode-json", help="a 'data' JSON: decoded clips per CPU-second per backend")
    s.add_argument("--clips-json", help="a 'clips' JSON: training clips per CPU-second of each loader path")
    s.set_defaults(fn=cmd_estimate)

    ld = sub.add_parser("loader", help="data-loader throughput: rs3d vs PyTorchVideo vs the full-decode floor")
    loader_benchmark.add_arguments(ld)
    ld.set_defaults(fn=cmd_loader)

    w = sub.add_parser("worker-split", help="a loader worker's CPU time per clip: decoding vs augmentation")
    w.add_argument("--num-videos", type=int, default=4)
    w.add_argument("--rounds", type=int, default=6, help="passes over the videos; the first is warm-up")
    w.add_argument("--backend", default="decord", choices=list(D.BACKENDS))
    w.set_defaults(fn=cmd_worker_split)

    for sp in (m, o, e, d, c, mf, s, w):
        sp.add_argument("--json", help="write the results here")
        if sp not in (s, d, c, mf):
            sp.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda if available)")
            sp.add_argument(
                "--threads",
                type=int,
                default=0,
                help="torch CPU threads (0 = torch's default); on a CPU shared with other "
                "jobs, 1 avoids OpenMP threads spinning against each other",
            )
        if sp in (e, d, c, mf, w):
            sp.add_argument("--cache-dir", default=DEFAULT_CACHE, help="generated videos are kept here")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one sub-command; bad input is one ``error:`` line and exit status 2."""
    return run_tool(_main, argv)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    threads = torch.get_num_threads()
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    try:
        return args.fn(args)
    finally:
        torch.set_num_threads(threads)  # main() may be called in-process (tests, notebooks)


if __name__ == "__main__":
    sys.exit(main())
