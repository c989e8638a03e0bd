"""Which frames a clip uses (pure functions), and reading exactly those frames from a file.

Sampling is separated from decoding so it can be checked by hand: a clip is ``num_frames`` indices
``stride`` apart, taken modulo the video length so that videos shorter than the clip loop.

Three backends read the frames: decord (default, seeks and converts only the requested frames),
torchcodec (the PyTorch project's decoder, exact seeking; needs FFmpeg's shared libraries) and
PyAV (seeks to the keyframe before the first requested frame when its packet index allows an
exact seek, else decodes from the start; converts only the requested frames). All
return the frame asked for (``tests/data/test_decode.py`` checks this against a full sequential
decode); decord and torchcodec fall back to PyAV on a file they cannot read. Known decord failure
modes are guarded here, so a bad file costs one sample, never the run:

* a frame count read from the container that is larger than the real one makes decord fail (or,
  on some files, loop): reading falls back to PyAV, which counts the frames that really decode and
  the clip is re-sampled on that length ("clamp and retry");
* a decode that hangs is abandoned after ``timeout_s`` (the read runs in a daemon thread; decord and
  PyAV release the GIL while decoding, so the worker carries on);
* decord's memory growth over many files: a fresh ``VideoReader`` per read, deleted right after;
* decord corrupts frames around the keyframes of open-GOP H.264/HEVC files when it seeks: where a
  read would make it seek, such files (:func:`has_open_gop`, a look at the packets after two
  keyframes) are read with PyAV instead.
"""
from __future__ import annotations

import functools
import os
import threading
from typing import Callable, Optional, Tuple

import numpy as np
import torch

IndexFn = Callable[[int], np.ndarray]


from ..errors import DecodeError  # noqa: F401  (re-exported)


# ----------------------------------------------------------------------------- sampling (pure)
def clip_indices(start: int, num_frames: int, stride: int, video_len: int) -> np.ndarray:
    """``num_frames`` indices from ``start``, ``stride`` apart, looped modulo ``video_len``."""
    if video_len < 1:
        raise DecodeError("video has no frames")
    return (start + np.arange(num_frames, dtype=np.int64) * stride) % video_len


def random_clip_start(video_len: int, num_frames: int, stride: int,
                      rng: np.random.Generator) -> int:
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


# ----------------------------------------------------------------------------- readers
def _decord_read(path: str, index_fn: IndexFn, num_threads: int):
    """decord's frames, indices and length; None for an open-GOP file where decord would seek."""
    import decord

    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as e:  # decord raises DECORDError / RuntimeError with a C++ trace
        raise DecodeError(f"decord cannot open: {_short(e)}") from None
    try:
        length = len(vr)
        if length < 1:
            raise DecodeError("no video frames")
        indices = np.asarray(index_fn(length), dtype=np.int64)
        uniq, inverse = np.unique(indices, return_inverse=True)
        if _decord_would_seek(vr, uniq) and has_open_gop(path):
            return None
        try:
            batch = vr.get_batch(uniq.tolist())
        except Exception as e:
            raise DecodeError(f"decord cannot read frames: {_short(e)}") from None
        frames = _decord_to_torch(batch)
        del batch
    finally:
        del vr  # decord keeps decoder buffers alive as long as the reader lives
    return _expand(frames, uniq, inverse, indices), indices, length


# Leading frames of a keyframe are shown at most this many frames before it (H.264 allows 16
# B-frames): frames further before the second keyframe decode without decord seeking.
_MAX_LEADING = 16


def _decord_would_seek(vr, uniq: np.ndarray) -> bool:
    """Whether decord reaches past its first group of pictures for these frames (it then seeks to
    a later keyframe, which is where open GOPs go wrong); else it decodes from the start."""
    try:
        keys = vr.get_key_indices()
    except Exception:
        return True
    return len(keys) > 1 and int(uniq[-1]) >= int(keys[1]) - _MAX_LEADING


