"""Class scores over a long video: one clip per sliding window, smoothed, summarised as segments.

Flow of :func:`sliding_window_scores`::

    FrameStream, one sequential pass --frame i (as shown)--> kept only if an open window samples it
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
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

from rs3d.data import to_model_input
from rs3d.data import transforms as T
from rs3d.data.video.sequential import FrameStream
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
        return {
            "start_s": self.start / fps,
            "end_s": (self.start + self.span) / fps,
            "center_s": (self.start + self.span / 2) / fps,
        }


def window_frames(window_s: float, stride_s: float, fps: float) -> tuple:
    """(span, step) in frames of a ``window_s`` window moved by ``stride_s``; ConfigError if not > 0."""
    if not window_s > 0 or not stride_s > 0:
        raise ConfigError(f"window and stride must be > 0 seconds, got window {window_s:g} s, stride {stride_s:g} s")
    return max(1, int(round(window_s * fps))), stride_s * fps


def make_window(k: int, span: int, step: float, num_frames: int) -> Window:
    """Window ``k``: starts at frame ``round(k * step)``; ``num_frames`` indices evenly over ``span``."""
    start = int(round(k * step))
    offsets = (np.arange(num_frames, dtype=np.int64) * span) // num_frames
    return Window(start, span, tuple(int(start + o) for o in offsets))


def plan_windows(video_len: int, fps: float, window_s: float, stride_s: float, num_frames: int) -> List[Window]:
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


def segments(
    scores: np.ndarray, centers: Sequence[float], duration: float, class_names: Optional[Sequence[str]] = None
) -> List[dict]:
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
            out.append(
                {
                    "start_s": start,
                    "end_s": end,
                    "class": c,
                    "name": class_names[c] if class_names else str(c),
                    "score": float(scores[begin:j, c].mean()),
                    "windows": j - begin,
                }
            )
            begin = j
    return out


def top_segments(segs: Sequence[dict], k: int = 5) -> List[dict]:
    """The ``k`` segments with the most evidence (duration x mean score), in time order."""

    def evidence(i):
        return (segs[i]["end_s"] - segs[i]["start_s"]) * segs[i]["score"]

    best = sorted(range(len(segs)), key=lambda i: (-evidence(i), i))[:k]
    return [segs[i] for i in sorted(best)]


# ----------------------------------------------------------------------------- streaming decode
@dataclass
class TimelineScores:
    """What :func:`sliding_window_scores` computed for one video."""

    path: str
    fps: float
    num_frames: int  # frames decoded
    windows: List[Window]
    scores: np.ndarray  # float64 [num_windows, num_classes], softmax or sigmoids
    window_s: float
    stride_s: float
    peak_buffered_frames: int = 0  # most resized frames held at once (the memory bound)
    warning: str = ""  # e.g. decoding stopped early at a broken packet
    extra: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def centers(self) -> List[float]:
        return [w.times(self.fps)["center_s"] for w in self.windows]


class _OpenWindows:
    """The windows started and not yet complete, opened lazily as frames arrive, in start order."""

    def __init__(self, span: int, step: float, num_frames: int):
        self.span, self.step, self.num_frames = span, step, num_frames
        self.open: deque = deque()
        self.next_k = 0

    def advance(self, i: int) -> None:
        """Open every window that starts at or before frame ``i``."""
        while True:
            w = make_window(self.next_k, self.span, self.step, self.num_frames)
            if w.start > i:
                return
            self.open.append(w)
            self.next_k += 1

    def samples(self, i: int) -> bool:
        return any(i in w.indices for w in self.open)

    def complete(self, i: int) -> Iterator[Window]:
        """Close the windows whose last frame is ``i`` or earlier, one at a time (lazily: the
        caller takes each one's frames before the next is closed)."""
        while self.open and self.open[0].start + self.span - 1 <= i:
            yield self.open.popleft()

    def first_needed(self, i: int) -> int:
        """The first frame an open window (or, with none open, a later one) may still need."""
        return self.open[0].start if self.open else i + 1


class _CropBuffer:
    """The frames open windows sample, resized and cropped in chunks of ``chunk`` as the test cuts
    them (uint8 ``[num_crops, 3, S, S]`` per frame); dropped once no window needs them."""

    def __init__(self, crop_size: int, num_crops: int, chunk: int):
        self.crop_size, self.num_crops, self.chunk = crop_size, num_crops, chunk
        self.crops: Dict[int, torch.Tensor] = {}
        self.pending: List[tuple] = []  # (index, rgb ndarray) decoded, not yet resized

    def add(self, i: int, rgb: np.ndarray) -> None:
        self.pending.append((i, rgb))
        if len(self.pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        frames = torch.from_numpy(np.stack([f for _, f in self.pending]))  # [n, H, W, 3]
        cut = T.short_side_crops(frames, self.crop_size, self.num_crops)  # [K, 3, n, S, S]
        for j, (i, _) in enumerate(self.pending):
            self.crops[i] = cut[:, :, j].clone()
        self.pending.clear()

    def clip(self, w: Window) -> torch.Tensor:
        """The crops of window ``w``: ``[K, 3, T, S, S]``."""
        self.flush()
        return torch.stack([self.crops[j] for j in w.indices], dim=2)

    def drop_before(self, keep: int) -> None:
        for j in [j for j in self.crops if j < keep]:
            del self.crops[j]

    def __len__(self) -> int:
        return len(self.crops) + len(self.pending)


class _BatchScorer:
    """Clips run through the model ``batch_size`` at a time; softmax (or per-class sigmoids,
    ``activation="sigmoid"``) averaged over the crops."""

    def __init__(
        self,
        model,
        mean,
        std,
        num_crops: int,
        batch_size: int,
        device: torch.device,
        amp_dtype: torch.dtype,
        activation: str = "softmax",
    ):
        self.model, self.mean, self.std, self.activation = model, mean, std, activation
        self.num_crops, self.batch_size, self.device, self.amp_dtype = num_crops, batch_size, device, amp_dtype
        self.batch: List[torch.Tensor] = []
        self.results: List[torch.Tensor] = []

    def add(self, clip: torch.Tensor) -> None:
        self.batch.append(clip)
        if len(self.batch) >= self.batch_size:
            self.run()

    def run(self) -> None:
        if not self.batch:
            return
        clips = torch.stack(self.batch).to(self.device)  # [B, K, 3, T, S, S]
        x = to_model_input(clips.flatten(0, 1), self.mean, self.std)
        with autocast(self.device, self.amp_dtype):
            logits = self.model(x)
        logits = logits.float()
        probs = logits.sigmoid() if self.activation == "sigmoid" else logits.softmax(dim=1)
        probs = probs.view(clips.shape[0], self.num_crops, -1).mean(1)
        self.results.append(probs.double().cpu())
        self.batch.clear()

    def scores(self) -> np.ndarray:
        self.run()
        return torch.cat(self.results).numpy()


class _Progress:
    """A log line every ``every_s`` seconds: video time done, windows, decoding rate, ETA."""

    def __init__(self, path: str, fps: float, expected: int, every_s: float):
        self.path, self.fps, self.expected, self.every_s = path, fps, expected, every_s
        self.t0 = self.last = time.perf_counter()

    def update(self, decoded: int, windows: int) -> None:
        now = time.perf_counter()
        if not self.every_s or now - self.last < self.every_s:
            return
        self.last = now
        rate = decoded / (now - self.t0)
        eta = f", ETA {(self.expected - decoded) / rate:.0f} s" if self.expected > decoded else ""
        logger.info(
            "%s: %.0f s of video, %d windows, %.0f frames/s%s", self.path, decoded / self.fps, windows, rate, eta
        )


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
    autorotate: bool = True,
    activation: str = "softmax",
) -> TimelineScores:
    """Softmax (or, ``activation="sigmoid"``, per-class sigmoid) scores of every window of ``path``
    (see the module doc); crops are averaged.

    ``model`` maps float clips ``[B, 3, T, S, S]`` to logits ``[B, K]``. Frames are those
    :class:`FrameStream` gives: the stream ffmpeg picks, turned upright by the display matrix
    (``autorotate``), as every other reader of rs3d shows them. A window longer than the video is
    a :class:`DataError`; a file that cannot be opened a :class:`DecodeError`.
    """
    with FrameStream(path, autorotate=autorotate) as source:
        fps = source.fps
        if not fps > 0:
            raise DecodeError(f"{path}: the frame rate is unknown")
        span, step = window_frames(window_s, stride_s, fps)
        windows = _OpenWindows(span, step, num_frames)
        buffer = _CropBuffer(crop_size, num_crops, resize_chunk)
        scorer = _BatchScorer(model, mean, std, num_crops, batch_size, device, amp_dtype, activation)
        progress = _Progress(path, fps, source.header_frames, log_every_s)
        done: List[Window] = []
        peak = 0
        for i, frame in source:
            windows.advance(i)
            if windows.samples(i):
                buffer.add(i, source.rgb(frame))
            for w in windows.complete(i):
                scorer.add(buffer.clip(w))
                done.append(w)
                buffer.drop_before(windows.first_needed(i))
            peak = max(peak, len(buffer))
            progress.update(i + 1, len(done))
        decoded, warning = source.decoded, source.warning
    if warning:
        logger.warning("%s: %s", path, warning)
    if not done:
        raise DataError(
            f"{path}: the window ({window_s:g} s) is longer than the video "
            f"({decoded / fps:.2f} s, {decoded} frames at {fps:g} fps)"
        )
    return TimelineScores(path, fps, decoded, done, scorer.scores(), window_s, stride_s, peak, warning)


# ----------------------------------------------------------------------------- outputs
def summarize(
    result: TimelineScores,
    class_names: Optional[Sequence[str]],
    smooth_width: int = 1,
    topk: int = 5,
    num_segments: int = 5,
) -> dict:
    """The JSON summary: video facts, per-window top-k (raw and smoothed), segments, top segments."""
    smoothed = smooth(result.scores, smooth_width)

    def name(c):
        return class_names[c] if class_names else str(c)

    def top(row):
        order = np.argsort(-row, kind="stable")[:topk]
        return [{"class": int(c), "name": name(int(c)), "score": float(row[c])} for c in order]

    segs = segments(smoothed, result.centers(), result.duration_s, class_names)
    return {
        "video": result.path,
        "fps": result.fps,
        "num_frames": result.num_frames,
        "duration_s": result.duration_s,
        "window_s": result.window_s,
        "stride_s": result.stride_s,
        "smooth_windows": smooth_width,
        "num_windows": len(result.windows),
        "warning": result.warning,
        "windows": [
            dict(w.times(result.fps), top=top(smoothed[j]), top_raw=top(result.scores[j]))
            for j, w in enumerate(result.windows)
        ],
        "segments": segs,
        "top_segments": top_segments(segs, num_segments),
    }


def timeline_csv(result: TimelineScores, smoothed: np.ndarray, class_names: Optional[Sequence[str]]) -> str:
    """One row per window: times, top class, then the smoothed score of every class."""
    k = result.scores.shape[1]
    names = list(class_names) if class_names else [str(c) for c in range(k)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["start_s", "end_s", "center_s", "top_class", "top_name", "top_score"] + names)
    for j, win in enumerate(result.windows):
        t = win.times(result.fps)
        c = int(np.argmax(smoothed[j]))
        w.writerow(
            [f"{t['start_s']:.3f}", f"{t['end_s']:.3f}", f"{t['center_s']:.3f}", c, names[c], f"{smoothed[j, c]:.6f}"]
            + [f"{v:.6f}" for v in smoothed[j]]
        )
    return buf.getvalue()


def plot_timeline(
    result: TimelineScores, smoothed: np.ndarray, path: str, class_names: Optional[Sequence[str]], num_classes: int = 5
) -> None:
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
        ax.axvspan(seg["start_s"], seg["end_s"], ymin=0, ymax=0.03, color=colours.get(seg["class"], "0.6"), linewidth=0)
    ax.set_xlim(0, result.duration_s)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (smoothed)")
    ax.set_title(
        f"{os.path.basename(result.path)}: {len(t)} windows of {result.window_s:g} s every {result.stride_s:g} s"
    )
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def output_stem(out_dir: str, video: str) -> str:
    return os.path.join(out_dir, os.path.splitext(os.path.basename(video))[0] + ".timeline")


def write_timeline(
    result: TimelineScores,
    out_dir: str,
    class_names: Optional[Sequence[str]],
    smooth_width: int = 1,
    topk: int = 5,
    plot_classes: int = 5,
) -> dict:
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
    """A few lines for the console: the video, then its top segments in time order."""
    lines = [f"{summary['video']}: {summary['num_windows']} windows over {summary['duration_s']:.1f} s"]
    for s in summary["top_segments"]:
        lines.append(f"  {s['start_s']:8.2f} - {s['end_s']:8.2f} s  {s['score']:.3f}  {s['name']}")
    if summary.get("warning"):
        lines.append(f"  warning: {summary['warning']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- from a config
# A window whose frame spacing differs from the training clip's by more than this factor warns.
SPACING_TOLERANCE = 1.25


def trained_spacing_s(cfg, fps: float) -> Optional[float]:
    """Seconds between the frames of a training clip (``DATA.SAMPLING_RATE`` frames at
    ``DATA.TARGET_FPS``, else at the video's ``fps``); None for segment sampling (no fixed span)."""
    if cfg.DATA.SAMPLING != "dense":
        return None
    return cfg.DATA.SAMPLING_RATE / (cfg.DATA.TARGET_FPS or fps)


def trained_window_s(cfg, fps: float) -> Optional[float]:
    """The span of a training clip in seconds (``NUM_FRAMES`` x the spacing): the default window."""
    spacing = trained_spacing_s(cfg, fps)
    return None if spacing is None else cfg.DATA.NUM_FRAMES * spacing


def spacing_warning(cfg, window_s: float, fps: float) -> str:
    """A warning when ``window_s`` spreads the clip's frames more than ~25% wider or narrower than
    training did (the model then sees motion at another speed), else ""."""
    trained = trained_spacing_s(cfg, fps)
    if trained is None:
        return ""
    spacing = window_s / cfg.DATA.NUM_FRAMES
    ratio = spacing / trained
    if max(ratio, 1 / ratio) <= SPACING_TOLERANCE:
        return ""
    return (
        f"--window {window_s:g} s puts the {cfg.DATA.NUM_FRAMES} frames {spacing:.3g} s apart; the model was "
        f"trained on frames {trained:.3g} s apart ({ratio:.2g}x; its clip spans "
        f"{trained_window_s(cfg, fps):.3g} s, the default window): scores may be meaningless"
    )


def video_fps(path: str) -> float:
    """The frame rate the timeline's stream reads ``path`` at (only the header is read)."""
    with FrameStream(path) as source:
        return source.fps


def run_timeline(
    cfg,
    videos: Sequence[str],
    *,
    window_s: Optional[float] = None,
    stride_s: Optional[float] = None,
    smooth_width: int = 3,
    out_dir: str = "",
    topk: int = 5,
    plot_classes: int = 5,
    num_crops: int = 1,
) -> List[dict]:
    """Timelines of ``videos`` with ``cfg``'s model, weights and clip shape; one summary each
    (``{"video", "error"}`` for a video that cannot be read, the others still done).

    ``window_s`` defaults to the training clip's span (:func:`trained_window_s`); a window that
    changes the frame spacing by more than ~25% is done but warned about (log and the JSON's
    ``warning``). ``stride_s`` defaults to half the window; outputs go to ``out_dir`` (default
    ``OUTPUT_DIR/timeline``). Clips are ``DATA.NUM_FRAMES`` frames at ``DATA.TEST_CROP_SIZE``,
    ``num_crops`` crops along the long side (1: the centre), as the test cuts them; scored with the
    run's activation (a sigmoid per class with ``DATA.MULTI_LABEL``).
    """
    if window_s is None and cfg.DATA.SAMPLING != "dense":
        raise ConfigError(f"DATA.SAMPLING {cfg.DATA.SAMPLING!r}: training clips have no fixed span; give --window")
    if window_s is not None:
        window_frames(window_s, window_s / 2 if stride_s is None else stride_s, 1.0)  # fail before loading
    elif stride_s is not None:
        window_frames(1.0, stride_s, 1.0)
    smooth(np.zeros((0, 1)), smooth_width)
    loaded = load_model(cfg)
    names = loaded.class_names
    out_dir = out_dir or os.path.join(cfg.OUTPUT_DIR, "timeline")
    summaries = []
    for video in videos:
        try:
            fps = video_fps(video)
            win = window_s if window_s is not None else trained_window_s(cfg, fps)
            warning = spacing_warning(cfg, win, fps)
            result = sliding_window_scores(
                loaded.model,
                video,
                window_s=win,
                stride_s=win / 2 if stride_s is None else stride_s,
                num_frames=cfg.DATA.NUM_FRAMES,
                crop_size=cfg.DATA.TEST_CROP_SIZE,
                mean=cfg.DATA.MEAN,
                std=cfg.DATA.STD,
                num_crops=num_crops,
                batch_size=max(1, cfg.TEST.BATCH_SIZE // num_crops),
                device=loaded.device,
                amp_dtype=loaded.amp_dtype,
                autorotate=cfg.DATA.AUTOROTATE,
                activation=loaded.activation,
            )
        except DecodeError as e:
            summaries.append({"video": video, "error": str(e)})
            continue
        if warning:  # said once the video is done (a window longer than the video is an error instead)
            logger.warning("%s: %s", video, warning)
            result.warning = "; ".join(w for w in (warning, result.warning) if w)
        summaries.append(dict(write_timeline(result, out_dir, names, smooth_width, topk, plot_classes), error=""))
    return summaries
