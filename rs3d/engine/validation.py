"""Validation during training: one centre clip per video, top-1/top-5 (single-label data) or mAP
(``DATA.MULTI_LABEL``) over every rank's shard, and the best-so-far bookkeeping."""

from __future__ import annotations

import math
import time
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from rs3d.engine import distributed as dist_utils
from rs3d.engine.batches import model_input, start_batches
from rs3d.engine.builder import StepConfig, TrainParts
from rs3d.engine.logs import StatsWriter, logger
from rs3d.engine.metrics import multilabel_metrics, topk_indices
from rs3d.engine.precision import autocast
from rs3d.engine.preemption import StopFlag
from rs3d.errors import NonFiniteLossError


def _scored_batches(model: nn.Module, loader, sc: StepConfig, stop: Optional[StopFlag]):
    """(batch, labels on the device, float32 logits) for every validation batch, both validations' loop."""
    for batch in start_batches(loader, stop):
        x = model_input(batch, sc)
        y = batch["label"].to(sc.device, non_blocking=True)
        with autocast(sc.device, sc.amp_dtype):
            logits = model(x)
        yield batch, y, logits.float()


@torch.no_grad()
def validate(
    model: nn.Module, loader, sc: StepConfig, epoch: int, iteration: int, stop: Optional[StopFlag] = None
) -> dict:
    """Cheap validation (one centre clip, centre crop) over every rank's shard; top-1/top-5 in %."""
    if sc.multi_label:  # mAP over all ranks' clips
        return validate_multilabel(model, loader, sc, epoch, iteration, stop)
    model.eval()
    dev = sc.device
    totals = torch.zeros(5, device=dev, dtype=torch.float64)  # loss, top1, top5, n, skipped
    ce = nn.CrossEntropyLoss(reduction="sum")
    t0 = time.perf_counter()
    for batch, y, logits in _scored_batches(model, loader, sc, stop):
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        totals[0] += ce(logits, y).double()
        totals[1] += (top5[:, 0] == y).sum()
        totals[2] += (top5 == y[:, None]).any(1).sum()
        totals[3] += y.numel()
        totals[4] += int(batch["skipped"].sum()) if "skipped" in batch else 0
    dist_utils.all_reduce_sum(totals)
    loss, c1, c5, n, skipped = totals.tolist()
    n = max(n, 1)
    return {
        "_type": "val_epoch",
        "epoch": epoch + 1,
        "iteration": iteration,
        "loss": loss / n,
        "top1": 100.0 * c1 / n,
        "top5": 100.0 * c5 / n,
        "num_clips": int(n),
        "skipped_videos": int(skipped),
        "time_s": time.perf_counter() - t0,
    }


def validate_and_log(
    parts: TrainParts, epoch: int, stats: Optional[StatsWriter] = None, stop: Optional[StopFlag] = None
) -> bool:
    """Validate the EMA model (the one the recipe evaluates, BN statistics included; the model
    itself without EMA), log and record it; returns whether it is the best so far.

    A non-finite validation loss or metric (a diverged model: NaN scores tie, and top-1 becomes the
    share of class 0) stops the run with ``NonFiniteLossError`` before the epoch is saved, so such
    a model is never a checkpoint, let alone the best one."""
    state = parts.state
    model = state.ema.module if state.ema is not None else state.model
    val = validate(model, parts.val_loader, parts.step, epoch, state.progress.iteration, stop)
    key = "mAP" if "mAP" in val else "top1"  # the best model: by mAP on multi-label data
    if not (math.isfinite(val["loss"]) and math.isfinite(val[key])):
        raise NonFiniteLossError(
            f"non-finite validation loss ({val['loss']}) after epoch {epoch + 1}: the "
            f"{'EMA ' if state.ema is not None else ''}model diverged; epoch {epoch + 1} not saved, any earlier "
            "checkpoints kept (lower SOLVER.BASE_LR, set TRAIN.CLIP_GRAD_NORM, or use float32)"
        )
    is_best = state.best_metric is None or val[key] > state.best_metric
    if is_best:
        state.best_metric, state.best_metric_name = val[key], key
    shown = f"mAP {val['mAP']:.2f}% " if "mAP" in val else ""
    logger.info(
        f"val (epoch {epoch + 1}, {'EMA' if state.ema is not None else 'model'}): {shown}"
        f"top-1 {val['top1']:.2f}% top-5 {val['top5']:.2f}% "
        f"loss {val['loss']:.4f} on {val['num_clips']} clips (best {key} {state.best_metric:.2f}%)"
    )
    if stats is not None:
        stats.write(val, "val", state.progress.iteration)
    return is_best


@torch.no_grad()
def validate_multilabel(model, loader, sc, epoch: int, iteration: int, stop=None) -> dict:
    """One centre clip per video: mAP, top-1/top-5 (a true class among the k best) in %, mean BCE.

    ``stop``: the training loop's stop flag (``validate`` passes it on).

    mAP needs every clip's scores at once, so each rank keeps its shard's sigmoid scores and
    targets and they are gathered before the metric is computed. The validation shards are
    contiguous and in order (``ShardSampler``), and AP does not depend on the order of the clips
    anyway, so 1 and N processes report the same mAP."""
    model.eval()
    scores, targets = [], []
    loss_sum, skipped = 0.0, 0
    t0 = time.perf_counter()
    for batch, y, logits in _scored_batches(model, loader, sc, stop):
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
    return {
        "_type": "val_epoch",
        "epoch": epoch + 1,
        "iteration": iteration,
        "loss": sum(g[1] for g in gathered) / n,
        "mAP": m["mAP"],
        "top1": m["top1"],
        "top5": 100.0 * hit5 / n,
        "classes_with_positives": m["classes_with_positives"],
        "num_clips": int(n),
        "skipped_videos": int(sum(g[2] for g in gathered)),
        "time_s": time.perf_counter() - t0,
    }
