"""Which frames a clip uses, for each ``DATA.SAMPLING`` mode: pure functions of the video's length
(frames), its frame rate and a view index or a generator, checkable by hand.

- ``dense``: ``num_frames`` frames ``stride`` apart from a start (the Kinetics recipe). The stride
  is ``SAMPLING_RATE`` frames of the file; with ``DATA.TARGET_FPS`` it is ``SAMPLING_RATE`` frames
  *at the target rate* (``SAMPLING_RATE * fps / TARGET_FPS`` frames of the file, PySlowFast's
  rule), so a clip lasts ``NUM_FRAMES * SAMPLING_RATE / TARGET_FPS`` seconds whatever the file's
  rate (24, 25, 30 or 60 fps). Frame ``k`` of the clip is ``start + floor(k * stride)``; with an
  integer stride this is exactly the file-rate rule. Indices wrap modulo the length, so a video
  shorter than the clip loops.
- ``segment`` (TSN, Something-Something practice): the video cut into ``num_frames`` equal
  segments, one frame from each: a random one in training, the centre at validation, and for test
  view ``v`` of ``V`` the frame at ``(v + 1/2) / V`` of each segment. Covers the whole video
  whatever its length; never loops (a video shorter than the clip repeats frames in order).

Every function returns int64 frame indices; the readers decode exactly those frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..errors import DecodeError
from .decode import center_clip_start, clip_indices, random_clip_start, uniform_clip_starts

SAMPLING_MODES = ("dense", "segment")
# TEST.VIEW_POSITIONS: how test clip starts (and crops, rs3d.data.transforms) are placed.
VIEW_POSITIONS = ("pytorch", "tf")
_EPS = 1e-9  # k * stride computed in floating point lands a hair under an integer


# ----------------------------------------------------------------------------- dense at a target rate
def stride_at(fps: float, rate: int, target_fps: Optional[float]) -> float:
    """Frames of the file between two clip frames: ``rate``, or ``rate * fps / target_fps``."""
    if target_fps is None:
        return float(rate)
    if not fps or fps <= 0:
        raise DecodeError(f"frame rate {fps!r} unknown: DATA.TARGET_FPS needs it")
    return rate * float(fps) / float(target_fps)


def clip_offsets(num_frames: int, stride: float) -> np.ndarray:
    """``floor(k * stride)`` for ``k < num_frames``: the clip's frames relative to its start."""
    return np.floor(np.arange(num_frames, dtype=np.float64) * stride + _EPS).astype(np.int64)


def _extent(num_frames: int, stride: float) -> int:
    """The test rule's clip length, ``floor(num_frames * stride)`` (``n * stride`` for dense)."""
    return int(math.floor(num_frames * stride + _EPS))


def timed_train(length: int, num_frames: int, stride: float, rng: np.random.Generator) -> np.ndarray:
    """Random clip: start uniform in ``[0, L - last offset)`` (``[0, L)`` when it does not fit)."""
    offsets = clip_offsets(num_frames, stride)
    high = length - int(offsets[-1])
    start = int(rng.integers(0, high if high > 0 else max(length, 1)))
    return _wrap(start + offsets, length)


