"""Per-file facts that decide whether decord or torchcodec may serve a file, remembered per file.

decord and torchcodec are fast but each reads some files differently from ffmpeg: decord reads
its own choice of stream, ignores or half-applies the display matrix, pads a stream whose
leading packets cannot decode with copies of its last frame, counts the frames an edit list
hides, and corrupts frames around open-GOP keyframes when it seeks; torchcodec rotates but does
not mirror, and refuses files without timestamps. One cheap PyAV look at a file (the packet
index, no decoding but of the first keyframe) tells whether it is one of those; such files are
read with PyAV instead. A loader worker meets the same videos every epoch, so the verdict is
kept per file (path, size, modification time) for the life of the process.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import DecodeError
from .container import (
    first_frame_matrix,
    first_shown_frame_matrix,
    index_packets,
    is_attached_picture,
    open_video,
    stream_timing,
)
from .guard import short
from .orientation import orientation_of

BACKENDS = ("decord", "pyav", "torchcodec")


@dataclass(frozen=True)
class VideoInfo:
    stream: int  # index of the stream ffmpeg picks (the one every reader must read)
    other_streams: int  # other video streams that are not attached pictures
    width: int  # stored size of that stream
    height: int
    upright: bool  # shown as stored: no display matrix, or one that changes nothing
    frames: Optional[int]  # frames ffmpeg decodes, when the packet index proves it
    open_gop: bool


def probe_video(path: str) -> VideoInfo:
    """The facts about ``path`` (not remembered; :func:`video_info` is)."""
    container, stream = open_video(path, 1)
    try:
        index = index_packets(container, stream, keep_first_key=True)
        upright = False
        if index.first_key is not None:
            decoded, matrix = first_frame_matrix(stream, index.first_key)
            try:
                upright = decoded and orientation_of(matrix).identity
            except DecodeError:
                upright = False
        others = sum(1 for s in container.streams.video if s.index != stream.index and not is_attached_picture(s))
        cc = stream.codec_context
        return VideoInfo(
            stream.index, others, int(cc.width), int(cc.height), bool(upright), index.length, index.open_gop
        )
    finally:
        container.close()


@dataclass(frozen=True)
class VideoFacts:
    """What a dataset manifest records of a file (:func:`describe_video`)."""

    width: int  # displayed size: the stored size of the stream ffmpeg picks, after its
    height: int  # display matrix (a 90-degree rotation swaps width and height)
    fps: float  # the stream's average frame rate (0.0 when the file gives none)
    duration: float  # seconds (0.0 when the container does not say)
    frames: int  # frames the packet index lists (what ffmpeg decodes when ``frames_exact``)
    frames_exact: bool
    decodable: bool  # its first shown frame decodes and its orientation can be applied
    reason: str  # why not, when not decodable


def describe_video(path: str) -> VideoFacts:
    """Size as shown, rate, duration, frame count and whether ``path`` decodes, from the same one
    look as :func:`probe_video` (the packet index and the first keyframe; no other decoding, but
    from the start when the first packet is not a keyframe).

    Raises :class:`DecodeError` when the file cannot be opened or has no video stream.
    """
    container, stream = open_video(path, 1)
    try:
        fps, seconds = stream_timing(container, stream)
        cc = stream.codec_context
        width, height = int(cc.width), int(cc.height)
        try:
            index = index_packets(container, stream, keep_first_key=True)
        except Exception as e:
            return VideoFacts(width, height, fps, seconds, 0, False, False, f"cannot read packets: {short(e)}")
        if index.shown == 0:
            return VideoFacts(width, height, fps, seconds, 0, False, False, "no frames")
        decodable, reason = False, "no frame decodes"
        decoded, matrix = first_frame_matrix(stream, index.first_key) if index.first_key else (False, None)
        if not decoded:  # no timed first keyframe, or one an edit list hides: decode from the start
            decoded, matrix = first_shown_frame_matrix(path)
        if decoded:
            try:
                if orientation_of(matrix).transpose:
                    width, height = height, width
                decodable, reason = True, ""
            except DecodeError as e:
                reason = str(e)
        return VideoFacts(width, height, fps, seconds, index.shown, index.exact, decodable, reason)
    finally:
        container.close()


def video_info(path: str) -> VideoInfo:
    """:func:`probe_video`, remembered per file in this process; raises :class:`DecodeError`."""
    st = os.stat(path)
    return _info_cached(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 17)
def _info_cached(path: str, size: int, mtime_ns: int) -> VideoInfo:
    return probe_video(path)


def has_open_gop(path: str) -> bool:
    """Whether keyframes of the video have leading frames: frames after a keyframe in decoding
    order but shown before it, which refer to the previous group of pictures ("open GOP").

    decord does not decode those correctly when it seeks (frames around each such keyframe come
    out corrupted), so rs3d reads such files with PyAV where decord would seek. Remembered per
    file; False for a file PyAV cannot open (the reader reports that).
    """
    try:
        return video_info(path).open_gop
    except (DecodeError, OSError):
        return False


def probe_open_gop(path: str) -> bool:
    """:func:`has_open_gop`, looked at afresh."""
    try:
        container, stream = open_video(path, 1)
    except DecodeError:
        return False
    try:
        return index_packets(container, stream).open_gop
    except Exception:
        return False
    finally:
        container.close()


def _tiny_video(path: str) -> None:
    """A 2-frame 16x16 MPEG-4 file, to make torchcodec load its FFmpeg-linked core."""
    import av

    with av.open(path, "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = 16
        s.pix_fmt = "yuv420p"
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def backend_unavailable(backend: str) -> Optional[str]:
    """None if ``backend`` can decode here; else a one-line reason (checked once, at start-up).

    torchcodec imports without FFmpeg but loads its FFmpeg-linked core on first use, so this
    decodes a 2-frame video written on the spot.
    """
    if backend not in BACKENDS:
        return f"DATA.DECODING_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}"
    if backend != "torchcodec":
        return None
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError:
        return "DATA.DECODING_BACKEND torchcodec: torchcodec is not installed (pip install torchcodec)"
    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "probe.mp4")
        _tiny_video(probe)
        try:
            VideoDecoder(probe).get_frames_at([1])
        except Exception as e:
            reason = "FFmpeg shared libraries (4-9) not found" if "load libtorchcodec" in str(e) else short(e)
            return f"DATA.DECODING_BACKEND torchcodec cannot decode here: {reason}; use decord or pyav"
    return None
