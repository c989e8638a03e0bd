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
"""
from __future__ import annotations

from typing import Sequence

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
    total = n + num_failed
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min().item()}..{labels.max().item()}")
    correct1 = int(topk_correct(scores, labels, 1).sum())
    correct5 = int(topk_correct(scores, labels, 5).sum())
    # The predicted class uses the same tie rule as top-k (not argmax), so top-1 and the
    # confusion matrix's diagonal always agree.
    preds = topk_indices(scores, 1)[:, 0] if n else torch.zeros(0, dtype=torch.long)
    conf = confusion_matrix(preds, labels, num_classes)
    return {
        "top1": 100.0 * correct1 / n if n else 0.0,
        "top5": 100.0 * correct5 / n if n else 0.0,
        "mean_class_accuracy": mean_class_accuracy(conf),
        "num_videos": total,
        "num_evaluated": n,
        "num_failed": num_failed,
        "top1_counting_failures": 100.0 * correct1 / total if total else 0.0,
        "top5_counting_failures": 100.0 * correct5 / total if total else 0.0,
        "confusion_matrix": conf,
    }