def timed_starts(length: int, num_frames: int, stride: float, num_clips: int) -> List[int]:
    """Starts of ``num_clips`` test clips evenly spaced from 0 to ``L - floor(n * stride)``."""
    last = max(length - _extent(num_frames, stride), 0)
    if num_clips == 1:
        return [last // 2]
    return [int(round(last * i / (num_clips - 1))) for i in range(num_clips)]


def tf_linspace_starts(last: int, num_clips: int) -> List[int]:
    """TF's ``sample_linspace_sequence`` starts: ``tf.linspace(0, last, num_clips)`` in float32, truncated.

    ``last`` = ``L - n * stride`` (0 if negative); a single clip is the middle one, ``last // 2``
    (TF's ``sample_sequence``), as in the PyTorch rule."""
    if num_clips == 1:
        return [last // 2]
    f32 = np.float32
    delta = f32(last) / f32(num_clips - 1)
    inner = [int(np.floor(f32(f32(i) * delta))) for i in range(1, num_clips - 1)]
    return [0] + inner + [last]


def _wrap(indices: np.ndarray, length: int) -> np.ndarray:
    if length < 1:
        raise DecodeError("video has no frames")
    return indices % length


# ----------------------------------------------------------------------------- segments
def segment_train(length: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """One frame uniform in each segment ``[k*L//n, (k+1)*L//n)`` (its first frame when empty)."""
    if length < 1:
        raise DecodeError("video has no frames")
    k = np.arange(num_frames, dtype=np.int64)
    lo, hi = k * length // num_frames, (k + 1) * length // num_frames
    return rng.integers(lo, np.maximum(hi, lo + 1)).astype(np.int64)


def segment_view(length: int, num_frames: int, view: int = 0, num_views: int = 1) -> np.ndarray:
    """The frame at ``(view + 1/2) / num_views`` of each segment: ``floor((k + (v+1/2)/V) * L / n)``.

    Integer arithmetic: ``((2kV + 2v + 1) * L) // (2nV)``. ``view 0 of 1`` is the centre frame.
    """
    if length < 1:
        raise DecodeError("video has no frames")
    k = np.arange(num_frames, dtype=np.int64)
    return ((2 * k * num_views + 2 * view + 1) * length) // (2 * num_frames * num_views)


# ----------------------------------------------------------------------------- one object per config
@dataclass(frozen=True)
class TemporalSampling:
    """The clips of one config: ``train``, ``val`` and ``test`` give the frame indices to decode.

    ``fps`` is only read where :attr:`needs_fps` (dense with a target rate); elsewhere it may be None.
    """

    num_frames: int
    rate: int = 1
    mode: str = "dense"
    target_fps: Optional[float] = None
    view_positions: str = "pytorch"  # dense test clip starts: rounded ("pytorch") or floored ("tf")

    def __post_init__(self):
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"DATA.SAMPLING must be one of {', '.join(SAMPLING_MODES)}, got {self.mode!r}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"DATA.TARGET_FPS must be > 0, got {self.target_fps!r}")
        if self.view_positions not in VIEW_POSITIONS:
            raise ValueError(
                f"TEST.VIEW_POSITIONS must be one of {', '.join(VIEW_POSITIONS)}, got {self.view_positions!r}"
            )

    @property
    def needs_fps(self) -> bool:
        return self.mode == "dense" and self.target_fps is not None

    def _stride(self, fps: Optional[float]) -> float:
        return stride_at(fps, self.rate, self.target_fps)

    def train(self, length: int, fps: Optional[float], rng: np.random.Generator) -> np.ndarray:
        if self.mode == "segment":
            return segment_train(length, self.num_frames, rng)
        if self.target_fps is None:  # the file-rate rule, draw for draw as before DATA.SAMPLING existed
            start = random_clip_start(length, self.num_frames, self.rate, rng)
            return clip_indices(start, self.num_frames, self.rate, length)
        return timed_train(length, self.num_frames, self._stride(fps), rng)

    def test(self, length: int, fps: Optional[float], num_views: int) -> List[np.ndarray]:
        """``num_views`` clips spread over the video (dense: evenly spaced starts; segment: offsets)."""
        if self.mode == "segment":
            return [segment_view(length, self.num_frames, v, num_views) for v in range(num_views)]
        tf = self.view_positions == "tf"
        if self.target_fps is None:
            if tf:
                starts = tf_linspace_starts(max(length - self.num_frames * self.rate, 0), num_views)
            else:
                starts = uniform_clip_starts(length, self.num_frames, self.rate, num_views)
            return [clip_indices(s, self.num_frames, self.rate, length) for s in starts]
        stride = self._stride(fps)
        offsets = clip_offsets(self.num_frames, stride)
        if tf:
            starts = tf_linspace_starts(max(length - _extent(self.num_frames, stride), 0), num_views)
        else:
            starts = timed_starts(length, self.num_frames, stride, num_views)
        return [_wrap(s + offsets, length) for s in starts]

    def val(self, length: int, fps: Optional[float]) -> np.ndarray:
        """The validation clip: the middle test clip (dense) or the segment centres."""
        if self.mode == "segment":
            return segment_view(length, self.num_frames)
        if self.target_fps is None:
            start = center_clip_start(length, self.num_frames, self.rate)
            return clip_indices(start, self.num_frames, self.rate, length)
        return self.test(length, fps, 1)[0]

    def seconds(self, fps: float, length: Optional[int] = None) -> float:
        """How long one clip lasts in a video of ``fps`` (segment: the whole video of ``length``)."""
        if self.mode == "segment":
            return (length or 0) / fps
        return self.num_frames * self._stride(fps) / fps
