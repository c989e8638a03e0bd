"""Metrics of the multi-view test: pure functions of scores and labels, no model, no I/O.

The number a user publishes comes from here, so everything is computed once, on the gathered
per-video scores, in float64, with explicit conventions:

* a video's score is the per-view softmax aggregated over its views (``aggregate_views``);
* top-k is "the label is among the k highest scores"; k larger than the number of classes counts
  every video as correct (as if the list were padded), rather than failing;
* ``mean_class_accuracy`` averages the top-1 accuracy of each class that has at least one video
  (MMAction2's convention), so an empty class does not drag the mean down;
* videos that failed to decode are excluded from the plain metrics and counted as wrong in the
  ``*_counting_failures`` ones, so a user sees both the model's accuracy and the dataset's cost.

Multi-label data (``multilabel_metrics``; a video's score is the per-view sigmoid aggregated):

* a class's average precision is scikit-learn's ``average_precision_score``: the sum over the
  distinct scores, highest first, of (recall gained) x (precision there), without interpolation.
  Tied scores are one threshold, so the value does not depend on the order of the videos (the
  same on any number of processes);
* mAP is the mean AP over the classes with at least one positive video (PySlowFast's and the
  Charades evaluation's convention). A class without positives has no AP (``None``); it is left
  out and counted in ``classes_without_positives`` (scikit-learn would count it as AP 0);
* mAP and AP are in percent; ``top1`` is the share of videos whose highest-scoring class is one
  of theirs; failed videos rank below every other video in ``mAP_counting_failures``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

ENSEMBLE_METHODS = ("mean", "sum", "max")


def aggregate_views(view_probs: torch.Tensor, method: str = "mean") -> torch.Tensor:
    """Per-view class probabilities ``[V, K]`` -> one video score ``[K]``.

    ``mean`` is the paper's protocol (probabilities averaged over the 30 views); ``sum`` ranks
    identically but keeps PySlowFast's numbers; ``max`` keeps each class's most confident view.
    """
    if view_probs.dim() != 2 or view_probs.shape[0] == 0:
        raise ValueError(f"aggregate_views expects [V, K] with V >= 1, got {tuple(view_probs.shape)}")
    if method == "mean":
        return view_probs.mean(dim=0)
    if method == "sum":
        return view_probs.sum(dim=0)
    if method == "max":
        return view_probs.max(dim=0).values
    raise ValueError(f"TEST.ENSEMBLE_METHOD must be one of {ENSEMBLE_METHODS}, got {method!r}")


def topk_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[N, min(k, K)]`` of the k highest scores per row, best first.

    Ties go to the lower class index (a stable sort), so the result never depends on the
    platform's topk kernel and two runs on the same scores agree exactly.
    """
    k = min(k, scores.shape[1])
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return order[:, :k]


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Bool ``[N]``: is the label among the k highest scores of its row."""
    if scores.shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool)
    top = topk_indices(scores, k)
    return (top == labels.view(-1, 1)).any(dim=1)


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """``{k: percent}`` over the rows; 0.0 when there are no rows."""
    n = scores.shape[0]
    return {k: (100.0 * topk_correct(scores, labels, k).sum().item() / n) if n else 0.0 for k in ks}


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[K, K]`` int64 counts; row = true class, column = predicted class."""
    flat = labels.long() * num_classes + preds.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def mean_class_accuracy(conf: torch.Tensor) -> float:
    """Mean over classes with at least one video of (correct / videos of that class), in percent."""
    per_class = conf.sum(dim=1)
    present = per_class > 0
    if not present.any():
        return 0.0
    acc = conf.diagonal()[present].double() / per_class[present].double()
    return 100.0 * acc.mean().item()


def compute_metrics(scores: torch.Tensor, labels: torch.Tensor, num_failed: int, num_classes: int) -> dict:
    """All reported numbers from the scores ``[N, K]`` of the N decoded videos.

    ``num_failed`` videos could not be decoded; they enter only the ``*_counting_failures``
    metrics, as wrong answers. ``num_videos`` is decoded + failed (the size of the test list).
    """
    scores = scores.double()
    labels = labels.long()
    n = scores.shape[0]
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min().item()}..{labels.max().item()}")
    correct1 = int(topk_correct(scores, labels, 1).sum())
    correct5 = int(topk_correct(scores, labels, 5).sum())
    # The predicted class uses the same tie rule as top-k (not argmax), so top-1 and the
    # confusion matrix's diagonal always agree.
    preds = topk_indices(scores, 1)[:, 0] if n else torch.zeros(0, dtype=torch.long)
    conf = confusion_matrix(preds, labels, num_classes)
    return {**accuracy_report(correct1, correct5, n, num_failed, mean_class_accuracy(conf)), "confusion_matrix": conf}


