"""The confusion matrix and per-class accuracy of a test run, as one PNG.

Left: the confusion matrix, each row divided by its class's number of videos (counts written in
the cells up to 20 classes). Right: each class's top-1 accuracy with the mean class accuracy
(classes with no test video are left out, as ``rs3d.engine.metrics`` leaves them out); up to 60
classes every bar is named, beyond that the classes are sorted and the worst ones named.
Input: the confusion matrix the test computes, or a run's ``test_predictions.csv`` read back.
Only NumPy and matplotlib (Agg canvas, headless, the caller's pyplot backend untouched).
"""

from __future__ import annotations

import csv
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError

NAMED_BARS = 60  # up to this many classes, every bar carries its name
WORST_NAMED = 10  # beyond it, the worst classes are named


def per_class_accuracy(conf) -> np.ndarray:
    """Top-1 accuracy in percent of each true class (row); NaN for a class with no videos."""
    conf = np.asarray(conf, dtype=np.float64)
    rows = conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, 100.0 * np.diag(conf) / rows, np.nan)


def confusion_from_predictions(
    path: str, num_classes: Optional[int] = None
) -> Tuple[np.ndarray, Optional[List[str]], int]:
    """(confusion matrix [K, K], class names or None, failed videos) of a ``test_predictions.csv``.

    Rows with an ``error`` are the videos that failed and are counted, not scored. ``K`` is
    ``num_classes``, else one more than the largest class index in the file. Names come from the
    ``label_name`` / ``name_1`` columns where the run knew them.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    need = {"label", "pred_1", "error"}
    if not rows or not need <= set(rows[0]):
        raise DataError(f"{path}: not a test_predictions.csv (needs columns {', '.join(sorted(need))})")
    pairs, failed, names = [], 0, {}
    for i, r in enumerate(rows, start=2):
        if r["error"]:
            failed += 1
            continue
        try:
            pairs.append((int(r["label"]), int(r["pred_1"])))
        except ValueError:
            raise DataError(
                f"{path}:{i}: label {r['label']!r} / pred_1 {r['pred_1']!r} are not class indices"
            ) from None
        for idx, name in ((r["label"], r.get("label_name", "")), (r["pred_1"], r.get("name_1", ""))):
            if name:
                names[int(idx)] = name
    k = num_classes or (1 + max([max(p) for p in pairs], default=-1))
    if any(a >= k or b >= k or a < 0 or b < 0 for a, b in pairs):
        raise DataError(f"{path}: class indices outside [0, {k}) (num_classes)")
    conf = np.zeros((k, k), dtype=np.int64)
    for a, b in pairs:
        conf[a, b] += 1
    full = [names.get(c, "") for c in range(k)]
    return conf, (full if all(full) else None), failed


def plot_confusion_and_accuracy(
    conf, path: str, class_names: Optional[Sequence[str]] = None, num_failed: int = 0
) -> None:
    """Write the PNG described in the module docstring to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    conf = np.asarray(conf, dtype=np.int64)
    k = conf.shape[0]
    labels = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    rows = conf.sum(axis=1, keepdims=True)
    norm = conf / np.maximum(rows, 1)
    acc = per_class_accuracy(conf)
    present = ~np.isnan(acc)
    mean_acc = float(acc[present].mean()) if present.any() else float("nan")
    total = int(conf.sum())
    top1 = 100.0 * np.trace(conf) / total if total else float("nan")

    side = min(32.0, max(6.0, 0.16 * k + 3))
    fig = Figure(figsize=(1.7 * side + 1, side))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 2, width_ratios=(1.0, 0.7))
    font = max(2.0, min(9.0, 600.0 / max(k, 1)))
    big = min(24.0, 10.0 * side / 6)  # titles and axis labels grow with the figure

    ax = fig.add_subplot(grid[0, 0])
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(labels, rotation=90, fontsize=font)
    ax.set_yticklabels(labels, fontsize=font)
    ax.set_xlabel("predicted class", fontsize=big)
    ax.set_ylabel("true class", fontsize=big)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if conf[i, j]:
                    ax.text(
                        j,
                        i,
                        int(conf[i, j]),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_title("confusion matrix", fontsize=big)

    ax = fig.add_subplot(grid[0, 1])
    idx = np.flatnonzero(present)
    if k > NAMED_BARS:
        idx = idx[np.argsort(acc[idx], kind="stable")]  # worst first
    ax.barh(np.arange(len(idx)), acc[idx], color="tab:blue", height=0.8)
    ax.invert_yaxis()
    if k <= NAMED_BARS:
        ax.set_yticks(range(len(idx)))
        ax.set_yticklabels([labels[i] for i in idx], fontsize=font)
    else:
        ax.set_yticks([])
        worst = ", ".join(f"{labels[i]} {acc[i]:.0f}%" for i in idx[:WORST_NAMED])
        ax.text(
            0.98,
            0.02,
            f"worst: {worst}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=big * 0.8,
            wrap=True,
            bbox=dict(facecolor="white", alpha=0.8, linewidth=0),
        )
    if present.any():
        ax.axvline(mean_acc, color="tab:red", linestyle="--", label=f"mean class accuracy {mean_acc:.1f}%")
        ax.legend(loc="lower right" if k <= NAMED_BARS else "upper right", fontsize=big * 0.8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("top-1 accuracy of the class (%)", fontsize=big)
    ax.set_title(f"per-class accuracy ({int(present.sum())} classes with videos)", fontsize=big)

    failed = f", {num_failed} failed to decode" if num_failed else ""
    fig.suptitle(
        f"{total} decoded videos{failed}: top-1 {top1:.2f}%, mean class accuracy {mean_acc:.2f}%", fontsize=big * 1.1
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
