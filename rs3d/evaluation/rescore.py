"""Re-scoring a test's per-video predictions on a subset, without running the model again.

``test_predictions.csv`` (written by every test) holds, per video, its label, its five best
classes and whether it failed to decode. Top-1, top-5 and the mean class accuracy of any subset
follow from those alone, with the test's conventions (:mod:`rs3d.engine.metrics`): the same
numbers a test limited to that subset (``TEST.SUBSET_MANIFEST``) reports. Multi-label
predictions are refused: mAP needs every class's score, which the file does not keep.
"""

from __future__ import annotations

import csv
import os
from typing import Callable, Optional

import torch

from ..engine.metrics import accuracy_report, confusion_matrix, mean_class_accuracy
from ..errors import DataError

TOP_K = 5


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a class index") from None


def rescore_predictions(path: str, keep: Optional[Callable[[str], bool]] = None) -> dict:
    """The test metrics of the rows of ``path`` whose video ``keep(path)`` accepts (all if None)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: predictions file not found")
    labels, preds, top5, failed, considered = [], [], [], 0, 0
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        needed = {"path", "label", "pred_1", "error"}
        if not needed <= set(reader.fieldnames or ()):
            raise DataError(f"{path}:1: not a test_predictions.csv (columns {sorted(needed)} expected)")
        ks = [k for k in range(1, TOP_K + 1) if f"pred_{k}" in reader.fieldnames]
        for row in reader:
            where = f"{path}:{reader.line_num}"
            considered += 1
            if keep is not None and not keep(row["path"]):
                continue
            if "," in row["label"] or row["label"] == "-":
                raise DataError(
                    f"{where}: multi-label predictions keep only the top {TOP_K} classes; mAP "
                    "cannot be recomputed from them (run rs3d-test with TEST.SUBSET_MANIFEST)"
                )
            if row["error"]:
                failed += 1
                continue
            label = _int(row["label"], where)
            top = [_int(row[f"pred_{k}"], where) for k in ks if row[f"pred_{k}"] != ""]
            labels.append(label)
            preds.append(top[0])
            top5.append(label in top or len(top) < len(ks))  # fewer classes than 5: every video counts
    n = len(labels)
    correct1 = sum(int(p == y) for p, y in zip(preds, labels))
    correct5 = sum(int(c) for c in top5)
    num_classes = max(labels + preds, default=-1) + 1
    conf = (
        confusion_matrix(torch.tensor(preds, dtype=torch.long), torch.tensor(labels, dtype=torch.long), num_classes)
        if n
        else torch.zeros(0, 0, dtype=torch.long)
    )
    report = accuracy_report(correct1, correct5, n, failed, mean_class_accuracy(conf) if n else 0.0)
    return {**report, "rows_in_file": considered}
