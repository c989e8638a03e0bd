"""Which frames a clip uses: pure functions of the video length, checkable by hand.

A clip is ``num_frames`` indices ``stride`` apart, taken modulo the video length so that videos
shorter than the clip loop. Frame ``i`` is the ``i``-th frame ffmpeg decodes from the file's
default video stream (what every reader in this package delivers).
"""

from __future__ import annotations

import numpy as np

from ...errors import DecodeError


def clip_indices(start: int, num_frames: int, stride: int, video_len: int) -> np.ndarray:
    """``num_frames`` indices from ``start``, ``stride`` apart, looped modulo ``video_len``."""
    if video_len < 1:
        raise DecodeError("video has no frames")
    return (start + np.arange(num_frames, dtype=np.int64) * stride) % video_len


def random_clip_start(video_len: int, num_frames: int, stride: int, rng: np.random.Generator) -> int:
    """Uniform in ``[0, L - (n-1)*stride)``; uniform in ``[0, L)`` when the clip is longer (loops)."""
    high = video_len - (num_frames - 1) * stride
    return int(rng.integers(0, high if high > 0 else max(video_len, 1)))


def uniform_clip_starts(video_len: int, num_frames: int, stride: int, num_clips: int) -> list:
    """Starts of ``num_clips`` test clips evenly spaced from 0 to ``L - n*stride`` (0 if negative).

    As the released evaluation: 10 clips of 32x2 on a 300-frame video start at 0, 26, ..., 236.
    Rounded to the nearest frame.
    """
    last = max(video_len - num_frames * stride, 0)
    if num_clips == 1:
        return [last // 2]
    return [int(round(last * i / (num_clips - 1))) for i in range(num_clips)]


def center_clip_start(video_len: int, num_frames: int, stride: int) -> int:
    """The validation clip: the middle one of the test clips, ``(L - n*stride) // 2`` (0 if negative)."""
    return max(video_len - num_frames * stride, 0) // 2
