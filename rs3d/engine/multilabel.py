"""Validation during training on multi-label data (``DATA.MULTI_LABEL``): mAP needs every clip's
scores at once, so each rank keeps its shard's sigmoid scores and targets and they are gathered
before the metric is computed (``rs3d.engine.metrics.multilabel_metrics``).

The validation shards are contiguous and in order (``ShardSampler``), and AP does not depend on
the order of the clips anyway, so 1 and N processes report the same mAP.
"""
from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from rs3d.engine import distributed as dist_utils
from rs3d.engine.metrics import multilabel_metrics, topk_indices
from rs3d.engine.precision import autocast


@torch.no_grad()
def validate_multilabel(model, loader, sc, epoch: int, iteration: int, stop=None) -> dict:
    """One centre clip per video: mAP, top-1/top-5 (a true class among the k best) in %, mean BCE.

    ``stop``: the training loop's stop flag (``rs3d.engine.train.validate`` passes it on)."""
    from rs3d.engine.train import _model_input, _start

    model.eval()
    dev = sc.device
    scores, targets = [], []
    loss_sum, skipped = 0.0, 0
    t0 = time.perf_counter()
    for batch in _start(loader, stop):
        x = _model_input(batch, sc)
        y = batch["label"].to(dev, non_blocking=True)
        with autocast(dev, sc.amp_dtype):
            logits = model(x)
        logits = logits.float()
        per_clip = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none").mean(1)
        loss_sum += float(per_clip.double().sum())
        scores.append(logits.sigmoid().double().cpu())
        targets.append(batch["label"].bool())
        skipped += int(batch["skipped"].sum()) if "skipped" in batch else 0
    mine = (torch.cat(scores), torch.cat(targets)) if scores else None
    gathered = dist_utils.all_gather_object((mine, loss_sum, skipped))
    parts = [g[0] for g in gathered if g[0] is not None]
    if not parts:
        raise RuntimeError("multi-label validation saw no clips on any process")
    all_scores = torch.cat([p[0] for p in parts])
    all_targets = torch.cat([p[1] for p in parts])
    m = multilabel_metrics(all_scores, all_targets)
    n = all_scores.shape[0]
    top5 = topk_indices(all_scores, 5)
    hit5 = all_targets.gather(1, top5).any(dim=1).double().sum().item()
    return {"_type": "val_epoch", "epoch": epoch + 1, "iteration": iteration,
            "loss": sum(g[1] for g in gathered) / n, "mAP": m["mAP"], "top1": m["top1"],
            "top5": 100.0 * hit5 / n, "classes_with_positives": m["classes_with_positives"],
            "num_clips": int(n), "skipped_videos": int(sum(g[2] for g in gathered)),
            "time_s": time.perf_counter() - t0}
