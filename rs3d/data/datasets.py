"""The datasets of every video list (Kinetics-style ``path label`` lists, whatever the source): a
list of (video, label) served as training clips, a validation clip or all test views of a video.

Only a video that cannot be decoded (:class:`rs3d.errors.DecodeError`) counts as broken: it is
replaced (training, validation) or listed as failed (test). Any other exception while making a clip
(a transform given impossible sizes, say) is a bug, and stops the run with its traceback rather
than being counted as one more broken video.

Randomness in training is drawn from generators seeded by ``(seed, epoch, index, retry)`` only, never
from global state, so a batch is the same whatever the number of workers and after a restart.
Which frames a clip uses is :class:`rs3d.data.temporal.TemporalSampling`'s (``DATA.SAMPLING``); a
list entry may be a video file or a frame folder (:mod:`rs3d.data.frames`), read the same way.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from . import decode as D
from . import transforms as T
from .csv import VideoRecord
from .fps import video_fps
from .frames import read_frame_folder
from .temporal import TemporalSampling

logger = logging.getLogger(__name__)

_warned = set()  # paths already logged by this process (one line per bad file and worker)


def _warn_once(path: str, reason: str) -> None:
    if path not in _warned:
        _warned.add(path)
        logger.warning("skipping broken video %s: %s", path, reason)


def _reason(e: D.DecodeError) -> str:
    return str(e)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


class _VideoDataset(Dataset):
    """Shared by the three modes. ``sampling`` (default: dense, ``num_frames`` x ``sampling_rate``)
    picks the frames; ``frame_folder_fps`` is the rate assumed for frame folders (time-based
    sampling needs one, and images carry none)."""

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        sampling_rate: int,
        backend: str = "decord",
        decode_timeout_s: Optional[float] = None,
        decode_threads: int = 1,
        sampling: Optional[TemporalSampling] = None,
        frame_folder_fps: float = 30.0,
        autorotate: bool = True,
    ):
        self.records = list(records)
        self.autorotate = autorotate
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.sampling = sampling or TemporalSampling(num_frames, sampling_rate)
        if self.sampling.num_frames != num_frames:
            raise ValueError(f"sampling has {self.sampling.num_frames} frames, the dataset {num_frames}")
        self.frame_folder_fps = frame_folder_fps
        self.backend = backend
        self.decode_timeout_s = decode_timeout_s
        self.decode_threads = decode_threads
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _fps(self, path: str) -> Optional[float]:
        """The frame rate the sampling needs (None when it needs none; read once per file)."""
        if not self.sampling.needs_fps:
            return None
        return self.frame_folder_fps if os.path.isdir(path) else video_fps(path)

    def _first_decodable(self, mode: str, index: int, replacement_key, load):
        """``(video, retry, load(path, retry))`` of video ``index`` or, for each that does not decode
        (logged once per file), of a random other one drawn from ``_rng(*replacement_key(retry))``,
        at most ``self.max_retries`` times; then RuntimeError. The replacement rule of training and
        validation."""
        reason = ""
        for retry in range(self.max_retries + 1):
            video = index if retry == 0 else int(_rng(*replacement_key(retry)).integers(len(self)))
            path = self.records[video].path
            try:
                return video, retry, load(path, retry)
            except D.DecodeError as e:  # anything else is a bug: it stops the run with its traceback
                reason = _reason(e)
                _warn_once(path, reason)
        raise RuntimeError(
            f"{self.max_retries + 1} {mode} videos in a row failed to decode (DATA.MAX_RETRIES); last {path}: {reason}"
        )

    def _read(self, path: str, pick, crop: Optional[D.CropScale] = None):
        """Decode the frames ``pick(length, fps)`` asks for (``fps`` from :meth:`_fps`); with
        ``crop``, FFmpeg's crops of them (video files only)."""
        fps = self._fps(path)

        def index_fn(length: int) -> np.ndarray:
            return pick(length, fps)

        if os.path.isdir(path):
            return read_frame_folder(path, index_fn, timeout_s=self.decode_timeout_s)
        return D.read_frames(
            path,
            index_fn,
            backend=self.backend,
            timeout_s=self.decode_timeout_s,
            num_threads=self.decode_threads,
            autorotate=self.autorotate,
            crop=crop,
        )