def _decord_to_torch(batch) -> torch.Tensor:
    # Another library (e.g. PyTorchVideo) may have switched decord's global bridge to torch.
    if isinstance(batch, torch.Tensor):
        return batch
    try:  # zero-copy; asnumpy() would copy every frame once more
        from torch.utils.dlpack import from_dlpack

        return from_dlpack(batch.to_dlpack())
    except Exception:
        return torch.from_numpy(batch.asnumpy())


def _expand(frames: torch.Tensor, uniq: np.ndarray, inverse: np.ndarray,
            indices: np.ndarray) -> torch.Tensor:
    """Distinct decoded frames -> the requested order (no copy when they already are in it)."""
    if len(uniq) == len(indices) and np.array_equal(uniq, indices):
        return frames
    return frames[torch.from_numpy(inverse.reshape(-1))]


def _open_video_stream(path: str, threads: int = 0):
    """Container and its first video stream; ``threads`` decoder threads (0 = FFmpeg's choice)."""
    import av

    try:
        container = av.open(path)
    except Exception as e:
        raise DecodeError(f"cannot open: {_short(e)}") from None
    if not container.streams.video:
        container.close()
        raise DecodeError("no video stream")
    stream = container.streams.video[0]
    if threads == 1:
        stream.codec_context.thread_count = 1  # parallelism comes from the loader's workers
    else:
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
    return container, stream


def _pyav_count_frames(path: str) -> int:
    """Frames that really decode (stops quietly at the first decoding error)."""
    container, stream = _open_video_stream(path)
    count = 0
    try:
        for _ in container.decode(stream):
            count += 1
    except Exception:
        pass
    finally:
        container.close()
    return count


def _pyav_packet_index(container, stream) -> Tuple[Optional[list], list, int]:
    """One pass over the video packets, without decoding: (their presentation times sorted, or
    None when a packet has none; the keyframes' times; the number of non-empty packets)."""
    pts, keys, nonempty, timed = [], [], 0, True
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        nonempty += 1
        if packet.is_discard:  # demuxed but never shown (e.g. cut by an edit list)
            continue
        if packet.pts is None:
            timed = False
            continue
        pts.append(int(packet.pts))
        if packet.is_keyframe:
            keys.append(int(packet.pts))
    return (sorted(pts) if timed else None), keys, nonempty


def _pyav_seek_decode(container, stream, order: Optional[list], keys: list, uniq: np.ndarray,
                      length: int) -> Optional[dict]:
    """Frames ``uniq`` (sorted) as ``{index: rgb}``, decoded from the keyframe at or before the
    first one; None when that cannot be done exactly (the caller then decodes from the start).

    Frame ``i`` is the frame whose presentation time is the ``i``-th smallest among the stream's
    packets (what decord and torchcodec's exact mode index by). The seek is trusted only when the
    packets number ``length``, their times are distinct, and the decoder, from the keyframe on,
    delivers exactly the consecutive frames the index predicts: anything else gives None, never
    a wrong frame.
    """
    if order is None or len(order) != length or not keys:
        return None
    rank = {t: i for i, t in enumerate(order)}
    if len(rank) != length:  # two packets share a time: ranks would be ambiguous
        return None
    key_ranks = sorted(rank[t] for t in keys)
    first = int(uniq[0])
    k = key_ranks[max(int(np.searchsorted(key_ranks, first, side="right")) - 1, 0)]
    if k > first:
        return None
    wanted, last, got, expected = set(uniq.tolist()), int(uniq[-1]), {}, k
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
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    except Exception:  # a broken file: the sequential path finds out how much of it decodes
        return None
    return got if len(got) == len(uniq) else None


def _pyav_sequential_decode(path: str, indices: np.ndarray,
                            threads: int = 0) -> Tuple[Optional[torch.Tensor], int]:
    """Decode from frame 0 up to the last wanted index; convert only the wanted frames.

    Returns ``(frames, -1)``, or ``(None, n)`` when the stream ended (or broke) after ``n`` frames,
    before all wanted frames came.
    """
    uniq, inverse = np.unique(indices, return_inverse=True)
    wanted, last, got = set(uniq.tolist()), int(uniq[-1]), {}
    container, stream = _open_video_stream(path, threads)
    i = -1
    try:
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    except Exception:
        pass
    finally:
        container.close()
    if len(got) < len(uniq):
        return None, i + 1
    return _stack_wanted(got, uniq, inverse, indices), -1


