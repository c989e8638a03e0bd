"""Kinetics-style datasets: a list of (video, label) served as training clips, a validation clip or
all test views of a video.

Randomness in training is drawn from generators seeded by ``(seed, epoch, index, retry)`` only, never
from global state, so a batch is the same whatever the number of workers and after a restart.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from . import decode as D
from . import transforms as T
from .csv import VideoRecord

logger = logging.getLogger(__name__)

_warned = set()  # paths already logged by this process (one line per bad file and worker)


def _warn_once(path: str, reason: str) -> None:
    if path not in _warned:
        _warned.add(path)
        logger.warning("skipping broken video %s: %s", path, reason)


def _reason(e: BaseException) -> str:
    return str(e) if isinstance(e, D.DecodeError) else f"{type(e).__name__}: {e}"


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


class _VideoDataset(Dataset):
    def __init__(self, records: Sequence[VideoRecord], num_frames: int, sampling_rate: int,
                 backend: str = "decord", decode_timeout_s: Optional[float] = None,
                 decode_threads: int = 1):
        self.records = list(records)
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.backend = backend
        self.decode_timeout_s = decode_timeout_s
        self.decode_threads = decode_threads
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _read(self, path: str, index_fn):
        return D.read_frames(path, index_fn, backend=self.backend,
                             timeout_s=self.decode_timeout_s, num_threads=self.decode_threads)


class TrainDataset(_VideoDataset):
    """Random clip, one random spatial jitter for the whole clip, random flip.

    Item ``(epoch, index)`` (what :class:`rs3d.data.loader.TrainSampler` yields; a plain ``index``
    uses ``self.epoch``) -> ``dict(clip=uint8 [3, T, S, S], label, index, skipped)``. A broken video
    is replaced by a random other one, at most ``max_retries`` times; ``skipped`` counts them.

    Args:
        jitter_mode: "area" (random resized crop with ``area`` and ``aspect``) or "short_side"
            (short side uniform in ``scales`` then a random ``crop_size`` crop).
    """

    def __init__(self, records, num_frames: int, sampling_rate: int, crop_size: int,
                 jitter_mode: str = "area", area=(0.08, 1.0), aspect=(0.5, 2.0),
                 scales=(256, 320), random_flip: bool = True, seed: int = 0,
                 max_retries: int = 10, **decode_kwargs):
        super().__init__(records, num_frames, sampling_rate, **decode_kwargs)
        if jitter_mode not in ("area", "short_side"):
            raise ValueError(f"DATA.TRAIN_JITTER_MODE must be 'area' or 'short_side', got {jitter_mode!r}")
        self.crop_size = crop_size
        self.jitter_mode = jitter_mode
        self.area, self.aspect, self.scales = tuple(area), tuple(aspect), tuple(scales)
        self.random_flip = random_flip
        self.seed = seed
        self.max_retries = max_retries

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        reason = ""
        for retry in range(self.max_retries + 1):
            video = index if retry == 0 else int(_rng(self.seed, epoch, index, retry, 2).integers(len(self)))
            record = self.records[video]
            try:
                clip = self.load_clip(record.path, self.seed, epoch, index, retry)
            except Exception as e:
                reason = _reason(e)
                _warn_once(record.path, reason)
                continue
            return dict(clip=clip, label=record.label, index=video, skipped=retry)
        raise RuntimeError(
            f"{self.max_retries + 1} training videos in a row failed to decode (DATA.MAX_RETRIES); "
            f"last {record.path}: {reason}")

    def load_clip(self, path: str, *key: int) -> torch.Tensor:
        """The clip of ``path`` for random key ``key`` = (seed, epoch, index, retry)."""
        rng_space = _rng(*key, 1)

        def index_fn(length: int) -> np.ndarray:
            # A fresh generator per call: a re-sample after a length correction draws the same way.
            start = D.random_clip_start(length, self.num_frames, self.sampling_rate, _rng(*key, 0))
            return D.clip_indices(start, self.num_frames, self.sampling_rate, length)

        frames, _, _ = self._read(path, index_fn)
        h, w = frames.shape[1], frames.shape[2]
        if self.jitter_mode == "area":
            box = T.sample_area_box(h, w, rng_space, self.area, self.aspect)
        else:
            box = T.sample_short_side_box(h, w, rng_space, self.scales, self.crop_size)
        flip = bool(self.random_flip and rng_space.random() < 0.5)
        return T.crop_resize_flip(frames, box, self.crop_size, flip)


class ValDataset(_VideoDataset):
    """Cheap validation during training: the centre clip, short side resized to ``crop_size``, centre crop.

    Same item as :class:`TrainDataset`; a broken video is replaced by a fixed other one (counted).
    """

    def __init__(self, records, num_frames: int, sampling_rate: int, crop_size: int,
                 seed: int = 0, max_retries: int = 10, **decode_kwargs):
        super().__init__(records, num_frames, sampling_rate, **decode_kwargs)
        self.crop_size, self.seed, self.max_retries = crop_size, seed, max_retries

    def __getitem__(self, index: int) -> dict:
        reason = ""
        for retry in range(self.max_retries + 1):
            video = index if retry == 0 else int(_rng(self.seed, index, retry).integers(len(self)))
            record = self.records[video]
            try:
                frames, _, _ = self._read(record.path, self._index_fn)
                clip = T.short_side_crops(frames, self.crop_size, 1)[0]
            except Exception as e:
                reason = _reason(e)
                _warn_once(record.path, reason)
                continue
            return dict(clip=clip, label=record.label, index=video, skipped=retry)
        raise RuntimeError(f"{self.max_retries + 1} validation videos in a row failed to decode; "
                           f"last {record.path}: {reason}")

    def _index_fn(self, length: int) -> np.ndarray:
        start = D.center_clip_start(length, self.num_frames, self.sampling_rate)
        return D.clip_indices(start, self.num_frames, self.sampling_rate, length)


class TestDataset(_VideoDataset):
    """All views of one video, decoded once.

    Item -> ``dict(views=uint8 [V, 3, T, S, S], label, index, path, error)``, V = ``num_clips *
    num_crops``, view ``v = clip * num_crops + crop``. The frames of all clips are decoded in one
    pass and resized once, then sliced into views. A broken video gives ``error`` = the reason and
    an empty ``views``; it never stops the run.
    """

    __test__ = False  # not a pytest class

    def __init__(self, records, num_frames: int, sampling_rate: int, crop_size: int,
                 num_clips: int = 10, num_crops: int = 3, **decode_kwargs):
        super().__init__(records, num_frames, sampling_rate, **decode_kwargs)
        self.crop_size, self.num_clips, self.num_crops = crop_size, num_clips, num_crops

    def clip_indices(self, length: int) -> List[np.ndarray]:
        starts = D.uniform_clip_starts(length, self.num_frames, self.sampling_rate, self.num_clips)
        return [D.clip_indices(s, self.num_frames, self.sampling_rate, length) for s in starts]

    def _union(self, length: int) -> np.ndarray:
        return np.unique(np.concatenate(self.clip_indices(length)))

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        item = dict(label=record.label, index=index, path=record.path, error="")
        try:
            frames, union, length = self._read(record.path, self._union)
            item["views"] = self.make_views(frames, union, length)
        except Exception as e:
            item["views"] = torch.empty(0, dtype=torch.uint8)
            item["error"] = _reason(e)
            _warn_once(record.path, item["error"])
        return item

    def make_views(self, frames: torch.Tensor, union: np.ndarray, length: int) -> torch.Tensor:
        """Decoded ``frames`` (= frame ``union[i]``) -> ``[V, 3, T, S, S]``.

        The union is resized once; each view frame is then one copy from the resized frames
        (fewer passes over ~190 MB per Kinetics video than gathering clips, then crops).
        """
        resized = T.resize_short_side(frames, self.crop_size)
        h, w = resized.shape[-2:]
        nhwc = resized.permute(0, 2, 3, 1)  # a view when resized is channels-last
        k, s = self.num_crops, self.crop_size
        corners = [(off, 0) if h > w else (0, off) for off in T.crop_offsets(max(h, w), s, k)]
        views = torch.empty((self.num_clips * k, 3, self.num_frames, s, s), dtype=torch.uint8)
        if torch.utils.data.get_worker_info() is not None:
            views.share_memory_()  # written once, sent to the main process without another copy
        for c, idx in enumerate(self.clip_indices(length)):
            pos = np.searchsorted(union, idx).tolist()
            for j, (y, x) in enumerate(corners):
                dst = views[c * k + j]
                for t, q in enumerate(pos):
                    dst[:, t].copy_(nhwc[q, y:y + s, x:x + s].permute(2, 0, 1))
        return views
