"""All ranks' per-video records merged (each video exactly once) and turned into the test's metrics."""

from __future__ import annotations

from typing import Sequence

import torch

from ..engine.metrics import compute_metrics, multilabel_metrics
from ..errors import EvaluationError


def merge_records(per_rank: Sequence[Sequence[dict]], num_videos: int) -> list[dict]:
    """All ranks' records, each video once, in index order; raises unless every video is there.

    Duplicates (a sampler that pads shards) are dropped by index; a missing index means some
    video was never evaluated, and no number computed without it can be published.
    """
    by_index: dict[int, dict] = {}
    for records in per_rank:
        for rec in records:
            by_index.setdefault(rec["index"], rec)
    missing = sorted(set(range(num_videos)) - set(by_index))
    extra = sorted(set(by_index) - set(range(num_videos)))
    if missing or extra:
        raise EvaluationError(
            f"test set has {num_videos} videos but {len(missing)} were never evaluated "
            f"(e.g. indices {missing[:5]}) and {len(extra)} are unknown (e.g. {extra[:5]})"
        )
    return [by_index[i] for i in range(num_videos)]


def _multi_hot(labels: Sequence[Sequence[int]], num_classes: int) -> torch.Tensor:
    out = torch.zeros(len(labels), num_classes, dtype=torch.bool)
    for i, classes in enumerate(labels):
        out[i, list(classes)] = True
    return out


def summarize(records: Sequence[dict], num_classes: int, multi_label: bool = False) -> dict:
    """Metrics of the merged records (decoded videos; failures counted separately)."""
    ok = [r for r in records if r["error"] == ""]
    if ok:
        scores = torch.stack([torch.as_tensor(r["scores"], dtype=torch.float64) for r in ok])
    else:
        scores = torch.zeros(0, num_classes, dtype=torch.float64)
    if multi_label:
        failed = [r["label"] for r in records if r["error"]]
        metrics = multilabel_metrics(
            scores, _multi_hot([r["label"] for r in ok], num_classes), _multi_hot(failed, num_classes)
        )
    else:
        labels = torch.tensor([r["label"] for r in ok], dtype=torch.long)
        metrics = compute_metrics(scores, labels, num_failed=len(records) - len(ok), num_classes=num_classes)
    metrics["failed"] = [{"path": r["path"], "reason": r["error"]} for r in records if r["error"]]
    return metrics