def accuracy_report(correct1: int, correct5: int, n: int, num_failed: int, class_mean: float) -> dict:
    """The reported accuracies from hit counts over ``n`` decoded videos; the ``num_failed`` that
    were not decoded count as wrong only in the ``*_counting_failures`` figures (the test and a
    re-score of its predictions report alike)."""
    total = n + num_failed
    return {
        "top1": 100.0 * correct1 / n if n else 0.0,
        "top5": 100.0 * correct5 / n if n else 0.0,
        "mean_class_accuracy": class_mean,
        "num_videos": total,
        "num_evaluated": n,
        "num_failed": num_failed,
        "top1_counting_failures": 100.0 * correct1 / total if total else 0.0,
        "top5_counting_failures": 100.0 * correct5 / total if total else 0.0,
    }


# ----------------------------------------------------------------------------- multi-label
def top1_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How many rows' highest logit is a true class (float64 scalar, on the logits' device).

    ``labels``: class indices ``[N]``, or multi-hot ``[N, K]`` for multi-label data."""
    pred = logits.argmax(1)
    if labels.dim() == 1:
        return (pred == labels).double().sum()
    return labels.gather(1, pred.view(-1, 1)).double().sum()


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> Optional[float]:
    """AP in [0, 1] of one class from scores ``[N]`` and 0/1 targets ``[N]``; None without positives.

    scikit-learn's definition (module docstring): sum over distinct thresholds t, highest first,
    of (R(t) - R(previous t)) * P(t)."""
    y = targets.reshape(-1).bool()
    positives = int(y.sum())
    if positives == 0:
        return None
    s = scores.reshape(-1).double()
    order = torch.sort(s, descending=True, stable=True).indices
    s, hits = s[order], torch.cumsum(y[order].double(), 0)
    last = torch.ones_like(s, dtype=torch.bool)  # the last video of each run of equal scores
    last[:-1] = s[1:] != s[:-1]
    ranked = torch.nonzero(last).view(-1).double() + 1.0
    tp = hits[last]
    recall_gain = torch.diff(tp, prepend=tp.new_zeros(1)) / positives
    return float((recall_gain * (tp / ranked)).sum())


def multilabel_metrics(
    scores: torch.Tensor, targets: torch.Tensor, failed_targets: Optional[torch.Tensor] = None
) -> dict:
    """mAP, per-class AP and top-1 of the ``N`` decoded videos (scores and multi-hot targets ``[N, K]``).

    ``failed_targets`` ``[F, K]``: the classes of the videos that could not be decoded; they enter
    only ``mAP_counting_failures``, scored below every decoded video.
    """
    scores, targets = scores.double(), targets.bool()
    if scores.shape != targets.shape or scores.dim() != 2:
        raise ValueError(
            f"scores and targets must both be [N, K]; got {tuple(scores.shape)} and {tuple(targets.shape)}"
        )
    k = scores.shape[1]
    failed = failed_targets.bool() if failed_targets is not None else targets.new_zeros((0, k))
    n, f = scores.shape[0], failed.shape[0]
    ap = [average_precision(scores[:, c], targets[:, c]) for c in range(k)]
    all_scores = torch.cat([scores, scores.new_full((f, k), -math.inf)])
    all_targets = torch.cat([targets, failed])
    ap_all = [average_precision(all_scores[:, c], all_targets[:, c]) for c in range(k)] if f else ap

    def mean_percent(values):
        present = [v for v in values if v is not None]
        return 100.0 * sum(present) / len(present) if present else 0.0

    hits = float(top1_hits(scores, targets)) if n else 0.0
    return {
        "mAP": mean_percent(ap),
        "per_class_ap": [None if v is None else 100.0 * v for v in ap],
        "classes_with_positives": sum(v is not None for v in ap),
        "classes_without_positives": sum(v is None for v in ap),
        "class_positives": targets.sum(dim=0).tolist(),
        "top1": 100.0 * hits / n if n else 0.0,
        "num_videos": n + f,
        "num_evaluated": n,
        "num_failed": f,
        "mAP_counting_failures": mean_percent(ap_all),
    }
