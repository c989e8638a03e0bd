"""Class scores over a long video: one clip per sliding window, smoothed, summarised as segments.

Flow of :func:`sliding_window_scores`::

    PyAV, one sequential pass --frame i--> kept only if an open window samples it
        --resized (short side = crop size) and cropped at once--> crops buffer
    window k: frames [round(k * stride * fps), + window * fps), ``num_frames`` of them evenly
        spaced (at the default window = num_frames * sampling_rate / fps: the training stride)
        --complete--> batch --model, softmax, crops averaged--> scores[k]
    crops no open window needs are dropped

Memory is bounded by the frames of the windows open at once (window / stride of them), at the
crop size, whatever the length of the video: an hour of 1080p video never sits in memory. One
sequential pass is also the cheap way to read a whole long video: every read of
``rs3d.data.decode`` (decord or PyAV) indexes the whole file again before it seeks, which per
chunk of an hour-long video would cost more than the decoding. Frame ``i`` is the i-th frame of a
full decode, the indexing ``rs3d.data.decode`` is checked against.

Then :func:`smooth` (a centred moving average over windows), :func:`segments` (runs of windows
with the same top class; the boundary between two windows lies halfway between their centres)
and :func:`write_timeline` (JSON summary, CSV of every window's scores, PNG of the top classes
over time).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from rs3d.data import class_names_for, to_model_input
from rs3d.data import transforms as T
from rs3d.engine.precision import autocast

from ..errors import ConfigError, DataError, DecodeError
from .model import load_model

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- windows (pure)
@dataclass(frozen=True)
class Window:
    """One sliding window: ``span`` frames from ``start``, sampled at ``indices``."""

    start: int
    span: int
    indices: tuple

    def times(self, fps: float) -> Dict[str, float]:
        return {"start_s": self.start / fps, "end_s": (self.start + self.span) / fps,
                "center_s": (self.start + self.span / 2) / fps}


def window_frames(window_s: float, stride_s: float, fps: float) -> tuple:
    """(span, step) in frames of a ``window_s`` window moved by ``stride_s``; ConfigError if not > 0."""
    if not window_s > 0 or not stride_s > 0:
        raise ConfigError(f"window and stride must be > 0 seconds, got window {window_s:g} s, "
                          f"stride {stride_s:g} s")
    return max(1, int(round(window_s * fps))), stride_s * fps


def make_window(k: int, span: int, step: float, num_frames: int) -> Window:
    """Window ``k``: starts at frame ``round(k * step)``; ``num_frames`` indices evenly over ``span``."""
    start = int(round(k * step))
    offsets = (np.arange(num_frames, dtype=np.int64) * span) // num_frames
    return Window(start, span, tuple(int(start + o) for o in offsets))


def plan_windows(video_len: int, fps: float, window_s: float, stride_s: float,
                 num_frames: int) -> List[Window]:
    """Every window that fits in ``video_len`` frames (what the stream computes lazily)."""
    span, step = window_frames(window_s, stride_s, fps)
    out, k = [], 0
    while True:
        w = make_window(k, span, step, num_frames)
        if w.start + span > video_len:
            return out
        out.append(w)
        k += 1


def smooth(scores: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` windows (odd); the edges average what there is."""
    if width < 1 or width % 2 == 0:
        raise ConfigError(f"smoothing width must be an odd number of windows >= 1, got {width}")
    scores = np.asarray(scores, dtype=np.float64)
    if width == 1 or len(scores) == 0:
        return scores.copy()
    h = width // 2
    c = np.concatenate([np.zeros((1, scores.shape[1])), np.cumsum(scores, axis=0)])
    n = len(scores)
    lo = np.clip(np.arange(n) - h, 0, n)
    hi = np.clip(np.arange(n) + h + 1, 0, n)
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def segments(scores: np.ndarray, centers: Sequence[float], duration: float,
             class_names: Optional[Sequence[str]] = None) -> List[dict]:
    """Runs of consecutive windows with the same top class, in time order.

    A run spans from halfway between its first window's centre and the previous window's (0 for
    the first run) to halfway between its last window's centre and the next one's (the video's
    end for the last run). ``score`` is the run's mean score of its class.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return []
    top = scores.argmax(axis=1)
    out, begin = [], 0
    for j in range(1, len(top) + 1):
        if j == len(top) or top[j] != top[begin]:
            c = int(top[begin])
            start = 0.0 if begin == 0 else (centers[begin - 1] + centers[begin]) / 2
            end = duration if j == len(top) else (centers[j - 1] + centers[j]) / 2
            out.append({"start_s": start, "end_s": end, "class": c,
                        "name": class_names[c] if class_names else str(c),
                        "score": float(scores[begin:j, c].mean()), "windows": j - begin})
            begin = j
    return out


def top_segments(segs: Sequence[dict], k: int = 5) -> List[dict]:
    """The ``k`` segments with the most evidence (duration x mean score), best first."""
    def evidence(i):
        return (segs[i]["end_s"] - segs[i]["start_s"]) * segs[i]["score"]

    return [segs[i] for i in sorted(range(len(segs)), key=lambda i: (-evidence(i), i))[:k]]


# ----------------------------------------------------------------------------- streaming decode
def _open(path: str):
    import av

    if not os.path.isfile(path):
        raise DecodeError(f"{path}: file not found")
    try:
        container = av.open(path)
    except Exception as e:
        raise DecodeError(f"{path}: cannot open: {str(e).splitlines()[0][:200]}") from None
    if not container.streams.video:
        container.close()
        raise DecodeError(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if not fps > 0:
        container.close()
        raise DecodeError(f"{path}: the frame rate is unknown")
    return container, stream, fps


@dataclass
class TimelineScores:
    """What :func:`sliding_window_scores` computed for one video."""

    path: str
    fps: float
    num_frames: int                 # frames decoded
    windows: List[Window]
    scores: np.ndarray              # float64 [num_windows, num_classes], softmax
    window_s: float
    stride_s: float
    peak_buffered_frames: int = 0   # most resized frames held at once (the memory bound)
    warning: str = ""               # e.g. decoding stopped early at a broken packet
    extra: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def centers(self) -> List[float]:
        return [w.times(self.fps)["center_s"] for w in self.windows]


@torch.inference_mode()
def sliding_window_scores(
    model: Callable[[torch.Tensor], torch.Tensor],
    path: str,
    *,
    window_s: float,
    stride_s: float,
    num_frames: int,
    crop_size: int,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    num_crops: int = 1,
    batch_size: int = 8,
    device: torch.device = torch.device("cpu"),
    amp_dtype: torch.dtype = torch.float32,
    resize_chunk: int = 16,
    log_every_s: float = 30.0,
) -> TimelineScores:
    """Softmax scores of every window of ``path`` (see the module doc); crops are averaged.

    ``model`` maps float clips ``[B, 3, T, S, S]`` to logits ``[B, K]``. A window longer than
    the video is a :class:`DataError`; a file that cannot be opened a :class:`DecodeError`.
    """
    container, stream, fps = _open(path)
    span, step = window_frames(window_s, stride_s, fps)
    expected = int(stream.frames or 0)
    open_windows: deque = deque()       # windows started, not yet complete, in start order
    next_k = 0
    crops: Dict[int, torch.Tensor] = {}  # frame index -> uint8 [num_crops, 3, S, S]
    pending: List[tuple] = []            # (index, rgb ndarray) decoded, not yet resized
    windows: List[Window] = []
    batch: List[torch.Tensor] = []
    results: List[torch.Tensor] = []
    peak, decoded, warning = 0, 0, ""
    t0 = last_log = time.perf_counter()

    def flush_pending():
        if not pending:
            return
        frames = torch.from_numpy(np.stack([f for _, f in pending]))  # [n, H, W, 3]
        cut = T.short_side_crops(frames, crop_size, num_crops)      # [K, 3, n, S, S]
        for j, (i, _) in enumerate(pending):
            crops[i] = cut[:, :, j].clone()
        pending.clear()

    def run_batch():
        clips = torch.stack(batch).to(device)                           # [B, K, 3, T, S, S]
        b = clips.shape[0]
        x = to_model_input(clips.flatten(0, 1), mean, std)
        with autocast(device, amp_dtype):
            logits = model(x)
        results.append(logits.float().softmax(dim=1).view(b, num_crops, -1).mean(1).double().cpu())
        batch.clear()

    try:
        frame_iter = container.decode(stream)
        i = -1
        while True:
            try:
                frame = next(frame_iter)
            except StopIteration:
                break
            except Exception as e:  # a broken packet: keep what decoded, as the test's reader does
                warning = f"decoding stopped at frame {i + 1}: {str(e).splitlines()[0][:200]}"
                logger.warning("%s: %s", path, warning)
                break
            i += 1
            while True:  # open every window that starts at or before this frame
                w = make_window(next_k, span, step, num_frames)
                if w.start > i:
                    break
                open_windows.append(w)
                next_k += 1
            if any(i in w.indices for w in open_windows):
                pending.append((i, frame.to_ndarray(format="rgb24")))
                if len(pending) >= resize_chunk:
                    flush_pending()
            while open_windows and open_windows[0].start + span - 1 <= i:  # its last frame is in
                w = open_windows.popleft()
                flush_pending()
                batch.append(torch.stack([crops[j] for j in w.indices], dim=2))  # [K, 3, T, S, S]
                windows.append(w)
                if len(batch) >= batch_size:
                    run_batch()
                keep = open_windows[0].start if open_windows else i + 1
                for j in [j for j in crops if j < keep]:
                    del crops[j]
            peak = max(peak, len(crops) + len(pending))
            decoded = i + 1
            now = time.perf_counter()
            if log_every_s and now - last_log >= log_every_s:
                last_log = now
                rate = decoded / (now - t0)
                eta = f", ETA {(expected - decoded) / rate:.0f} s" if expected > decoded else ""
                logger.info("%s: %.0f s of video, %d windows, %.0f frames/s%s", path, decoded / fps,
                            len(windows), rate, eta)
        if batch:
            run_batch()
    finally:
        container.close()
    if not windows:
        raise DataError(f"{path}: the window ({window_s:g} s) is longer than the video "
                        f"({decoded / fps:.2f} s, {decoded} frames at {fps:g} fps)")
    scores = torch.cat(results).numpy()
    return TimelineScores(path, fps, decoded, windows, scores, window_s, stride_s, peak, warning)


# ----------------------------------------------------------------------------- outputs
def summarize(result: TimelineScores, class_names: Optional[Sequence[str]], smooth_width: int = 1,
              topk: int = 5, num_segments: int = 5) -> dict:
    """The JSON summary: video facts, per-window top-k (raw and smoothed), segments, top segments."""
    smoothed = smooth(result.scores, smooth_width)

    def name(c):
        return class_names[c] if class_names else str(c)

    def top(row):
        order = np.argsort(-row, kind="stable")[:topk]
        return [{"class": int(c), "name": name(int(c)), "score": float(row[c])} for c in order]

    segs = segments(smoothed, result.centers(), result.duration_s, class_names)
    return {
        "video": result.path, "fps": result.fps, "num_frames": result.num_frames,
        "duration_s": result.duration_s, "window_s": result.window_s, "stride_s": result.stride_s,
        "smooth_windows": smooth_width, "num_windows": len(result.windows),
        "warning": result.warning,
        "windows": [dict(w.times(result.fps), top=top(smoothed[j]), top_raw=top(result.scores[j]))
                    for j, w in enumerate(result.windows)],
        "segments": segs,
        "top_segments": top_segments(segs, num_segments),
    }


def timeline_csv(result: TimelineScores, smoothed: np.ndarray,
                 class_names: Optional[Sequence[str]]) -> str:
    """One row per window: times, top class, then the smoothed score of every class."""
    k = result.scores.shape[1]
    names = list(class_names) if class_names else [str(c) for c in range(k)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["start_s", "end_s", "center_s", "top_class", "top_name", "top_score"] + names)
    for j, win in enumerate(result.windows):
        t = win.times(result.fps)
        c = int(np.argmax(smoothed[j]))
        w.writerow([f"{t['start_s']:.3f}", f"{t['end_s']:.3f}", f"{t['center_s']:.3f}", c, names[c],
                    f"{smoothed[j, c]:.6f}"] + [f"{v:.6f}" for v in smoothed[j]])
    return buf.getvalue()


def plot_timeline(result: TimelineScores, smoothed: np.ndarray, path: str,
                  class_names: Optional[Sequence[str]], num_classes: int = 5) -> None:
    """PNG: the smoothed score of the ``num_classes`` classes that peak highest, against time,
    with a band at the bottom coloured by each segment's top class."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = smoothed.shape[1]
    names = list(class_names) if class_names else [str(c) for c in range(k)]
    shown = list(np.argsort(-smoothed.max(axis=0), kind="stable")[:num_classes])
    t = result.centers()
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = {}
    for c in shown:
        (line,) = ax.plot(t, smoothed[:, c], marker="." if len(t) < 60 else None, label=names[c])
        colours[int(c)] = line.get_color()
    for seg in segments(smoothed, t, result.duration_s, class_names):
        ax.axvspan(seg["start_s"], seg["end_s"], ymin=0, ymax=0.03,
                   color=colours.get(seg["class"], "0.6"), linewidth=0)
    ax.set_xlim(0, result.duration_s)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (smoothed)")
    ax.set_title(f"{os.path.basename(result.path)}: {len(t)} windows of {result.window_s:g} s "
                 f"every {result.stride_s:g} s")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def output_stem(out_dir: str, video: str) -> str:
    return os.path.join(out_dir, os.path.splitext(os.path.basename(video))[0] + ".timeline")