def _stack_wanted(got: dict, uniq: np.ndarray, inverse: np.ndarray, indices: np.ndarray) -> torch.Tensor:
    return _expand(torch.from_numpy(np.stack([got[k] for k in uniq.tolist()])), uniq, inverse, indices)


def _pyav_read(path: str, index_fn: IndexFn, threads: int = 0):
    """One open in the usual case: the packet index gives the length (the container's frame count,
    or the packet count where it has none, as in mkv/webm) and the keyframes, then the frames are
    decoded from the keyframe before the clip. Files whose index cannot be trusted are decoded
    from the start, and those that end early are re-sampled on the frames that really decode."""
    container, stream = _open_video_stream(path, threads)
    try:
        try:
            order, keys, nonempty = _pyav_packet_index(container, stream)
        except Exception:
            order, keys, nonempty = None, [], 0
        length = int(stream.frames) if stream.frames > 0 else nonempty
        if length >= 1:
            indices = np.asarray(index_fn(length), dtype=np.int64)
            uniq, inverse = np.unique(indices, return_inverse=True)
            got = _pyav_seek_decode(container, stream, order, keys, uniq, length)
            if got is not None:
                return _stack_wanted(got, uniq, inverse, indices), indices, length
    finally:
        container.close()

    if length < 1:
        length = _pyav_count_frames(path)
    if length < 1:
        raise DecodeError("no decodable video frames")
    indices = np.asarray(index_fn(length), dtype=np.int64)
    frames, decoded = _pyav_sequential_decode(path, indices, threads)
    if frames is None:
        # The container over-reported its length: re-sample on the frames that really decode.
        length = decoded if decoded > 0 and decoded < length else _pyav_count_frames(path)
        if length < 1:
            raise DecodeError("no decodable video frames")
        indices = np.asarray(index_fn(length), dtype=np.int64)
        frames, _ = _pyav_sequential_decode(path, indices, threads)
        if frames is None:
            raise DecodeError("frames could not be decoded")
    return frames, indices, length


def _torchcodec_read(path: str, index_fn: IndexFn, num_threads: int):
    from torchcodec.decoders import VideoDecoder

    try:
        # "exact": frame i is the i-th frame of a full decode (the file is scanned once on open).
        decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=num_threads,
                               dimension_order="NHWC")
        length = int(decoder.metadata.num_frames or 0)
    except Exception as e:
        raise DecodeError(f"torchcodec cannot open: {_short(e)}") from None
    if length < 1:
        raise DecodeError("no video frames")
    indices = np.asarray(index_fn(length), dtype=np.int64)
    uniq, inverse = np.unique(indices, return_inverse=True)
    try:
        frames = decoder.get_frames_at(uniq.tolist()).data
    except Exception as e:
        raise DecodeError(f"torchcodec cannot read frames: {_short(e)}") from None
    return _expand(frames, uniq, inverse, indices), indices, length


BACKENDS = ("decord", "pyav", "torchcodec")


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
    import tempfile

    from .synthetic import write_video

    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "probe.mp4")
        write_video(probe, np.zeros((2, 16, 16, 3), np.uint8), 25, "libx264")
        try:
            VideoDecoder(probe).get_frames_at([1])
        except Exception as e:
            reason = "FFmpeg shared libraries (4-9) not found" if "load libtorchcodec" in str(e) else _short(e)
            return f"DATA.DECODING_BACKEND torchcodec cannot decode here: {reason}; use decord or pyav"
    return None


_LEADING_CODECS = ("h264", "hevc", "mpeg2video", "vvc")  # codecs whose keyframes may have leading frames


