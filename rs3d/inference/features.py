"""Embeddings of videos from any layer, written to disk once per video, on one process or many.

Flow of :func:`extract`::

    videos (CSV or folder) --skip those already written--> todo (rank 0 decides, all ranks follow)
    rank r of W takes a contiguous slice of todo --> per video: the test's views, chunk by chunk
        --LayerTap(layer), pooled--> [clips, crops, C] --mean over views--> [C]
    written atomically: one .npy per video, or one array per shard of ``shard_size`` videos
    all ranks' records --> rank 0 writes index.csv (every video: its file or its error)

A video's embedding depends only on the video and the weights (its views are cut and batched
the same way whatever the world size), so 1 and N processes write the same files. Files are
renamed into place only when complete, so an interrupted run resumes where it stopped: a video
(or shard) whose file exists is not decoded again. A video that cannot be decoded is listed in
``index.csv`` with the reason and the others are still written.

Output folder::

    extract_info.json                  the settings; a resumed run must use the same ones
    index.csv                          index, path, label, file, shard, row, error
    features/<relative path>.npy       float32 [C]: the views' mean         (format "npy")
    features/<relative path>.clips.npy float32 [clips, crops, C]            (with per_clip)
    shards/features_00000.npy          float32 [n, C], one row per decoded video (format "sharded")
    shards/clips_00000.npy             float32 [n, clips, crops, C]          (with per_clip)
    shards/shard_00000.json            the shard's videos: index, path, label, row, error
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np
import torch

from rs3d.data import build_loader
from rs3d.data.loader import multiview_dataset
from rs3d.engine import distributed as du
from rs3d.engine.metrics import aggregate_views

from ..errors import ConfigError, DataError
from ..file_io import atomic_write, atomic_write_text
from .layers import DEFAULT_LAYER, LayerTap, pool
from .model import load_model
from .views import map_views

SCORES = "scores"  # the layer name of the test's class scores (ScoresTap)

logger = logging.getLogger(__name__)

FORMATS = ("npy", "sharded")
INFO_FILE = "extract_info.json"
INDEX_FILE = "index.csv"
# Settings that change what a file holds: a resumed run must agree on all of them.
_SETTINGS_THAT_MUST_MATCH = (
    "layer",
    "per_clip",
    "format",
    "shard_size",
    "num_clips",
    "num_crops",
    "num_frames",
    "sampling_rate",
    "crop_size",
    "checkpoint",
    "weights",
    "arch",
    "videos",
)


# ----------------------------------------------------------------------------- inputs
def output_name(path: str, root: str) -> str:
    """Where a video's files go under ``features/``: its path relative to ``root`` without the
    extension (the folder layout is kept, so two ``clip.mp4`` in different folders stay apart)."""
    p = os.path.normpath(os.path.abspath(path))
    r = os.path.normpath(os.path.abspath(root)) if root else ""
    rel = os.path.relpath(p, r) if r and (p + os.sep).startswith(r + os.sep) else p.lstrip(os.sep)
    return os.path.splitext(rel)[0]


def _list_digest(records) -> str:
    h = hashlib.sha1()
    for r in records:
        h.update(f"{r.path}\t{r.label}\n".encode())
    return f"{len(records)}:{h.hexdigest()[:16]}"


# ----------------------------------------------------------------------------- one video
@torch.inference_mode()
def view_features(
    tap: LayerTap,
    item: dict,
    mean: Sequence[float],
    std: Sequence[float],
    chunk_size: int,
    device: torch.device,
    amp_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Pooled features of a test item's views: float32 ``[clips, crops, C]`` on the CPU.

    The views are the test's (``rs3d.data.views_of``), cut ``chunk_size`` at a time on
    ``device`` exactly as ``rs3d.inference.views.video_scores`` cuts them for the logits.
    """
    feats = map_views(tap, item, mean, std, chunk_size, device, amp_dtype, pool)
    return feats.view(item["clip_frames"].shape[0], item["crop_corners"].shape[0], -1)


