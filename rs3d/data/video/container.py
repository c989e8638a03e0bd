"""What PyAV sees in a file: the stream ffmpeg would pick, and the packet index.

Both are read without decoding. The packet index tells whether frame ``i`` (the ``i``-th frame
ffmpeg decodes) is the frame whose time is the ``i``-th smallest among the packets, and so
whether a reader may seek by index and trust a frame count; :attr:`PacketIndex.exact` is False
where only a full decode can tell (leading packets that cannot decode, no timestamps, duplicate
timestamps, a container that lists more frames than it holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from ...errors import DecodeError
from .guard import short
from .orientation import display_matrix

# Leading frames of a keyframe are shown at most this many frames before it (H.264 allows 16
# B-frames).
MAX_LEADING = 16
LEADING_CODECS = ("h264", "hevc", "mpeg2video", "vvc")  # codecs whose keyframes may have leading frames


def _disposition(stream, name: str) -> bool:
    import av

    return bool(int(stream.disposition) & int(getattr(av.stream.Disposition, name)))


def is_attached_picture(stream) -> bool:
    """Cover art stored as a one-frame video stream."""
    return _disposition(stream, "attached_pic")


def default_video_stream(container):
    """The video stream ffmpeg's command line picks when told nothing: the largest picture, with
    a bonus for the stream marked default, attached pictures last; the first of equals.

    (Not ``av_find_best_stream``, which prefers the higher bit rate: a small preview track can
    win there.) None if the file has no video stream.
    """
    best, best_score = None, -1
    for s in container.streams.video:
        if is_attached_picture(s):
            score = 1
        else:
            cc = s.codec_context
            score = 100_000_000 + (cc.width or 0) * (cc.height or 0) + 5_000_000 * _disposition(s, "default")
        if score > best_score:
            best, best_score = s, score
    return best


def open_video(path: str, threads: int = 0):
    """Container and its default video stream; ``threads`` decoder threads (0 = FFmpeg's choice)."""
    import av

    try:
        container = av.open(path)
    except Exception as e:
        raise DecodeError(f"cannot open: {short(e)}") from None
    stream = default_video_stream(container)
    if stream is None:
        container.close()
        raise DecodeError("no video stream")
    if threads == 1:
        stream.codec_context.thread_count = 1  # parallelism comes from the loader's workers
    else:
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
    return container, stream


def frame_rate(stream) -> float:
    """Frames per second of ``stream``: its average rate (what PySlowFast reads), else the rate
    FFmpeg guesses, else the base rate; 0.0 when the container gives none."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate and rate > 0 else 0.0


def stream_timing(container, stream) -> Tuple[float, float]:
    """``(frames per second, seconds)`` of ``stream``: :func:`frame_rate`, and its duration, else
    the container's, else frames / rate (0.0 when nothing says)."""
    fps = frame_rate(stream)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000
    elif stream.frames and fps:
        seconds = stream.frames / fps
    else:
        seconds = 0.0
    return fps, seconds


@dataclass
class PacketIndex:
    """One pass over a stream's packets, in decoding order, without decoding."""

    order: Optional[List[int]]  # times of the frames that are shown, sorted; None if one has no time
    keys: List[int]  # times of the shown keyframes
    shown: int  # non-empty packets not marked discard (edit lists hide the others)
    exact: bool  # frame i is the i-th time of ``order`` and there are ``shown`` frames
    open_gop: bool  # a keyframe after the first has leading frames (see has_open_gop)
    first_key: object = None  # the first packet when it is a keyframe (decoded by the probe)

    @property
    def length(self) -> Optional[int]:
        """The number of frames ffmpeg decodes, when the index proves it; None otherwise."""
        return self.shown if self.exact else None


def index_packets(container, stream, keep_first_key: bool = False) -> PacketIndex:
    """Read every packet of ``stream`` (no decoding) and judge whether the index can be trusted.

    ``exact`` needs: every shown packet timed, no two at one time, the first packet a keyframe
    shown no later than any other (else frames before it may not decode, or be dropped), and a
    container frame count, where there is one, equal to the packets found.
    """
    pts: List[int] = []
    keys: List[int] = []
    shown = packets = 0
    timed, first_ok, first, min_pts, first_packet = True, False, None, None, None
    key_pts, looked, open_gop = None, 0, False
    leading_codec = stream.codec_context.name in LEADING_CODECS
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        packets += 1
        t = packet.pts
        if first is None:
            first = t
            first_ok = bool(packet.is_keyframe) and t is not None
            if first_ok and keep_first_key:
                first_packet = packet
        if t is not None:
            min_pts = t if min_pts is None else min(min_pts, t)
        # open GOP: a packet after a (non-first) keyframe, within MAX_LEADING, shown before it
        if packet.is_keyframe:
            key_pts = t if packets > 1 else None
            looked = 0
        elif key_pts is not None and t is not None and looked < MAX_LEADING:
            looked += 1
            if leading_codec and t < key_pts:
                open_gop = True
        if packet.is_discard:  # demuxed but never shown (e.g. cut by an edit list)
            continue
        shown += 1
        if t is None:
            timed = False
            continue
        pts.append(int(t))
        if packet.is_keyframe:
            keys.append(int(t))
    order = sorted(pts) if timed else None
    header = int(stream.frames or 0)
    exact = (
        order is not None
        and len(set(order)) == len(order)
        and first_ok
        and min_pts == first
        and (header == 0 or header == packets)
        and shown > 0
    )
    return PacketIndex(order, keys, shown, exact, open_gop, first_packet)


def first_frame_matrix(stream, packet) -> Tuple[bool, Optional[tuple]]:
    """``(decoded, display matrix)`` of the frame a keyframe packet decodes to, flushing after it."""
    try:
        frames = list(stream.decode(packet)) + list(stream.decode(None))
    except Exception:
        return False, None
    if not frames:
        return False, None
    return True, display_matrix(frames[0])


def first_shown_frame_matrix(path: str, max_packets: int = 256) -> Tuple[bool, Optional[tuple]]:
    """``(decoded, display matrix)`` of the first frame a decode from the start gives (within
    ``max_packets`` packets, then a flush), on a fresh container: for a stream whose first packet is
    not a timed keyframe (ffmpeg drops what cannot decode and shows the rest; a raw stream has no
    times and may not seek)."""
    try:
        container, stream = open_video(path, 1)
    except DecodeError:
        return False, None
    try:
        for i, packet in enumerate(container.demux(stream)):
            if i >= max_packets:
                break
            try:
                frames = list(stream.decode(packet))
            except Exception:  # leading frames without their reference
                continue
            if frames:
                return True, display_matrix(frames[0])
        frames = list(stream.decode(None))
        return (True, display_matrix(frames[0])) if frames else (False, None)
    except Exception:
        return False, None
    finally:
        container.close()
