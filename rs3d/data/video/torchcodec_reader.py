"""torchcodec (the PyTorch project's decoder, exact seeking; needs FFmpeg's shared libraries).

Told the stream ffmpeg picks; used for upright files whose frame count the packet index proves
(torchcodec rotates but does not mirror, and cannot scan files without timestamps). :func:`read`
returns None where its frames would not be ffmpeg's; its own failures raise :class:`DecodeError`.
"""

from __future__ import annotations

from ...errors import DecodeError
from .guard import short
from .probe import VideoInfo
from .selection import IndexFn, expand, wanted


def serves(info: VideoInfo) -> bool:
    return info.upright and info.frames is not None


def read(path: str, index_fn: IndexFn, num_threads: int, info: VideoInfo):
    from torchcodec.decoders import VideoDecoder

    try:
        # "exact": frame i is the i-th frame of a full decode (the file is scanned once on open).
        decoder = VideoDecoder(
            path, stream_index=info.stream, seek_mode="exact", num_ffmpeg_threads=num_threads, dimension_order="NHWC"
        )
        length = int(decoder.metadata.num_frames or 0)
    except Exception as e:
        raise DecodeError(f"torchcodec cannot open: {short(e)}") from None
    if length != info.frames:
        return None
    indices, uniq, inverse = wanted(index_fn, length)
    try:
        frames = decoder.get_frames_at(uniq.tolist()).data
    except Exception as e:
        raise DecodeError(f"torchcodec cannot read frames: {short(e)}") from None
    if tuple(frames.shape[1:3]) != (info.height, info.width):
        return None
    return expand(frames, uniq, inverse, indices), indices, length