def has_open_gop(path: str) -> bool:
    """:func:`probe_open_gop`, remembered per file (path, size, modification time) in this process:
    a loader worker meets the same videos again every epoch."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return _open_gop_cached(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 17)
def _open_gop_cached(path: str, size: int, mtime_ns: int) -> bool:
    return probe_open_gop(path)


def probe_open_gop(path: str) -> bool:
    """Whether keyframes of the video have leading frames: frames after a keyframe in decoding
    order but shown before it, which refer to the previous group of pictures ("open GOP").

    decord does not decode those correctly when it seeks (frames around each such keyframe come
    out corrupted; ``tests/data/test_decode.py``), so rs3d reads such files with PyAV instead.
    Cheap (about the cost of opening the file): the container index is used to jump to the
    keyframes nearest the middle and the end, and the few packets after each are looked at
    without decoding. Leading frames come right after their keyframe in decoding order, and an
    encoder makes all its keyframes one way, so two probes find an open-GOP file.
    """
    try:
        container, stream = _open_video_stream(path, 1)
    except DecodeError:
        return False  # the reader reports the error
    try:
        if stream.codec_context.name not in _LEADING_CODECS or not container.duration:
            return False
        first_key = None
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                first_key = packet.pts
                break
        for fraction in (0.5, 1.0):
            container.seek(int(container.duration * fraction), backward=True, any_frame=False)
            key, looked = None, 0
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                if key is None:
                    if not packet.is_keyframe or packet.pts == first_key:
                        break  # the first GOP has no predecessor to lead into
                    key = packet.pts
                elif packet.is_keyframe or looked >= _MAX_LEADING:
                    break
                elif packet.pts < key:
                    return True
                else:
                    looked += 1
        return False
    except Exception:
        return False
    finally:
        container.close()


def _read(path: str, index_fn: IndexFn, backend: str, num_threads: int):
    if backend == "pyav":
        return _pyav_read(path, index_fn, num_threads)
    if backend not in BACKENDS:
        raise ValueError(f"DATA.DECODING_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    try:
        if backend == "torchcodec":
            return _torchcodec_read(path, index_fn, num_threads)
        result = _decord_read(path, index_fn, num_threads)
        if result is None:  # an open-GOP file decord would have to seek in
            return _pyav_read(path, index_fn, num_threads)
        return result
    except DecodeError as first:
        # decord gives up on files whose index over-reports frames, or that are partly broken;
        # PyAV serves the frames that do decode.
        try:
            return _pyav_read(path, index_fn, num_threads)
        except DecodeError as second:
            raise DecodeError(f"{first}; PyAV: {second}") from None


def read_frames(
    path: str,
    index_fn: IndexFn,
    backend: str = "decord",
    timeout_s: Optional[float] = None,
    num_threads: int = 1,
) -> Tuple[torch.Tensor, np.ndarray, int]:
    """Decode the frames ``index_fn(num_frames_in_video)`` asks for.

    Returns ``(frames uint8 [N, H, W, 3], indices [N], video_len)``; ``frames[i]`` is frame
    ``indices[i]`` (duplicates and any order allowed, each distinct frame decoded once). Raises
    :class:`DecodeError` with a one-line reason for a missing, empty, truncated or audio-only
    file, or one that takes longer than ``timeout_s`` seconds.
    """
    import os

    if not os.path.isfile(path):
        raise DecodeError("file not found")
    if os.path.getsize(path) == 0:
        raise DecodeError("empty file")
    if not timeout_s or timeout_s <= 0:
        return _read(path, index_fn, backend, num_threads)
    return run_with_timeout(lambda: _read(path, index_fn, backend, num_threads), timeout_s)


def run_with_timeout(fn: Callable, timeout_s: float):
    """``fn()`` in a daemon thread; :class:`DecodeError` if it has not returned in ``timeout_s``.

    A hung decoder thread cannot be killed, only abandoned; it is a daemon so it never blocks exit.
    """
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="rs3d-decode", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DecodeError(f"decoding took longer than {timeout_s:g} s (DATA.DECODE_TIMEOUT_S)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _short(e: BaseException) -> str:
    """First meaningful line of a decoder message (decord appends C++ stack traces)."""
    import re

    lines = [t for t in str(e).strip().splitlines() if t.strip()]
    line = lines[0] if lines else type(e).__name__
    line = re.sub(r"^\[[0-9:]+\] \S+:\d+: ", "", line)  # decord's "[time] file.cc:line: "
    return line[:200]