class TrainDataset(_VideoDataset):
    """Random clip, one random spatial jitter for the whole clip, random flip.

    Item ``(epoch, index)`` (what :class:`rs3d.data.loader.TrainSampler` yields; a plain ``index``
    uses ``self.epoch``) -> ``dict(clip=uint8 [3, T, S, S], label, index, skipped)``. A broken video
    is replaced by a random other one, at most ``max_retries`` times; ``skipped`` counts them.

    ``clips_per_video`` N > 1 (repeated sampling, PySlowFast's NUM_SAMPLE): the frames are decoded
    once and cut into N clips with independent crops and flips (and each its label after the flip):
    ``clip`` is ``[N, 3, T, S, S]``, ``label`` ``[N]`` (``[N, C]`` multi-label);
    :func:`rs3d.data.loader.repeated_clips_collate` makes a batch of clips of them.
    ``crop_in_decoder``: FFmpeg cuts and scales each crop while converting to RGB
    (:mod:`rs3d.data.video.crop_scale`; same boxes and flips, swscale's interpolation); frame
    folders keep the torch path.

    Args:
        jitter_mode: "area" (random resized crop with ``area`` and ``aspect``), "tf_area" (the
            released TF crop with the same ranges and TF's resize, ``T.sample_tf_area_box``) or
            "short_side" (short side uniform in ``scales`` then a random ``crop_size`` crop).
        flip_label_map: ``map[label]`` is the label of a flipped clip (:mod:`rs3d.data.flip`);
            None keeps the label.
        rand_augment: ``f(clip, rng)`` applied to every clip after crop and flip, e.g.
            :class:`rs3d.data.randaugment.ClipRandAugment` (one draw for all frames); None: off.
    """

    def __init__(
        self,
        records,
        num_frames: int,
        sampling_rate: int,
        crop_size: int,
        jitter_mode: str = "area",
        area=(0.08, 1.0),
        aspect=(0.5, 2.0),
        scales=(256, 320),
        random_flip: bool = True,
        seed: int = 0,
        max_retries: int = 10,
        flip_label_map: Optional[Sequence[int]] = None,
        clips_per_video: int = 1,
        crop_in_decoder: bool = False,
        rand_augment=None,
        **decode_kwargs,
    ):
        super().__init__(records, num_frames, sampling_rate, **decode_kwargs)
        if jitter_mode not in T.JITTER_MODES:
            raise ValueError(f"DATA.TRAIN_JITTER_MODE must be one of {list(T.JITTER_MODES)}, got {jitter_mode!r}")
        if clips_per_video < 1:
            raise ValueError(f"DATA.TRAIN_CLIPS_PER_VIDEO must be >= 1, got {clips_per_video}")
        self.clips_per_video = int(clips_per_video)
        self.crop_in_decoder = bool(crop_in_decoder)
        self.crop_size = crop_size
        self.jitter_mode = jitter_mode
        self.area, self.aspect, self.scales = tuple(area), tuple(aspect), tuple(scales)
        self.random_flip = random_flip
        self.flip_label_map = None if flip_label_map is None else [int(v) for v in flip_label_map]
        self.seed = seed
        self.max_retries = max_retries
        self.rand_augment = rand_augment

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        video, retry, (clip, flipped) = self._first_decodable(
            "training",
            index,
            lambda retry: (self.seed, epoch, index, retry, 2),
            lambda path, retry: self.load_clip(path, self.seed, epoch, index, retry, with_flip=True),
        )
        label = self.records[video].label
        if self.clips_per_video == 1:
            return dict(clip=clip, label=self._label(label, flipped), index=video, skipped=retry)
        labels = [self._label(label, f) for f in flipped]
        return dict(clip=clip, label=torch.stack([torch.as_tensor(v) for v in labels]), index=video, skipped=retry)

    def _label(self, label, flipped: bool):
        return _flip_label(label, self.flip_label_map) if flipped and self.flip_label_map is not None else label

    def _train_indices(self, length: int, fps, *, key: Tuple[int, ...], repeats: int) -> np.ndarray:
        """The training clip's frame indices, drawn from a fresh generator of ``key`` (a re-sample
        after a length correction draws the same way); ``repeats`` > 0: that many runs of them."""
        idx = self.sampling.train(length, fps, _rng(*key, 0))
        return np.tile(idx, repeats) if repeats else idx

    def load_clip(self, path: str, *key: int, with_flip: bool = False):
        """The clip of ``path`` for random key ``key`` = (seed, epoch, index, retry); with
        ``with_flip`` also whether it was flipped. With ``clips_per_video`` N > 1: ``[N, 3, T, S, S]``
        and the N flips (all from one decode)."""
        rng_space = _rng(*key, 1)
        n = self.clips_per_video
        drawn: List[Tuple[T.Box, bool]] = []

        def draw(h: int, w: int) -> List[T.Box]:
            """N (box, flip) pairs, drawn once and in this order whichever path cuts the crops."""
            for _ in range(n - len(drawn)):
                if self.jitter_mode == "area":
                    box = T.sample_area_box(h, w, rng_space, self.area, self.aspect)
                elif self.jitter_mode == "tf_area":
                    box = T.sample_tf_area_box(h, w, rng_space, self.area, self.aspect)
                else:
                    box = T.sample_short_side_box(h, w, rng_space, self.scales, self.crop_size)
                drawn.append((box, bool(self.random_flip and rng_space.random() < 0.5)))
            return [b for b, _ in drawn]

        crop = None
        if self.crop_in_decoder and not os.path.isdir(path):
            crop = D.CropScale(draw, self.crop_size, self.num_frames)
        # Cropped by FFmpeg: one run of the clip's frames per box, so the indices are repeated.
        pick = functools.partial(self._train_indices, key=key, repeats=n if crop is not None else 0)
        frames, _, _ = self._read(path, pick, crop)
        if crop is not None:
            t = self.num_frames
            clips = [T.clip_of_crops(frames[j * t : (j + 1) * t], f) for j, (_, f) in enumerate(drawn)]
        else:
            draw(frames.shape[1], frames.shape[2])
            tf_resize = self.jitter_mode == "tf_area"
            clips = [T.crop_resize_flip(frames, box, self.crop_size, f, tf_resize) for box, f in drawn]
        if self.rand_augment is not None:  # its own stream: the crops and flips draw as without it
            clips = [self.rand_augment(c, _rng(*key, 3, j)) for j, c in enumerate(clips)]
        flips = [f for _, f in drawn]
        if n == 1:
            return (clips[0], flips[0]) if with_flip else clips[0]
        clip = torch.stack(clips)
        return (clip, flips) if with_flip else clip


