"""decord: seeks and converts only the requested frames; used where the probe shows it is exact.

:func:`read` returns None where decord would deliver other frames than ffmpeg (the caller reads
the file with PyAV); decord's own failures raise :class:`DecodeError`. A fresh ``VideoReader``
per read, deleted right after: decord's memory grows when readers are kept alive.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import DecodeError
from .container import MAX_LEADING
from .guard import short
from .probe import VideoInfo
from .selection import IndexFn, expand, wanted


def serves(info: VideoInfo) -> bool:
    """Whether decord can read this file exactly (before opening it): one real video stream,
    upright, and a frame count the packet index proves."""
    return info.upright and info.frames is not None and info.other_streams == 0


def read(path: str, index_fn: IndexFn, num_threads: int, info: VideoInfo):
    """decord's frames, indices and length; None where they would not be ffmpeg's."""
    import decord

    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as e:  # decord raises DECORDError / RuntimeError with a C++ trace
        raise DecodeError(f"decord cannot open: {short(e)}") from None
    try:
        length = len(vr)
        if length != info.frames:  # it would pad with a repeated frame, or drop some
            return None
        indices, uniq, inverse = wanted(index_fn, length)
        if info.open_gop and _would_seek(vr, uniq):
            return None
        try:
            batch = vr.get_batch(uniq.tolist())
        except Exception as e:
            raise DecodeError(f"decord cannot read frames: {short(e)}") from None
        frames = _to_torch(batch)
        del batch
    finally:
        del vr  # decord keeps decoder buffers alive as long as the reader lives
    if tuple(frames.shape[1:3]) != (info.height, info.width):  # it read another stream
        return None
    return expand(frames, uniq, inverse, indices), indices, length


def _would_seek(vr, uniq: np.ndarray) -> bool:
    """Whether decord reaches past its first group of pictures for these frames (it then seeks to
    a later keyframe, which is where open GOPs go wrong); else it decodes from the start."""
    try:
        keys = vr.get_key_indices()
    except Exception:
        return True
    return len(keys) > 1 and int(uniq[-1]) >= int(keys[1]) - MAX_LEADING


def _to_torch(batch) -> torch.Tensor:
    # Another library (e.g. PyTorchVideo) may have switched decord's global bridge to torch.
    if isinstance(batch, torch.Tensor):
        return batch
    try:  # zero-copy; asnumpy() would copy every frame once more
        from torch.utils.dlpack import from_dlpack

        return from_dlpack(batch.to_dlpack())
    except Exception:
        return torch.from_numpy(batch.asnumpy())
