"""The exact reader: PyAV, frame ``i`` being the ``i``-th frame ffmpeg decodes, shown as ffmpeg shows it.

One open in the usual case: the packet index gives the length and the keyframes, then the frames
are decoded from the keyframe at or before the clip and only the wanted ones are converted to
RGB. A file whose index cannot be trusted (:attr:`PacketIndex.exact` False) is counted once by a
full decode (remembered per file in this process) and decoded from the start; a file that ends
early is re-sampled on the frames that really decode.
"""

from __future__ import annotations

import functools
import os
from typing import Optional, Tuple

import numpy as np
import torch

from ...errors import DecodeError
from .container import PacketIndex, index_packets, open_video
from .crop_scale import CropScale, check_boxes, crop_scale_frames, shown_size
from .orientation import UPRIGHT, display_matrix, orientation_of
from .selection import IndexFn, expand, wanted


class _Got(dict):
    """``{index: rgb24 array}`` and the display matrix of the frames (the same on every frame).

    Frames are converted by one single-threaded reformatter owned by the read, never by the
    frame's own: reading a frame's side data ties the frame into a reference cycle, and a cycle
    that held a threaded swscale context would be freed by the garbage collector of a forked
    loader worker, which then waits forever for threads that were not forked.
    """

    def __init__(self, raw: bool = False):
        super().__init__()
        from av.video.reformatter import VideoReformatter

        self.matrix = None
        self.raw = raw  # keep the decoded frames as they are (a crop is converted later)
        self._reformatter = VideoReformatter()

    def add(self, i: int, frame) -> None:
        if not self:
            self.matrix = display_matrix(frame)
        self[i] = frame if self.raw else _to_rgb(self._reformatter, frame)


def _to_rgb(reformatter, frame) -> np.ndarray:
    try:
        rgb = reformatter.reformat(frame, format="rgb24", threads=1)
    except TypeError:  # PyAV before the threads option: FFmpeg's default
        rgb = reformatter.reformat(frame, format="rgb24")
    return rgb.to_ndarray()


def count_frames(path: str) -> int:
    """Frames that really decode, remembered per file (path, size, modification time)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return _count_cached(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 14)
def _count_cached(path: str, size: int, mtime_ns: int) -> int:
    return decode_count(path)


def decode_count(path: str) -> int:
    """Frames that really decode (stops quietly at the first decoding error)."""
    container, stream = open_video(path)
    count = 0
    try:
        for _ in container.decode(stream):
            count += 1
    except Exception:
        pass
    finally:
        container.close()
    return count


def seek_decode(container, stream, index: PacketIndex, uniq: np.ndarray, raw: bool = False) -> Optional[_Got]:
    """Frames ``uniq`` (sorted), decoded from the keyframe at or before the first one; None when
    that cannot be done exactly (the caller then decodes from the start).

    Frame ``i`` is the frame whose presentation time is the ``i``-th smallest of ``index.order``.
    The seek is trusted only when the index is exact and the decoder, from the keyframe on,
    delivers exactly the consecutive frames the index predicts: anything else gives None, never
    a wrong frame.
    """
    order = index.order
    if not index.exact or not index.keys:
        return None
    rank = {t: i for i, t in enumerate(order)}
    key_ranks = sorted(rank[t] for t in index.keys)
    first = int(uniq[0])
    k = key_ranks[max(int(np.searchsorted(key_ranks, first, side="right")) - 1, 0)]
    if k > first:
        return None
    want, last, got, expected = set(uniq.tolist()), int(uniq[-1]), _Got(raw), k
    try:
        container.seek(order[k], stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            i = rank.get(frame.pts) if frame.pts is not None else None
            if i is None:
                return None
            if i < k:  # leading frames of an open GOP, shown before the keyframe
                continue
            if i != expected:
                return None
            expected += 1
            if i in want:
                got.add(i, frame)
            if i >= last:
                break
    except Exception:  # a broken file: the sequential path finds out how much of it decodes
        return None
    return got if len(got) == len(uniq) else None


def sequential_decode(path: str, uniq: np.ndarray, threads: int = 0, raw: bool = False) -> Tuple[Optional[_Got], int]:
    """Decode from frame 0 up to the last wanted index; convert only the wanted frames (``raw``:
    keep them as decoded).

    Returns ``(frames, -1)``, or ``(None, n)`` when the stream ended (or broke) after ``n`` frames,
    before all wanted frames came.
    """
    want, last, got = set(uniq.tolist()), int(uniq[-1]), _Got(raw)
    container, stream = open_video(path, threads)
    i = -1
    try:
        for i, frame in enumerate(container.decode(stream)):
            if i in want:
                got.add(i, frame)
            if i >= last:
                break
    except Exception:
        pass
    finally:
        container.close()
    if len(got) < len(uniq):
        return None, i + 1
    return got, -1


def _finish(got: _Got, uniq, inverse, indices, autorotate: bool, crop: Optional[CropScale] = None) -> torch.Tensor:
    if crop is not None:
        orientation = orientation_of(got.matrix) if autorotate else UPRIGHT
        frames = [got[k] for k in indices.tolist()]
        h, w = shown_size(frames[0], orientation)
        boxes = check_boxes(crop.boxes(h, w), len(frames), crop, h, w)
        return torch.from_numpy(crop_scale_frames(frames, crop, boxes, orientation))
    frames = torch.from_numpy(np.stack([got[k] for k in uniq.tolist()]))
    if autorotate:
        frames = orientation_of(got.matrix).apply(frames)
    return expand(frames, uniq, inverse, indices)


def read(path: str, index_fn: IndexFn, threads: int = 0, autorotate: bool = True, crop: Optional[CropScale] = None):
    """``(frames uint8 [N, H, W, 3], indices, video length)``; see the module docstring.

    With ``crop`` (:mod:`.crop_scale`) frame ``j`` is instead the crop of its box, scaled by
    FFmpeg to ``[crop.size, crop.size]``, the same decoded frames either way.
    """
    raw = crop is not None
    container, stream = open_video(path, threads)
    index = None
    try:
        try:
            index = index_packets(container, stream)
        except Exception:
            index = None
        if index is not None and index.exact:
            indices, uniq, inverse = wanted(index_fn, index.shown)
            got = seek_decode(container, stream, index, uniq, raw)
            if got is not None:
                return _finish(got, uniq, inverse, indices, autorotate, crop), indices, index.shown
    finally:
        container.close()

    length = index.shown if index is not None and index.exact else count_frames(path)
    if length < 1:
        raise DecodeError("no decodable video frames")
    indices, uniq, inverse = wanted(index_fn, length)
    got, decoded = sequential_decode(path, uniq, threads, raw)
    if got is None:
        # Fewer frames decode than the index promised: re-sample on those that do.
        length = decoded if 0 < decoded < length else decode_count(path)
        if length < 1:
            raise DecodeError("no decodable video frames")
        indices, uniq, inverse = wanted(index_fn, length)
        got, _ = sequential_decode(path, uniq, threads, raw)
        if got is None:
            raise DecodeError("frames could not be decoded")
    return _finish(got, uniq, inverse, indices, autorotate, crop), indices, length
