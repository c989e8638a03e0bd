"""What a test run writes: the metrics JSON, the predictions CSV, and the confusion-matrix PNG
(multi-label data: a per-class AP CSV instead). Atomic writes through ``rs3d.file_io``, so
``OUTPUT_DIR`` may be an object store."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from typing import Optional, Sequence

import torch

from .. import file_io
from ..data import class_names_for
from ..engine.metrics import topk_indices
from .confusion import plot_confusion_and_accuracy

logger = logging.getLogger(__name__)


def write_predictions(path: str, records: Sequence[dict], class_names: Optional[Sequence[str]], k: int = 5) -> None:
    """CSV, one row per video in test-list order: path, label, top-k classes and scores, error."""

    def name(c):
        if isinstance(c, list):  # multi-label: every class of the video
            return ";".join(name(x) for x in c)
        return class_names[c] if class_names and 0 <= c < len(class_names) else ""

    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["path", "label", "label_name"]
    for i in range(1, k + 1):
        header += [f"pred_{i}", f"name_{i}", f"score_{i}"]
    w.writerow(header + ["error"])
    for r in records:
        label = ",".join(map(str, r["label"])) if isinstance(r["label"], list) else r["label"]
        row = [r["path"], label, name(r["label"])]
        if r["scores"] is not None:
            scores = torch.as_tensor(r["scores"]).view(1, -1)
            top = topk_indices(scores, k)[0].tolist()
            for c in top:
                row += [c, name(c), f"{scores[0, c].item():.6f}"]
            row += ["", "", ""] * (k - len(top))
        else:
            row += ["", "", ""] * k
        w.writerow(row + [r["error"]])
    file_io.atomic_write_text(path, buf.getvalue())


def write_per_class_ap(path: str, metrics: dict, class_names: Optional[Sequence[str]]) -> None:
    """Multi-label test: one row per class (index, name, decoded videos with it, AP in percent or
    empty for a class without positives), in class order."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["class", "name", "positives", "ap"])
    for c, (ap, pos) in enumerate(zip(metrics["per_class_ap"], metrics["class_positives"])):
        w.writerow([c, class_names[c] if class_names else "", pos, "" if ap is None else f"{ap:.4f}"])
    file_io.atomic_write_text(path, buf.getvalue())


def write_confusion_png(conf: torch.Tensor, path: str, class_names: Optional[Sequence[str]], num_failed: int) -> None:
    """The confusion matrix PNG at ``path``; matplotlib writes local files, so a remote ``path``
    is plotted into a temporary folder and uploaded."""
    if file_io.is_local(path):
        plot_confusion_and_accuracy(conf, path, class_names, num_failed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        plot_confusion_and_accuracy(conf, os.path.join(tmp, "cm.png"), class_names, num_failed)
        file_io.upload(os.path.join(tmp, "cm.png"), path)


def write_outputs(
    cfg,
    metrics: dict,
    records: Sequence[dict],
    conf: Optional[torch.Tensor],
    class_names: Optional[Sequence[str]] = None,
) -> None:
    """Everything rank 0 writes into ``OUTPUT_DIR`` after a test, and the summary log line."""
    out = cfg.OUTPUT_DIR
    file_io.mkdirs(out)
    names = (
        class_names if class_names is not None else class_names_for(cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES)
    )
    metrics_path = os.path.join(out, "test_metrics.json")
    file_io.atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    write_predictions(os.path.join(out, "test_predictions.csv"), records, names)
    if conf is None:
        write_per_class_ap(os.path.join(out, "test_per_class_ap.csv"), metrics, names)
        logger.info(
            "mAP %.2f%% over %d classes with positives (%d without), top-1 %.2f%%  (%d videos, %d failed) -> %s",
            metrics["mAP"],
            metrics["classes_with_positives"],
            metrics["classes_without_positives"],
            metrics["top1"],
            metrics["num_videos"],
            metrics["num_failed"],
            metrics_path,
        )
        return
    write_confusion_png(conf, os.path.join(out, "test_confusion_matrix.png"), names, metrics["num_failed"])
    logger.info(
        "top-1 %.2f%%  top-5 %.2f%%  mean class %.2f%%  (%d videos, %d failed) -> %s",
        metrics["top1"],
        metrics["top5"],
        metrics["mean_class_accuracy"],
        metrics["num_videos"],
        metrics["num_failed"],
        metrics_path,
    )