class ValDataset(_VideoDataset):
    """Cheap validation during training: the centre clip, short side resized to ``crop_size``, centre crop.

    Same item as :class:`TrainDataset`; a broken video is replaced by a fixed other one (counted).
    """

    def __init__(
        self,
        records,
        num_frames: int,
        sampling_rate: int,
        crop_size: int,
        seed: int = 0,
        max_retries: int = 10,
        **decode_kwargs,
    ):
        super().__init__(records, num_frames, sampling_rate, **decode_kwargs)
        self.crop_size, self.seed, self.max_retries = crop_size, seed, max_retries

    def __getitem__(self, index: int) -> dict:
        video, retry, clip = self._first_decodable(
            "validation", index, lambda retry: (self.seed, index, retry), lambda path, retry: self._centre_clip(path)
        )
        return dict(clip=clip, label=self.records[video].label, index=video, skipped=retry)

    def _centre_clip(self, path: str) -> torch.Tensor:
        frames, _, _ = self._read(path, self._pick)
        return T.short_side_crops(frames, self.crop_size, 1)[0]

    def _pick(self, length: int, fps) -> np.ndarray:
        return self.sampling.val(length, fps)


class TestDataset(_VideoDataset):
    """All views of one video, decoded once, as a compact item; :func:`views_of` cuts the views.

    Item -> ``dict(frames, clip_frames, crop_corners, crop_size, label, index, path, error)``:

    - ``frames``: uint8 ``[N, h, w, 3]``, the union of all clips' frames, decoded in one pass and
      resized once (short side = ``crop_size``); a frame more elongated than
      ``transforms.WHOLE_FRAME_MAX_ASPECT`` is never resized whole: ``frames`` then holds the
      views' windows side by side (``[N, S, K*S, 3]``, resampled in the worker), so memory stays
      that of the views whatever the aspect ratio;
    - ``clip_frames``: int64 ``[num_clips, T]``, positions in ``frames`` of each clip's frames;
    - ``crop_corners``: int64 ``[num_crops, 2]``, (top, left) of each spatial crop;
    - ``resized_hw``: ``(h, w)`` of the resized frames. With ``resize_on_device`` the worker only
      decodes: ``frames`` keep the video's size and are resized where the views are cut (the GPU).

    View ``v = clip * num_crops + crop`` is ``frames[clip_frames[clip]]`` (resized) cropped at
    ``crop_corners[crop]``. Handing over the frames instead of the views moves 3.3x fewer bytes for
    a Kinetics video (60 MB instead of 189 MB at 30 views of 32x256x256) and lets the views be cut
    where the model runs, on the GPU (``rs3d.inference.views.video_scores`` does). A broken video
    gives ``error`` = the reason and no frames; it never stops the run.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        records,
        num_frames: int,
        sampling_rate: int,
        crop_size: int,
        num_clips: int = 10,
        num_crops: int = 3,
        resize_on_device: bool = False,
        view_positions: str = "pytorch",
        **decode_kwargs,
    ):
        super().__init__(records, num_frames, sampling_rate, **decode_kwargs)
        self.crop_size, self.num_clips, self.num_crops = crop_size, num_clips, num_crops
        self.resize_on_device = resize_on_device
        if view_positions == "tf":
            T.crop_offsets_tf(crop_size, crop_size, num_crops)  # refuses a crop count TF has no rule for
        self.view_positions = view_positions

    def clip_indices(self, length: int, fps: Optional[float] = None) -> List[np.ndarray]:
        """The frames of each of the ``num_clips`` test clips of a video of ``length`` frames."""
        return self.sampling.test(length, fps, self.num_clips)

    def _union(self, length: int, fps: Optional[float]) -> np.ndarray:
        return np.unique(np.concatenate(self.clip_indices(length, fps)))

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        item = dict(label=record.label, index=index, path=record.path, error="", crop_size=self.crop_size)
        try:
            frames, union, length = self._read(record.path, self._union)
            item.update(self.compact_views(frames, union, length, self._fps(record.path)))
        except D.DecodeError as e:  # only a video that cannot be read is listed as failed
            item.update(
                frames=torch.empty((0, 0, 0, 3), dtype=torch.uint8),
                clip_frames=torch.empty((0, self.num_frames), dtype=torch.long),
                crop_corners=torch.empty((0, 2), dtype=torch.long),
                resized_hw=(0, 0),
            )
            item["error"] = _reason(e)
            _warn_once(record.path, item["error"])
        return item

    def compact_views(self, frames: torch.Tensor, union: np.ndarray, length: int, fps: Optional[float] = None) -> dict:
        """Decoded ``frames`` (frame ``union[i]`` of the video) -> the item's view fields."""
        s = self.crop_size
        tf = self.view_positions == "tf"
        positions = [np.searchsorted(union, idx) for idx in self.clip_indices(length, fps)]
        clip_frames = torch.as_tensor(np.stack(positions), dtype=torch.long)
        if not tf and T.cut_before_resize(frames.shape[1], frames.shape[2], s):
            # Too elongated to resize whole (T.WHOLE_FRAME_MAX_ASPECT): the views' windows, resized
            # here, side by side; the views are then cut from them as from resized frames. (The TF
            # view positions use TF's resize and offsets: those frames are still resized whole.)
            strip = T.resize_crop_windows(frames, s, self.num_crops)
            portrait = strip.shape[1] > strip.shape[2]
            corners = [(k * s, 0) if portrait else (0, k * s) for k in range(self.num_crops)]
            return dict(
                frames=strip,
                clip_frames=clip_frames,
                resized_hw=tuple(strip.shape[1:3]),
                crop_corners=torch.as_tensor(corners, dtype=torch.long).view(-1, 2),
            )
        h, w = (T.short_side_size_tf if tf else T.short_side_size)(frames.shape[1], frames.shape[2], s)
        offsets = (T.crop_offsets_tf if tf else T.crop_offsets)(max(h, w), s, self.num_crops)
        corners = [(off, 0) if h > w else (0, off) for off in offsets]
        keep = self.resize_on_device or (h, w) == tuple(frames.shape[1:3])
        return dict(
            frames=frames.contiguous() if keep else _resize_frames(frames, h, w),
            clip_frames=clip_frames,
            crop_corners=torch.as_tensor(corners, dtype=torch.long).view(-1, 2),
            resized_hw=(h, w),
        )