def video_embedding(per_view: torch.Tensor, method: str = "mean") -> np.ndarray:
    """``[clips, crops, C]`` -> float32 ``[C]``: the mean over all views (``method``: any
    ``TEST.ENSEMBLE_METHOD``, what the ``scores`` layer uses, as the test does)."""
    views = per_view.flatten(0, 1)
    if method == "mean":
        return views.mean(0).numpy().astype(np.float32)
    return aggregate_views(views.double(), method).numpy().astype(np.float32)


class ScoresTap:
    """The ``scores`` layer: the model's per-view class scores as the test computes them (softmax,
    or a sigmoid per class for a multi-label model), so a video's ``scores`` feature aggregated with
    ``TEST.ENSEMBLE_METHOD`` is its prediction."""

    def __init__(self, model: torch.nn.Module, activation: str = "softmax"):
        self.model, self.name, self.activation = model, SCORES, activation

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x).float()
        return y.sigmoid() if self.activation == "sigmoid" else y.softmax(dim=1)


# ----------------------------------------------------------------------------- files
def _save_npy(path: str, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a reader or a resumed run never sees half a file)."""
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array)))


def video_files(out_dir: str, name: str) -> tuple[str, str]:
    """(embedding file, per-clip file) of one video in format "npy"."""
    base = os.path.join(out_dir, "features", name)
    return base + ".npy", base + ".clips.npy"


def shard_files(out_dir: str, k: int) -> tuple[str, str, str]:
    """(features, clips, metadata) files of shard ``k`` in format "sharded"."""
    d = os.path.join(out_dir, "shards")
    return (
        os.path.join(d, f"features_{k:05d}.npy"),
        os.path.join(d, f"clips_{k:05d}.npy"),
        os.path.join(d, f"shard_{k:05d}.json"),
    )


def check_settings(out_dir: str, settings: dict) -> None:
    """Refuse to resume into a folder written with other settings (its files would mix)."""
    path = os.path.join(out_dir, INFO_FILE)
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable ({e}); delete it or use another output folder") from None
    for key in _SETTINGS_THAT_MUST_MATCH:
        if key == "videos" and settings.get("format") != "sharded":
            continue  # per-video files do not depend on the rest of the list
        if old.get(key) != settings.get(key):
            raise ConfigError(
                f"{out_dir} holds features with {key}={old.get(key)!r}, this run has "
                f"{settings.get(key)!r}; use the same settings to resume, or another output folder"
            )


# ----------------------------------------------------------------------------- the run
def extract(
    tap: LayerTap,
    records: Sequence,
    out_dir: str,
    items: Callable[[Sequence], Iterable[dict]],
    *,
    root: str = "",
    per_clip: bool = False,
    fmt: str = "npy",
    shard_size: int = 1000,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    chunk_size: int = 30,
    device: torch.device = torch.device("cpu"),
    amp_dtype: torch.dtype = torch.float32,
    settings: Optional[dict] = None,
    log_period: int = 10,
    combine: str = "mean",
) -> dict:
    """Write the embeddings of ``records`` (``VideoRecord`` list) under ``out_dir``; see the module doc.

    ``items(records)`` yields the test items (``rs3d.data.TestDataset``) of those records in order
    (a DataLoader over ``multiview_dataset``, or lists of items). Call on every rank of a process
    group (or without one). Returns, on every rank, ``{num_videos, computed, skipped, failed:
    [{path, reason}], index}`` (``index`` is the path of index.csv).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if shard_size < 1:
        raise ConfigError(f"shard size must be >= 1, got {shard_size}")
    rank, world = du.get_rank(), du.get_world_size()
    names = [output_name(r.path, root) for r in records]
    if fmt == "npy":
        seen = {}
        for r, n in zip(records, names):
            if n in seen:
                raise DataError(f"videos {seen[n]} and {r.path} would both be written to features/{n}.npy")
            seen[n] = r.path
    settings = dict(
        settings or {},
        layer=tap.name,
        per_clip=bool(per_clip),
        format=fmt,
        shard_size=shard_size if fmt == "sharded" else None,
        videos=_list_digest(records),
    )
    check_settings(out_dir, settings)

    # Rank 0 decides what is left to do; every rank follows it, so no video is done twice even if
    # another rank has already written a file while this one was looking.
    if fmt == "npy":
        units = [[i] for i in range(len(records)) if not os.path.isfile(video_files(out_dir, names[i])[0])]
    else:
        num_shards = (len(records) + shard_size - 1) // shard_size
        units = [
            list(range(k * shard_size, min((k + 1) * shard_size, len(records))))
            for k in range(num_shards)
            if not os.path.isfile(shard_files(out_dir, k)[2])
        ]
    units = du.all_gather_object(units)[0]
    if rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        atomic_write_text(os.path.join(out_dir, INFO_FILE), json.dumps(settings, indent=2) + "\n")
    mine = units[rank * len(units) // world : (rank + 1) * len(units) // world]
    todo = [i for unit in mine for i in unit]
    skipped = len(records) - sum(len(u) for u in units)
    if rank == 0:
        logger.info(
            "features of layer %s: %d videos, %d already written, %d to do on %d process(es)",
            tap.name,
            len(records),
            skipped,
            len(records) - skipped,
            world,
        )

    results: List[dict] = []
    shard: List[tuple] = []  # (global index, per-view features or None, error) of the open shard
    t0, done = time.perf_counter(), 0
    stream = _flatten(items([records[i] for i in todo]))
    for position, item in enumerate(stream):
        i = todo[position]
        rec = {"index": i, "path": records[i].path, "label": records[i].label, "error": str(item["error"])}
        feats = None
        if not rec["error"]:
            feats = view_features(tap, item, mean, std, chunk_size, device, amp_dtype)
            if fmt == "npy":
                emb_file, clip_file = video_files(out_dir, names[i])
                if per_clip:
                    _save_npy(clip_file, feats.numpy())
                _save_npy(emb_file, video_embedding(feats, combine))  # last: its presence marks the video done
        results.append(rec)
        if fmt == "sharded":
            shard.append((i, feats, rec["error"]))
            if i == min((i // shard_size + 1) * shard_size, len(records)) - 1:
                _write_shard(out_dir, i // shard_size, shard, records, per_clip, combine)
                shard = []
        done += 1
        if rank == 0 and log_period and (done % log_period == 0 or done == len(todo)):
            rate = done / max(time.perf_counter() - t0, 1e-9)
            logger.info(
                "rank 0: %d/%d videos (%d failed), %.2f videos/s, ETA %s",
                done,
                len(todo),
                sum(1 for r in results if r["error"]),
                rate,
                _eta((len(todo) - done) / rate),
            )
    if len(results) != len(todo):
        raise DataError(f"the loader gave {len(results)} videos for {len(todo)} asked for")

    gathered = du.all_gather_object(results)
    failed = sorted((r for rs in gathered for r in rs if r["error"]), key=lambda r: r["index"])
    index_path = os.path.join(out_dir, INDEX_FILE)
    if rank == 0:
        fresh = {r["index"]: r for rs in gathered for r in rs}
        rows = _index_rows(out_dir, records, names, fmt, shard_size, fresh)
        atomic_write_text(index_path, _csv(rows))
        failed = [r for r in rows if r["error"]]
    du.barrier()
    return {
        "num_videos": len(records),
        "computed": len(records) - skipped,
        "skipped": skipped,
        "failed": [{"path": r["path"], "reason": r["error"]} for r in failed],
        "index": index_path,
    }


def _flatten(stream: Iterable) -> Iterable[dict]:
    """Items from a test DataLoader (lists of items) or from a plain iterable of items."""
    for batch in stream:
        if isinstance(batch, dict):
            yield batch
        else:
            yield from batch


def _eta(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _write_shard(out_dir: str, k: int, shard: Sequence[tuple], records, per_clip: bool, combine: str = "mean") -> None:
    feats_file, clips_file, meta_file = shard_files(out_dir, k)
    ok = [f for _, f, err in shard if not err]
    dim = ok[0].shape[-1] if ok else 0
    if per_clip:
        _save_npy(clips_file, np.stack([f.numpy() for f in ok]) if ok else np.zeros((0, 0, 0, 0), np.float32))
    _save_npy(feats_file, np.stack([video_embedding(f, combine) for f in ok]) if ok else np.zeros((0, 0), np.float32))
    videos, row = [], 0
    for i, _clip, err in shard:
        videos.append(
            {"index": i, "path": records[i].path, "label": records[i].label, "row": None if err else row, "error": err}
        )
        row += 0 if err else 1
    meta = {"shard": k, "dim": int(dim), "videos": videos}
    atomic_write_text(meta_file, json.dumps(meta, indent=1) + "\n")  # last: marks the shard complete


def _index_rows(out_dir: str, records, names, fmt: str, shard_size: int, fresh: dict) -> List[dict]:
    """One row per video, in list order, from this run's records and the files already there."""
    rows = []
    if fmt == "sharded":
        for k in range(0, (len(records) + shard_size - 1) // shard_size):
            meta_file = shard_files(out_dir, k)[2]
            with open(meta_file, encoding="utf-8") as f:
                meta = json.load(f)
            for v in meta["videos"]:
                rows.append(
                    {
                        "index": v["index"],
                        "path": v["path"],
                        "label": v["label"],
                        "file": "",
                        "shard": k if v["row"] is not None else "",
                        "row": "" if v["row"] is None else v["row"],
                        "error": v["error"],
                    }
                )
        return rows
    for i, r in enumerate(records):
        emb_file = video_files(out_dir, names[i])[0]
        err = fresh[i]["error"] if i in fresh else ""
        rows.append(
            {
                "index": i,
                "path": r.path,
                "label": r.label,
                "file": "" if err else os.path.relpath(emb_file, out_dir),
                "shard": "",
                "row": "",
                "error": err,
            }
        )
    return rows


def _csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["index", "path", "label", "file", "shard", "row", "error"])
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# ----------------------------------------------------------------------------- from a config
def extract_from_config(
    cfg,
    records,
    out_dir: str,
    *,
    root: str = "",
    layer: str = DEFAULT_LAYER,
    per_clip: bool = False,
    fmt: str = "npy",
    shard_size: int = 1000,
) -> dict:
    """:func:`extract` with the model, weights, views and loader that ``cfg`` describes.

    Works as a plain process or under torchrun (each rank takes its share). The views are the
    test's: ``TEST.NUM_ENSEMBLE_VIEWS`` clips x ``TEST.NUM_SPATIAL_CROPS`` crops.
    """
    owns_group = not du.is_dist()
    info = du.init_distributed(cfg.DEVICE, cfg.DIST_BACKEND, cfg.DIST_TIMEOUT_S)
    try:
        loaded = load_model(cfg, info.device)
        # An unknown layer fails before any video is read.
        tap = ScoresTap(loaded.model, loaded.activation) if layer == SCORES else LayerTap(loaded.model, layer)

        def items(recs):
            if not recs:
                return []
            return build_loader(cfg, "", "test", batch_size=1, dataset=multiview_dataset(cfg, recs))

        d = cfg.DATA
        settings = dict(
            arch=cfg.MODEL.ARCH,
            checkpoint=os.path.abspath(loaded.checkpoint),
            weights=loaded.weights,
            num_clips=cfg.TEST.NUM_ENSEMBLE_VIEWS,
            num_crops=cfg.TEST.NUM_SPATIAL_CROPS,
            num_frames=d.NUM_FRAMES,
            sampling_rate=d.SAMPLING_RATE,
            crop_size=d.TEST_CROP_SIZE,
            class_names=loaded.class_names,
            activation=loaded.activation,
        )
        return extract(
            tap,
            records,
            out_dir,
            items,
            root=root,
            per_clip=per_clip,
            fmt=fmt,
            shard_size=shard_size,
            mean=d.MEAN,
            std=d.STD,
            chunk_size=cfg.TEST.BATCH_SIZE,
            device=info.device,
            amp_dtype=loaded.amp_dtype,
            settings=settings,
            log_period=cfg.LOG_PERIOD,
            combine=cfg.TEST.ENSEMBLE_METHOD if layer == SCORES else "mean",
        )
    finally:
        if owns_group:
            du.cleanup()
