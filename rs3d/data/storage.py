"""How training videos are stored, and the re-encoding that stores them so; the per-file check.

``rs3d-prepare-kinetics`` runs :func:`prepare_video` on every file of a dataset: the file is
checked (:func:`check_video`: first, middle and last frames decode), re-encoded as a
:class:`Storage` says (:func:`reencode`) and the copy checked again. The re-encode reads the
source through :class:`rs3d.data.video.sequential.FrameStream`, the one decode path of rs3d: the
stream ffmpeg picks, every decoded frame, turned upright by the display matrix (a phone video is
stored upright, its copy carrying no matrix).
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import DataError, DecodeError
from .decode import read_frames
from .video.sequential import FrameStream

# --codec name -> (PyAV encoder, pixel format). Measured (BENCHMARKS.md): mpeg4 decodes fastest,
# hevc is smallest and slowest; MJPEG (every frame a keyframe) lost on size and speed to both.
CODECS = {"h264": ("libx264", "yuv420p"), "hevc": ("libx265", "yuv420p"), "mpeg4": ("mpeg4", "yuv420p")}


def check_video(path: str, full: bool = False, backend: str = "pyav", timeout_s: float = 120) -> str:
    """'' if the video decodes (its first, middle and last frames; ``full``: every frame), else the reason."""
    try:
        if full:
            read_frames(path, np.arange, backend=backend, timeout_s=timeout_s)
        else:
            read_frames(path, lambda n: np.unique([0, n // 2, n - 1]), backend=backend, timeout_s=timeout_s)
        return ""
    except DecodeError as e:
        return str(e)
    except Exception as e:  # any decoder surprise is a broken file, not a crash of the caller
        return f"{type(e).__name__}: {e}"


@dataclasses.dataclass(frozen=True)
class Storage:
    """How re-encoded copies are stored: what trades disk space against decoding cost per clip.

    ``short_side`` 0 keeps the size; ``fps`` 0 keeps the rate (a rate above the source's is never
    used: frames are not invented); ``gop`` is the keyframe interval in stored frames (a clip
    decodes from the keyframe at or before its first frame); ``tune`` "fastdecode" makes x264
    leave out CABAC and the deblocking filter (cheaper to decode, larger files).
    """

    short_side: int = 0
    fps: float = 0.0
    gop: int = 32
    codec: str = "h264"
    crf: int = 23
    preset: str = "veryfast"
    tune: str = ""
    bframes: int = -1  # -1: the encoder's default

    def __post_init__(self):
        if self.codec not in CODECS:
            raise DataError(f"--codec must be one of {', '.join(CODECS)}; got {self.codec!r}")
        if self.short_side < 0 or self.fps < 0 or self.gop < 1:
            raise DataError(
                f"--short-side and --fps must be >= 0 and --gop >= 1; got {self.short_side}, {self.fps:g}, {self.gop}"
            )
        if self.tune and self.codec not in ("h264", "hevc"):
            raise DataError(f"--tune applies to h264 and hevc, not {self.codec}")

    def encoder_options(self) -> dict:
        encoder, _ = CODECS[self.codec]
        if encoder in ("libx264", "libx265"):
            opts = {"crf": str(self.crf), "preset": self.preset, "g": str(self.gop)}
            if self.tune:
                opts["tune"] = self.tune
            if self.bframes >= 0:
                opts["bf"] = str(self.bframes)
            if encoder == "libx265":  # keyframes exactly every gop frames; quiet log
                opts["x265-params"] = f"keyint={self.gop}:min-keyint={self.gop}:log-level=error"
            return opts
        # mpeg4 (part 2): a constant quantiser (2-31, lower is better), --crf mapped onto it
        q = str(quantiser(self.crf))
        opts = {"qmin": q, "qmax": q, "g": str(self.gop)}
        if self.bframes >= 0:
            opts["bf"] = str(self.bframes)
        return opts


def quantiser(crf: int) -> int:
    """The mpeg4 quantiser that --crf stands for (crf 23 -> 4, 18 -> 3, 28 -> 5)."""
    return max(2, min(31, round(crf / 5.5)))


def _frame_time(frame, rate: Fraction, i: int) -> Fraction:
    if frame.pts is None or frame.time_base is None:
        return Fraction(i) / rate
    return Fraction(frame.pts) * Fraction(frame.time_base)


def _timed(frames, rate: Fraction):
    """``(seconds since the first frame, frame)`` of each ``(index, frame)``."""
    first = None
    for i, f in frames:
        t = _frame_time(f, rate, i)
        first = t if first is None else first
        yield t - first, f


def frames_at_rate(frames, fps: Fraction):
    """The source frames shown at ``fps``: output frame ``k`` is the source frame nearest in time
    to ``k / fps`` (ffmpeg's ``fps`` filter, rounding to nearest). ``frames`` yields
    ``(time in seconds from the first frame, frame)``."""
    k, prev = 0, None
    for t, frame in frames:
        if prev is not None:
            middle = (prev[0] + t) / 2
            while Fraction(k) / fps < middle:
                yield prev[1]
                k += 1
        prev = (t, frame)
    if prev is not None:
        while Fraction(k) / fps <= prev[0]:
            yield prev[1]
            k += 1


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def reencode(src: str, dst: str, short_side: int = 0, crf: int = 23, storage: Optional[Storage] = None) -> None:
    """Re-encode ``src`` to ``dst`` as ``storage`` says (short side resized, never enlarged; frame
    rate lowered, never raised; constant frame rate; no audio; upright, as ffmpeg shows it)."""
    import av

    storage = storage or Storage(short_side=short_side, crf=crf)
    encoder, pix_fmt = CODECS[storage.codec]
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    tmp = dst + ".part" + Path(dst).suffix
    with FrameStream(src) as source, av.open(tmp, "w") as out:
        src_rate = Fraction(source.stream.average_rate or 30)
        rate = src_rate
        if storage.fps and Fraction(storage.fps).limit_denominator(1001) < src_rate:
            rate = Fraction(storage.fps).limit_denominator(1001)
        frames = iter(source)
        if rate != src_rate:
            frames = enumerate(frames_at_rate(_timed(frames, src_rate), rate))
        vout, size = None, (0, 0)
        for i, frame in frames:
            if vout is None:  # sized from the first frame, once its orientation is known
                w, h = source.shown_size(frame.width, frame.height)
                scale = min(1.0, storage.short_side / min(w, h)) if storage.short_side else 1.0
                size = (_even(w * scale), _even(h * scale))
                vout = out.add_stream(encoder, rate=rate)
                vout.width, vout.height, vout.pix_fmt = size[0], size[1], pix_fmt
                vout.options = storage.encoder_options()
            frame = _shown(source, frame, size, pix_fmt)
            frame.pts, frame.time_base = i, Fraction(1, 1) / rate  # constant frame rate, as decoders count
            for packet in vout.encode(frame):
                out.mux(packet)
        if vout is None:
            raise DecodeError(f"{src}: no frame decodes")
        for packet in vout.encode():
            out.mux(packet)
    os.replace(tmp, dst)


def _shown(source: FrameStream, frame, size: Tuple[int, int], pix_fmt: str):
    """``frame`` at ``size`` in ``pix_fmt``, turned as shown (through RGB only when it must turn)."""
    import av

    if source.orientation is None or source.orientation.identity:
        return frame.reformat(width=size[0], height=size[1], format=pix_fmt)
    upright = av.VideoFrame.from_ndarray(source.rgb(frame), format="rgb24")
    return upright.reformat(width=size[0], height=size[1], format=pix_fmt)


def prepare_video(src: str, dst: str, storage: Optional[Storage], full: bool = False, backend: str = "pyav") -> str:
    """Check ``src``; with ``dst`` and ``storage``, re-encode it there and check the copy.
    '' when all is well, else the reason the file is left out."""
    reason = check_video(src, full, backend)
    if reason or not dst:
        return reason
    try:
        reencode(src, dst, storage=storage)
    except Exception as e:
        return f"re-encoding failed: {type(e).__name__}: {e}"
    reason = check_video(dst, full, backend)
    return f"re-encoded copy does not decode: {reason}" if reason else ""
