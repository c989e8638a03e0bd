"""A video's frame rate and duration, read once per file from the container (no decoding).

Time-based sampling (``DATA.TARGET_FPS``) needs the rate of every video it reads, and the
own-dataset recipe the durations of a sample of them. The rate is the stream's average frame rate
(what PySlowFast reads) of the stream ffmpeg picks, the one every reader of :mod:`rs3d.data.video`
decodes. A loader worker meets the same files every epoch, so the answer is kept per file (path,
size, modification time).
"""

from __future__ import annotations

import functools
import os
from typing import Tuple

from ..errors import DecodeError
from .video.container import open_video, stream_timing
from .video.file_kind import unreadable_reason


def video_fps(path: str) -> float:
    """Frames per second of ``path``; :class:`DecodeError` when the file has none to give."""
    return video_timing(path)[0]


def video_timing(path: str) -> Tuple[float, float]:
    """``(frames per second, seconds)`` of ``path`` (seconds 0.0 when the container does not say)."""
    reason = unreadable_reason(path)  # before opening: a FIFO would block the reader
    if reason:
        raise DecodeError(reason)
    st = os.stat(path)
    return _timing_cached(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 17)
def _timing_cached(path: str, size: int, mtime_ns: int) -> Tuple[float, float]:
    container, stream = open_video(path, threads=1)
    try:
        rate, seconds = stream_timing(container, stream)
        if not rate:
            raise DecodeError("frame rate unknown (DATA.TARGET_FPS needs it)")
        return rate, seconds
    finally:
        container.close()