def write_timeline(result: TimelineScores, out_dir: str, class_names: Optional[Sequence[str]],
                   smooth_width: int = 1, topk: int = 5, plot_classes: int = 5) -> dict:
    """Write ``<video>.timeline.json``, ``.csv`` and ``.png`` under ``out_dir``; returns the summary
    with ``files``."""
    os.makedirs(out_dir, exist_ok=True)
    summary = summarize(result, class_names, smooth_width, topk)
    smoothed = smooth(result.scores, smooth_width)
    stem = output_stem(out_dir, result.path)
    files = {"json": stem + ".json", "csv": stem + ".csv", "png": stem + ".png"}
    summary["files"] = files
    with open(files["csv"], "w", encoding="utf-8", newline="") as f:
        f.write(timeline_csv(result, smoothed, class_names))
    plot_timeline(result, smoothed, files["png"], class_names, plot_classes)
    with open(files["json"], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    return summary


def format_summary(summary: dict) -> str:
    """A few lines for the console: the video, then its top segments."""
    lines = [f"{summary['video']}: {summary['num_windows']} windows over {summary['duration_s']:.1f} s"]
    for s in summary["top_segments"]:
        lines.append(f"  {s['start_s']:8.2f} - {s['end_s']:8.2f} s  {s['score']:.3f}  {s['name']}")
    if summary.get("warning"):
        lines.append(f"  warning: {summary['warning']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- from a config
def run_timeline(cfg, videos: Sequence[str], *, window_s: float, stride_s: Optional[float] = None,
                 smooth_width: int = 3, out_dir: str = "", topk: int = 5, plot_classes: int = 5,
                 num_crops: int = 1) -> List[dict]:
    """Timelines of ``videos`` with ``cfg``'s model, weights and clip shape; one summary each
    (``{"video", "error"}`` for a video that cannot be read, the others still done).

    ``stride_s`` defaults to half the window; outputs go to ``out_dir`` (default
    ``OUTPUT_DIR/timeline``). Clips are ``DATA.NUM_FRAMES`` frames at ``DATA.TEST_CROP_SIZE``,
    ``num_crops`` crops along the long side (1: the centre), as the test cuts them.
    """
    stride_s = window_s / 2 if stride_s is None else stride_s
    window_frames(window_s, stride_s, 1.0)  # bad numbers fail before the model loads
    smooth(np.zeros((0, 1)), smooth_width)
    loaded = load_model(cfg)
    names = class_names_for(cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES)
    out_dir = out_dir or os.path.join(cfg.OUTPUT_DIR, "timeline")
    summaries = []
    for video in videos:
        try:
            result = sliding_window_scores(
                loaded.model, video, window_s=window_s, stride_s=stride_s,
                num_frames=cfg.DATA.NUM_FRAMES, crop_size=cfg.DATA.TEST_CROP_SIZE, mean=cfg.DATA.MEAN,
                std=cfg.DATA.STD, num_crops=num_crops, batch_size=max(1, cfg.TEST.BATCH_SIZE // num_crops),
                device=loaded.device, amp_dtype=loaded.amp_dtype)
        except DecodeError as e:
            summaries.append({"video": video, "error": str(e)})
            continue
        summaries.append(dict(write_timeline(result, out_dir, names, smooth_width, topk, plot_classes),
                              error=""))
    return summaries

