"""Config -> datasets and DataLoaders; the samplers that split work among ranks.

This is the only place in ``rs3d.data`` that reads the config.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, default_collate

from ..device import default_device_name
from ..errors import ConfigError
from .balance import balanced_order, class_balanced_weights
from .csv import DataError, read_classes, read_video_list
from .datasets import TestDataset, TrainDataset, ValDataset
from .decode import backend_unavailable
from .flip import flip_label_map, flip_warning
from .randaugment import ClipRandAugment
from .temporal import SAMPLING_MODES, TemporalSampling
from .video_root import check_some_video_exists, resolve_video_root

logger = logging.getLogger(__name__)

MODES = ("train", "val", "test")


class TrainSampler(Sampler):
    """DistributedSampler for training whose order is a pure function of ``(seed, epoch)``.

    A permutation of all videos seeded by ``seed + epoch``, cut to a multiple of ``world_size``
    (every rank gets the same count), then ``rank::world_size``. Yields ``(epoch, index)`` so that
    persistent workers see the current epoch. ``set_epoch(e, start_index=k)`` makes the next
    iteration skip its first ``k`` items without loading them (mid-epoch resume). With ``weights``
    (:func:`rs3d.data.balance.class_balanced_weights`) the order is a seeded draw with
    replacement in proportion to them instead of a permutation; the rest is the same.

    ``clips_per_video`` N > 1 (each item gives N clips, :class:`rs3d.data.datasets.TrainDataset`):
    an epoch keeps its number of clips, so it takes ``size // N`` videos: the order of round
    ``epoch // N`` (seeded by ``seed + epoch // N``) cut into N parts, epoch ``e`` taking part
    ``e % N``. Every N epochs each video is decoded once and gives N clips, the clips per video of
    N = 1 at 1/N of the decodes; the schedule (epochs, steps, learning rate) is unchanged.
    """

    def __init__(
        self,
        size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        weights: Optional[torch.Tensor] = None,
        clips_per_video: int = 1,
    ):
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {clips_per_video}")
        if size // clips_per_video < world_size:
            raise DataError(
                f"{size} training videos cannot be split among {world_size} ranks"
                + (f" at DATA.TRAIN_CLIPS_PER_VIDEO {clips_per_video}" if clips_per_video > 1 else "")
            )
        if weights is not None and len(weights) != size:
            raise ValueError(f"{len(weights)} weights for {size} videos")
        self.size, self.rank, self.world_size = size, rank, world_size
        self.seed, self.shuffle, self.weights = seed, shuffle, weights
        self.clips_per_video = clips_per_video
        self.epoch, self.start_index = 0, 0

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        self.epoch, self.start_index = epoch, start_index

    def indices(self, epoch: int) -> list:
        """This rank's full order for ``epoch``."""
        n = self.clips_per_video
        rnd, part = divmod(epoch, n)
        if self.weights is not None:
            order = balanced_order(self.weights, self.seed, rnd)
        elif self.shuffle:
            g = torch.Generator().manual_seed(self.seed + rnd)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        per_epoch = self.size // n
        order = order[part * per_epoch : (part + 1) * per_epoch]
        usable = per_epoch - per_epoch % self.world_size
        return order[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator:
        epoch, start = self.epoch, self.start_index
        self.start_index = 0  # the skip applies to one iteration only
        for i in self.indices(epoch)[start:]:
            yield (epoch, i)

    def __len__(self) -> int:
        return self.size // self.clips_per_video // self.world_size


class ShardSampler(Sampler):
    """Evaluation shard: rank r gets the contiguous range ``[r*N//W, (r+1)*N//W)``.

    Every video is seen by exactly one rank; nothing is padded or dropped (shard sizes differ by
    at most one), so metrics need no de-duplication.
    """

    def __init__(self, size: int, rank: int = 0, world_size: int = 1):
        self.begin = rank * size // world_size
        self.end = (rank + 1) * size // world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.begin, self.end))

    def __len__(self) -> int:
        return self.end - self.begin


def _decode_kwargs(cfg) -> dict:
    return dict(
        backend=cfg.DATA.DECODING_BACKEND,
        decode_timeout_s=cfg.DATA.DECODE_TIMEOUT_S,
        decode_threads=cfg.DATA.DECODE_THREADS,
        sampling=temporal_sampling(cfg),
        frame_folder_fps=cfg.DATA.FRAME_FOLDER_FPS,
        autorotate=cfg.DATA.AUTOROTATE,
    )


def temporal_sampling(cfg) -> TemporalSampling:
    """``DATA.SAMPLING`` / ``NUM_FRAMES`` / ``SAMPLING_RATE`` / ``TARGET_FPS`` as one object."""
    d = cfg.DATA
    if d.SAMPLING not in SAMPLING_MODES:
        raise ConfigError(f"DATA.SAMPLING must be one of {', '.join(SAMPLING_MODES)}; got {d.SAMPLING!r}")
    if d.SAMPLING == "segment" and d.TARGET_FPS is not None:
        raise ConfigError(
            "DATA.TARGET_FPS applies to DATA.SAMPLING dense; segment sampling "
            "spreads the frames over the whole video (set DATA.TARGET_FPS None)"
        )
    if d.TARGET_FPS is not None and d.TARGET_FPS <= 0:
        raise ConfigError(f"DATA.TARGET_FPS must be > 0, or None; got {d.TARGET_FPS!r}")
    if d.FRAME_FOLDER_FPS <= 0:
        raise ConfigError(f"DATA.FRAME_FOLDER_FPS must be > 0; got {d.FRAME_FOLDER_FPS!r}")
    return TemporalSampling(d.NUM_FRAMES, d.SAMPLING_RATE, d.SAMPLING, d.TARGET_FPS, cfg.TEST.VIEW_POSITIONS)


def _check_class_names(records, names, data_dir: str, csv_path: str) -> None:
    """A label with no line in classes.txt is a mistake (a list of another dataset, an off-by-one)."""
    if names is None:
        return
    for r in records:
        if isinstance(r.label, int) and r.label >= len(names):
            raise DataError(
                f"{csv_path}: {r.path} has label {r.label}, but "
                f"{os.path.join(data_dir, 'classes.txt')} names {len(names)} classes "
                f"(labels 0-{len(names) - 1})"
            )


def train_flip_map(cfg, names) -> Optional[list]:
    """``DATA.FLIP_LABEL_MAP`` resolved against ``names``; warns once (at start-up) when flipped
    clips may get a wrong label."""
    d = cfg.DATA
    warning = flip_warning(d.RANDOM_FLIP, d.FLIP_LABEL_MAP, names)
    if warning:
        logger.warning(warning)
    if not d.RANDOM_FLIP:
        return None
    mapping = flip_label_map(
        d.FLIP_LABEL_MAP, cfg.MODEL.NUM_CLASSES, names, os.path.join(d.PATH_TO_DATA_DIR, "classes.txt")
    )
    if mapping is not None:
        swapped = [(i, j) for i, j in enumerate(mapping) if i < j]
        shown = ", ".join(
            f"{i}<->{j}" + (f" ({names[i]!r} / {names[j]!r})" if names and j < len(names) else "")
            for i, j in swapped[:4]
        )
        logger.info(
            "DATA.FLIP_LABEL_MAP: a flipped clip swaps %d label pair(s)%s",
            len(swapped),
            f": {shown}" + (" ..." if len(swapped) > 4 else "") if swapped else "",
        )
    return mapping


def build_dataset(cfg, split: str, mode: str):
    """The dataset of ``{DATA.PATH_TO_DATA_DIR}/{split}.csv`` in ``mode`` ("train", "val", "test")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not cfg.DATA.PATH_TO_DATA_DIR:
        raise DataError("DATA.PATH_TO_DATA_DIR is empty: set it to the folder with the CSVs")
    reason = backend_unavailable(cfg.DATA.DECODING_BACKEND)
    if reason:
        raise DataError(reason)
    # Relative paths are resolved against PATH_PREFIX, else the folder the data folder's
    # video_root.txt names, else the data folder itself (rs3d.data.video_root); absolute paths are kept.
    csv_path = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, f"{split}.csv")
    root, root_source = resolve_video_root(cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX)
    records = read_video_list(
        csv_path,
        root,
        cfg.DATA.PATH_LABEL_SEPARATOR,
        cfg.MODEL.NUM_CLASSES,
        multi_label=cfg.DATA.MULTI_LABEL,
        duplicates="keep" if mode == "train" else "drop",
    )  # a test video is counted once
    check_some_video_exists([r.path for r in records], csv_path, root, root_source)
    names = read_classes(cfg.DATA.PATH_TO_DATA_DIR)
    _check_class_names(records, names, cfg.DATA.PATH_TO_DATA_DIR, csv_path)
    d = cfg.DATA
    if mode == "train":
        return TrainDataset(
            records,
            d.NUM_FRAMES,
            d.SAMPLING_RATE,
            d.TRAIN_CROP_SIZE,
            jitter_mode=d.TRAIN_JITTER_MODE,
            area=d.TRAIN_JITTER_AREA,
            aspect=d.TRAIN_JITTER_ASPECT,
            scales=d.TRAIN_JITTER_SCALES,
            random_flip=d.RANDOM_FLIP,
            seed=cfg.RNG_SEED,
            max_retries=d.MAX_RETRIES,
            flip_label_map=train_flip_map(cfg, names),
            clips_per_video=d.TRAIN_CLIPS_PER_VIDEO,
            crop_in_decoder=d.TRAIN_CROP_IN_DECODER,
            rand_augment=rand_augment(cfg),
            **_decode_kwargs(cfg),
        )
    if mode == "val":
        return ValDataset(
            records,
            d.NUM_FRAMES,
            d.SAMPLING_RATE,
            d.TEST_CROP_SIZE,
            seed=cfg.RNG_SEED,
            max_retries=d.MAX_RETRIES,
            **_decode_kwargs(cfg),
        )
    return multiview_dataset(cfg, records)


def rand_augment(cfg) -> Optional[ClipRandAugment]:
    """The training clips' RandAugment (AUG.RAND_AUGMENT_*), or None when it is off."""
    a = cfg.AUG
    return ClipRandAugment(a.RAND_AUGMENT_NUM_OPS, a.RAND_AUGMENT_MAGNITUDE) if a.RAND_AUGMENT_NUM_OPS else None


def multiview_dataset(cfg, records) -> TestDataset:
    """The multi-view test dataset of ``cfg`` over ``records`` (also what ``rs3d-predict`` reads)."""
    d = cfg.DATA
    return TestDataset(
        records,
        d.NUM_FRAMES,
        d.SAMPLING_RATE,
        d.TEST_CROP_SIZE,
        num_clips=cfg.TEST.NUM_ENSEMBLE_VIEWS,
        num_crops=cfg.TEST.NUM_SPATIAL_CROPS,
        resize_on_device=resize_test_frames_on_device(cfg),
        view_positions=cfg.TEST.VIEW_POSITIONS,
        **_decode_kwargs(cfg),
    )


def resize_test_frames_on_device(cfg) -> bool:
    """``TEST.RESIZE_ON_DEVICE`` where the test runs on CUDA (``DEVICE``, or "" with a GPU)."""
    return bool(cfg.TEST.RESIZE_ON_DEVICE) and default_device_name(cfg.DEVICE).startswith("cuda")


def _list_collate(items: list) -> list:
    return items


def repeated_clips_collate(items: list) -> dict:
    """Items of N clips each (``DATA.TRAIN_CLIPS_PER_VIDEO``) -> one batch of ``len(items) * N``
    clips, a video's N clips side by side: ``clip [B*N, 3, T, S, S]``, ``label [B*N]`` (or
    ``[B*N, C]``), ``index`` per clip; ``skipped`` stays per video (broken videos replaced)."""
    batch = default_collate(items)
    n = batch["clip"].shape[1]
    batch["clip"] = batch["clip"].flatten(0, 1)
    batch["label"] = batch["label"].flatten(0, 1)
    batch["index"] = batch["index"].repeat_interleave(n)
    return batch


def seed_worker(worker_id: int) -> None:
    """Seed python/numpy from the worker's torch seed (itself derived from the loader's generator)
    and keep each worker on one thread: parallelism comes from the workers."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)


def build_loader(
    cfg, split: str, mode: str, batch_size: int, rank: int = 0, world_size: int = 1, dataset=None
) -> DataLoader:
    """A DataLoader over ``split`` for ``mode``; ``batch_size`` is per rank.

    train: clips in a ``(seed, epoch)`` order, this rank's share, incomplete last batch dropped;
    call :func:`set_epoch` before every epoch. val/test: rank's contiguous shard, nothing dropped.
    In test mode a batch is a list of ``batch_size`` per-video dicts (all views of each video).
    """
    dataset = dataset if dataset is not None else build_dataset(cfg, split, mode)
    collate = _list_collate if mode == "test" else None
    if mode == "train":
        n = cfg.DATA.TRAIN_CLIPS_PER_VIDEO
        if batch_size % n:
            raise ConfigError(
                f"DATA.TRAIN_CLIPS_PER_VIDEO {n} must divide the clips per forward on a rank "
                f"({batch_size}: TRAIN.MICRO_BATCH_SIZE, or TRAIN.BATCH_SIZE / processes)"
            )
        if n > 1:
            batch_size, collate = batch_size // n, repeated_clips_collate  # videos per batch
            if rank == 0:
                logger.info(
                    "DATA.TRAIN_CLIPS_PER_VIDEO %d: a batch of %d clips comes from %d videos "
                    "(each decoded once, %d crops + flips); an epoch keeps its clips and steps and "
                    "decodes 1/%d of the training videos, each once every %d epochs",
                    n,
                    batch_size * n,
                    batch_size,
                    n,
                    n,
                    n,
                )
        weights = None
        if cfg.DATA_LOADER.CLASS_BALANCED:
            if not hasattr(dataset, "records"):
                raise ConfigError("DATA_LOADER.CLASS_BALANCED needs a dataset with .records (labels)")
            if cfg.DATA.MULTI_LABEL:
                raise ConfigError(
                    "DATA_LOADER.CLASS_BALANCED balances single labels; it cannot be used with DATA.MULTI_LABEL True"
                )
            weights = class_balanced_weights([r.label for r in dataset.records])
            if rank == 0:
                counts = torch.bincount(torch.as_tensor([r.label for r in dataset.records]))
                present = counts[counts > 0]
                logger.info(
                    "DATA_LOADER.CLASS_BALANCED: %d classes of %d-%d training videos drawn equally often",
                    len(present),
                    int(present.min()),
                    int(present.max()),
                )
        sampler = TrainSampler(len(dataset), rank, world_size, seed=cfg.RNG_SEED, weights=weights, clips_per_video=n)
    else:
        sampler = ShardSampler(len(dataset), rank, world_size)
    workers = cfg.DATA_LOADER.NUM_WORKERS
    extra = {}
    if workers > 0:
        extra = dict(
            persistent_workers=cfg.DATA_LOADER.PERSISTENT_WORKERS,
            prefetch_factor=cfg.DATA_LOADER.PREFETCH_FACTOR,
            worker_init_fn=seed_worker,
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        drop_last=(mode == "train"),
        generator=torch.Generator().manual_seed(cfg.RNG_SEED + rank),
        **extra,
    )


def set_epoch(loader: DataLoader, epoch: int, start_batch: int = 0) -> None:
    """Set the epoch on the loader's sampler and dataset; skip ``start_batch`` batches next time.

    The skipped batches are never loaded. ``len(loader)`` stays the full epoch's batch count.
    """
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        try:
            sampler.set_epoch(epoch, start_index=start_batch * (loader.batch_size or 1))
        except TypeError:  # a plain DistributedSampler
            if start_batch:
                raise ValueError("start_batch needs rs3d's TrainSampler") from None
            sampler.set_epoch(epoch)
    elif start_batch:
        raise ValueError("start_batch needs rs3d's TrainSampler")
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
