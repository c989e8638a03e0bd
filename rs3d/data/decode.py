"""Reading exactly the frames a clip asks for, as ffmpeg shows them: dispatch between backends.

The work is done in :mod:`rs3d.data.video` (sampling, one reader per backend, the per-file probe);
this module picks the reader and keeps the names the rest of rs3d imports.

Frame ``i`` of a video is the ``i``-th frame ffmpeg decodes from the stream it would pick by
default (the largest picture, not an attached cover), turned as its display matrix says (as
ffmpeg does unless ``-noautorotate``). Three backends read the frames: decord (default, seeks and
converts only the requested frames), torchcodec (exact seeking; needs FFmpeg's shared libraries)
and PyAV (the exact reader: seeks where its packet index proves it safe, else decodes from the
start). decord and torchcodec serve a file only where a cheap, remembered look at it
(:mod:`rs3d.data.video.probe`) shows they read it as ffmpeg does; otherwise, and wherever they
fail, PyAV reads it. Nothing pads or guesses: a file that cannot be read exactly raises
:class:`DecodeError` with a one-line reason, so a bad file costs one sample, never the run; a
decode that hangs is abandoned after ``timeout_s``.
"""

from __future__ import annotations

import gc
import os
from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import DecodeError
from .video import decord_reader, torchcodec_reader
from .video.crop_scale import CropScale
from .video.file_kind import unreadable_reason
from .video.guard import run_with_timeout
from .video.probe import BACKENDS, backend_unavailable, has_open_gop, probe_open_gop, video_info
from .video.pyav_reader import read as _pyav_read
from .video.sampling import center_clip_start, clip_indices, random_clip_start, uniform_clip_starts
from .video.selection import IndexFn

__all__ = [
    "BACKENDS",
    "CropScale",
    "DecodeError",
    "IndexFn",
    "backend_unavailable",
    "center_clip_start",
    "clip_indices",
    "has_open_gop",
    "probe_open_gop",
    "random_clip_start",
    "read_frames",
    "run_with_timeout",
    "uniform_clip_starts",
]

_FAST_READERS = {"decord": decord_reader, "torchcodec": torchcodec_reader}


def _read(
    path: str,
    index_fn: IndexFn,
    backend: str,
    num_threads: int,
    autorotate: bool = True,
    crop: Optional[CropScale] = None,
):
    if backend not in BACKENDS:
        raise ValueError(f"DATA.DECODING_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if crop is not None:  # FFmpeg cuts the crop: PyAV's frames, not RGB, are needed
        return _pyav_read(path, index_fn, num_threads, autorotate, crop)
    reader = _FAST_READERS.get(backend)
    if reader is not None:
        try:
            info = video_info(path)
        except DecodeError:
            info = None  # PyAV cannot open it either: its reader gives the reason
        if info is not None and reader.serves(info):
            try:
                result = reader.read(path, index_fn, num_threads, info)
            except DecodeError as first:
                # e.g. decord gives up on a partly broken file; PyAV serves the frames that decode.
                try:
                    return _pyav_read(path, index_fn, num_threads, autorotate)
                except DecodeError as second:
                    raise DecodeError(f"{first}; PyAV: {second}") from None
            if result is not None:
                return result
    return _pyav_read(path, index_fn, num_threads, autorotate)


def read_frames(
    path: str,
    index_fn: IndexFn,
    backend: str = "decord",
    timeout_s: Optional[float] = None,
    num_threads: int = 1,
    autorotate: bool = True,
    crop: Optional[CropScale] = None,
) -> Tuple[torch.Tensor, np.ndarray, int]:
    """Decode the frames ``index_fn(num_frames_in_video)`` asks for.

    Returns ``(frames uint8 [N, H, W, 3], indices [N], video_len)``; ``frames[i]`` is frame
    ``indices[i]`` (duplicates and any order allowed, each distinct frame decoded once), of the
    size and orientation ffmpeg shows; ``autorotate=False`` keeps the stored orientation. With
    ``crop`` (:class:`~rs3d.data.video.crop_scale.CropScale`) PyAV reads the same frames and
    ``frames[i]`` is the crop of its box scaled by FFmpeg to ``crop.size`` (whatever ``backend``). Raises
    :class:`DecodeError` with a one-line reason for a missing, empty, truncated or audio-only
    file, a path that is no regular file (a symbolic link loop, a FIFO, a device: each said so), a
    display matrix that is not a multiple of 90 degrees (with ``autorotate``), or a file that takes
    longer than ``timeout_s`` seconds.
    """
    reason = unreadable_reason(path)
    if reason:
        raise DecodeError(reason)
    if os.path.getsize(path) == 0:
        raise DecodeError("empty file")
    if not timeout_s or timeout_s <= 0:
        result = _read(path, index_fn, backend, num_threads, autorotate, crop)
    else:
        result = run_with_timeout(lambda: _read(path, index_fn, backend, num_threads, autorotate, crop), timeout_s)
    # PyAV's objects (a container and its streams, a filter graph and its filter contexts) refer
    # to each other, so only the cycle collector frees them and the decoded frames they hold:
    # without this a loader worker grew by 40 MiB (PyAV) to 280 MiB (crops cut by FFmpeg) over
    # 2,000 reads. Now the read is over they are young garbage: microseconds to sweep.
    gc.collect(1)
    return result