def _flip_label(label, mapping: Sequence[int]):
    """The label of a flipped clip: ``mapping[label]``, or for a multi-hot label every class moved
    to its mirror (``mapping`` is an involution, so ``new = old[mapping]``)."""
    if isinstance(label, torch.Tensor):
        return label[torch.as_tensor(mapping, dtype=torch.long)]
    return mapping[label]


def _resize_frames(frames: torch.Tensor, h: int, w: int, chunk: int = 16) -> torch.Tensor:
    """``[N, H, W, 3]`` -> ``[N, h, w, 3]`` uint8.

    Inside a DataLoader worker the result is written, a few frames at a time, straight into shared
    memory, so it reaches the main process with no further copy: for a Kinetics-sized video that
    saves a pass over ~100 MB against resizing everything and then moving it to shared memory.
    """
    if torch.utils.data.get_worker_info() is None:
        return T.resize(T.to_tchw(frames), (h, w)).permute(0, 2, 3, 1).contiguous()
    n = frames.shape[0]
    storage = torch.UntypedStorage._new_shared(n * h * w * 3)
    out = torch.empty(0, dtype=torch.uint8).set_(storage, 0, (n, h, w, 3))
    return T.resize_nhwc_into(frames, out, chunk)


def num_views(item: dict) -> int:
    """How many views a :class:`TestDataset` item holds (0 for a broken video)."""
    return item["clip_frames"].shape[0] * item["crop_corners"].shape[0]


def prepare_views(item: dict, device: Optional[torch.device] = None) -> dict:
    """The item with its frames (and view positions) moved to ``device``, and the frames resized
    there if the worker did not."""
    frames = item["frames"] if device is None else item["frames"].to(device, non_blocking=True)
    h, w = item["resized_hw"]
    if frames.numel() and tuple(frames.shape[1:3]) != (h, w):
        frames = T.resize_nhwc_into(frames, frames.new_empty((frames.shape[0], h, w, 3)))
    return dict(item, frames=frames, clip_frames=item["clip_frames"].to(frames.device))


def views_of(item: dict, start: int = 0, stop: Optional[int] = None) -> torch.Tensor:
    """Views ``start..stop`` of a :class:`TestDataset` item: uint8 ``[V, 3, T, S, S]`` on the device
    of ``item["frames"]``. To cut several chunks on a GPU, :func:`prepare_views` the item first
    (one copy and one resize)."""
    item = prepare_views(item)
    return T.cut_views(item["frames"], item["clip_frames"], item["crop_corners"], item["crop_size"], start, stop)
