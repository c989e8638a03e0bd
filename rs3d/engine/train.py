"""The training loop, as plain functions: ``train(cfg)`` -> ``train_one_epoch`` / ``validate``.

One optimizer step = one global batch of ``TRAIN.BATCH_SIZE`` clips = ``accum`` micro-batches of
``micro`` clips on each of ``world`` ranks (DDP averages over ranks, the loss is divided by
``accum``), so a small machine runs the recipe's batch unchanged.

Exact resume: checkpoints are written at epoch ends, after validation, and every random source of
an epoch is re-seeded from (RNG_SEED, epoch, rank) when the epoch starts; the data order is a
function of (RNG_SEED, epoch) (``rs3d.data.set_epoch``) and each clip's augmentation a function of
(RNG_SEED, epoch, index). An epoch therefore depends only on the checkpointed weights/optimizer/EMA
and its number, and a run killed anywhere then restarted from the newest good checkpoint ends with
the same bits as one that was never interrupted (CPU). Mid-epoch checkpoints
(``TRAIN.CHECKPOINT_PERIOD_ITERS``) also hold every rank's RNG state and the epoch's running sums;
the resumed loader skips the batches already done without loading them.
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from rs3d.config import ConfigError, save_config
from rs3d.engine import distributed as dist_utils
from rs3d.engine.checkpoint import (best_checkpoint_path, checkpoint_path, get_rng_state,
                                    latest_good_checkpoint, prune_checkpoints,
                                    remove_stale_temporaries, save_checkpoint, set_rng_state)
from rs3d.engine.ema import ModelEma
from rs3d.engine.logs import StatsWriter, format_eta, logger, memory_mb, plot_training_curves, setup_logging
from rs3d.engine.losses import build_loss
from rs3d.engine.optim import build_optimizer
from rs3d.engine.schedule import lr_at, scaled_lr

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


from rs3d.errors import NonFiniteLossError  # noqa: F401  (re-exported)


def batch_split(global_batch: int, micro_batch: int, world_size: int) -> tuple[int, int]:
    """(micro, accum) with ``global_batch == world_size * micro * accum``; ConfigError otherwise."""
    if micro_batch <= 0:
        micro_batch = global_batch // world_size
        if micro_batch < 1 or micro_batch * world_size != global_batch:
            raise ConfigError(f"TRAIN.BATCH_SIZE {global_batch} does not divide among {world_size} "
                              "processes; set TRAIN.MICRO_BATCH_SIZE")
    accum, rem = divmod(global_batch, world_size * micro_batch)
    if rem or accum < 1:
        raise ConfigError(f"TRAIN.BATCH_SIZE {global_batch} must equal processes ({world_size}) x "
                          f"TRAIN.MICRO_BATCH_SIZE ({micro_batch}) x accumulation steps")
    return micro_batch, accum


def seed_all(*keys: int) -> None:
    """Seed python, numpy and torch from a tuple of integers (seed, epoch, rank)."""
    s = np.random.SeedSequence([int(k) for k in keys]).generate_state(2)
    random.seed(int(s[0]))
    np.random.seed(int(s[1]))
    torch.manual_seed(int(s[0]) << 31 | int(s[1]) >> 1)


@dataclass
class StepConfig:
    """What one training step needs, resolved once from the config."""
    device: torch.device
    amp_dtype: torch.dtype
    channels_last: bool
    clip_grad_norm: float
    accum: int
    mean: list
    std: list


def _model_input(batch: dict, sc: StepConfig) -> torch.Tensor:
    from rs3d.data import to_model_input
    x = to_model_input(batch["clip"].to(sc.device, non_blocking=True), sc.mean, sc.std)
    if sc.channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _autocast(sc: StepConfig):
    return torch.autocast(sc.device.type, dtype=sc.amp_dtype, enabled=sc.amp_dtype != torch.float32)


def train_one_epoch(model: nn.Module, core: nn.Module, ema: Optional[ModelEma], loader,
                    optimizer: torch.optim.Optimizer, scaler, loss_fn: nn.Module, sc: StepConfig, *,
                    epoch: int, max_epoch: int, iteration: int, steps: int, lr_fn, log_period: int,
                    stats: StatsWriter, global_batch: int, start_step: int = 0,
                    progress: Optional[dict] = None, save_period: int = 0,
                    save_fn=None) -> tuple[dict, int]:
    """Optimizer steps ``start_step + 1 .. steps`` over ``loader``; returns (epoch stats, iteration
    after the epoch).

    ``model`` is what runs forward (maybe DDP/compiled), ``core`` the plain module (EMA source).
    A resumed epoch starts at ``start_step`` with the running sums ``progress`` of its first part
    (the loader must skip the batches already done). Every ``save_period`` steps (0 = never)
    before the last, ``save_fn(step, iteration, progress)`` writes a mid-epoch checkpoint; it is
    called on every rank.
    """
    model.train()
    is_ddp = isinstance(model, nn.parallel.DistributedDataParallel) or isinstance(
        getattr(model, "_orig_mod", None), nn.parallel.DistributedDataParallel)
    ddp = model if isinstance(model, nn.parallel.DistributedDataParallel) else getattr(model, "_orig_mod", model)
    dev = sc.device
    # Running sums live on the device; they are read (one sync) only at log time.
    progress = progress or {}
    loss_sum = torch.tensor(float(progress.get("loss_sum", 0.0)), device=dev, dtype=torch.float64)
    correct = torch.tensor(float(progress.get("correct", 0.0)), device=dev, dtype=torch.float64)
    seen = torch.tensor(float(progress.get("seen", 0.0)), device=dev, dtype=torch.float64)
    nonfinite = torch.zeros((), device=dev, dtype=torch.float64)
    skipped = int(progress.get("skipped", 0))
    period_loss, period_n = torch.zeros((), device=dev, dtype=torch.float64), 0
    t_epoch = t_period = time.perf_counter()
    time_before = float(progress.get("time_s", 0.0))  # spent on this epoch before a resume
    data_time, step, micro = 0.0, start_step, 0
    t_data = time.perf_counter()
    lr = lr_fn(iteration)
    for batch in loader:
        data_time += time.perf_counter() - t_data
        if micro % sc.accum == 0:
            lr = lr_fn(iteration)
            for g in optimizer.param_groups:
                g["lr"] = lr
        x = _model_input(batch, sc)
        y = batch["label"].to(dev, non_blocking=True)
        skipped += int(batch["skipped"].sum()) if "skipped" in batch else 0
        last_micro = (micro + 1) % sc.accum == 0
        # Gradients are all-reduced once per optimizer step, not on every micro-batch.
        sync_ctx = ddp.no_sync() if (is_ddp and not last_micro) else contextlib.nullcontext()
        with sync_ctx:
            with _autocast(sc):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            scaler.scale(loss / sc.accum).backward()
        d = loss.detach()
        nonfinite += (~torch.isfinite(d)).double()
        loss_sum += d.double() * y.numel()
        period_loss += d.double()
        period_n += 1
        correct += (logits.detach().argmax(1) == y).double().sum()
        seen += y.numel()
        micro += 1
        if not last_micro:
            t_data = time.perf_counter()
            continue

        if sc.clip_grad_norm > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(core.parameters(), sc.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(core, iteration)
        iteration += 1
        step += 1

        if step % log_period == 0 or step == steps:
            _stop_if_nonfinite(nonfinite, epoch, iteration)
            now = time.perf_counter()
            done = step - start_step  # steps run by this process in this epoch
            per_step = (now - t_epoch) / done
            remaining = (steps - step) + (max_epoch - epoch - 1) * steps
            rec = {
                "_type": "train_iter", "epoch": epoch + 1, "iter": step, "iteration": iteration,
                "loss": float(period_loss) / max(period_n, 1), "lr": lr,
                "clips_per_s": global_batch * min(step % log_period or log_period, done)
                / max(now - t_period, 1e-9),
                "data_time_s": data_time / done, "eta_s": per_step * remaining, "mem_mb": memory_mb(dev),
            }
            logger.info(f"epoch {epoch + 1}/{max_epoch} iter {step}/{steps} loss {rec['loss']:.4f} "
                        f"lr {lr:.5g} clips/s {rec['clips_per_s']:.1f} data {rec['data_time_s']:.3f}s/step "
                        f"eta {format_eta(rec['eta_s'])} mem {rec['mem_mb']:.0f}MB")
            stats.write(rec, "train", iteration)
            period_loss.zero_()
            period_n, t_period = 0, now
        if step == steps:
            break
        if save_period and step % save_period == 0:
            _stop_if_nonfinite(nonfinite, epoch, iteration)  # never checkpoint a diverged state
            totals = _epoch_totals(loss_sum, correct, seen, skipped)
            save_fn(step, iteration, dict(zip(("loss_sum", "correct", "seen", "skipped"), totals),
                                          time_s=time_before + time.perf_counter() - t_epoch))
        t_data = time.perf_counter()
    _stop_if_nonfinite(nonfinite, epoch, iteration)

    # Epoch totals over all ranks (each rank saw a disjoint part of every global batch).
    loss_sum, correct, seen, skipped = _epoch_totals(loss_sum, correct, seen, skipped)
    elapsed = time_before + time.perf_counter() - t_epoch
    return ({
        "_type": "train_epoch", "epoch": epoch + 1, "iteration": iteration, "loss": loss_sum / max(seen, 1),
        "top1": 100.0 * correct / max(seen, 1), "lr": lr, "skipped_videos": int(skipped),
        "clips_per_s": seen / max(elapsed, 1e-9), "time_s": elapsed, "mem_mb": memory_mb(dev),
    }, iteration)


def _epoch_totals(loss_sum, correct, seen, skipped: int) -> list:
    """The running sums of an epoch added over all ranks (one small all-reduce)."""
    totals = torch.stack([loss_sum, correct, seen,
                          torch.tensor(float(skipped), device=loss_sum.device, dtype=torch.float64)])
    dist_utils.all_reduce_sum(totals)
    return totals.tolist()


def _stop_if_nonfinite(flag: torch.Tensor, epoch: int, iteration: int) -> None:
    """All ranks agree (one tiny all-reduce) so they stop together instead of hanging."""
    f = flag.clone()
    dist_utils.all_reduce_sum(f)
    if float(f) > 0:
        raise NonFiniteLossError(
            f"non-finite loss (NaN/inf) in epoch {epoch + 1} before optimizer step {iteration}; "
            "stopped without saving (lower SOLVER.BASE_LR, set TRAIN.CLIP_GRAD_NORM, or use float32)")


@torch.no_grad()
def validate(model: nn.Module, loader, sc: StepConfig, epoch: int, iteration: int) -> dict:
    """Cheap validation (one centre clip, centre crop) over every rank's shard; top-1/top-5 in %."""
    model.eval()
    dev = sc.device
    totals = torch.zeros(5, device=dev, dtype=torch.float64)  # loss, top1, top5, n, skipped
    ce = nn.CrossEntropyLoss(reduction="sum")
    t0 = time.perf_counter()
    for batch in loader:
        x = _model_input(batch, sc)
        y = batch["label"].to(dev, non_blocking=True)
        with _autocast(sc):
            logits = model(x)
        logits = logits.float()
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        totals[0] += ce(logits, y).double()
        totals[1] += (top5[:, 0] == y).sum()
        totals[2] += (top5 == y[:, None]).any(1).sum()
        totals[3] += y.numel()
        totals[4] += int(batch["skipped"].sum()) if "skipped" in batch else 0
    dist_utils.all_reduce_sum(totals)
    loss, c1, c5, n, skipped = totals.tolist()
    n = max(n, 1)
    return {"_type": "val_epoch", "epoch": epoch + 1, "iteration": iteration, "loss": loss / n,
            "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "num_clips": int(n),
            "skipped_videos": int(skipped), "time_s": time.perf_counter() - t0}


def _load_initial_weights(model: nn.Module, cfg) -> None:
    from rs3d.models.convert import load_pretrained
    load_pretrained(model, cfg.TRAIN.CHECKPOINT_FILE_PATH, inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
                    inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE)
    logger.info(f"initial weights from {cfg.TRAIN.CHECKPOINT_FILE_PATH}")


def train(cfg) -> dict:
    """Train ``cfg`` (validated, frozen) to SOLVER.MAX_EPOCH; returns the last epoch's stats."""
    from rs3d.data import build_loader, set_epoch
    from rs3d.models import build_model

    info = dist_utils.init_distributed(cfg.DEVICE, cfg.DIST_BACKEND, cfg.DIST_TIMEOUT_S)
    rank, world, dev = info.rank, info.world_size, info.device
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.CUDNN_BENCHMARK)
    out = cfg.OUTPUT_DIR
    setup_logging(out, rank)
    micro, accum = batch_split(cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.MICRO_BATCH_SIZE, world)
    if info.is_main:
        save_config(cfg, out)
        for path in remove_stale_temporaries(out):
            logger.info(f"removed {path} (a save cut short by a crash)")
    logger.info(f"world {world} x micro-batch {micro} x accumulation {accum} = global batch "
                f"{cfg.TRAIN.BATCH_SIZE}; device {dev}; output {out}")

    seed_all(cfg.RNG_SEED)  # identical initial weights on every rank
    model = build_model(cfg)
    resume_path, ckpt = latest_good_checkpoint(out) if cfg.TRAIN.AUTO_RESUME else (None, None)
    if ckpt is None and cfg.TRAIN.CHECKPOINT_FILE_PATH:
        _load_initial_weights(model, cfg)
    if world > 1 and cfg.BN.SYNC:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(dev)
    if cfg.TRAIN.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last_3d)
    core = model
    ema = ModelEma(core, cfg.TRAIN.EMA_DECAY) if cfg.TRAIN.EMA else None
    optimizer = build_optimizer(core, lr=0.0, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV,
                                weight_decay=cfg.SOLVER.WEIGHT_DECAY, method=cfg.SOLVER.OPTIMIZING_METHOD)
    amp_dtype = AMP_DTYPES[cfg.TRAIN.AMP_DTYPE]
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)

    start_epoch, start_step, iteration, best_top1 = 0, 0, 0, -1.0
    progress, resume_rng = None, None
    if ckpt is not None:
        core.load_state_dict(ckpt["model"])
        if ema is not None:
            ema.module.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        start_step = int(ckpt.get("step_in_epoch", 0))
        best_top1 = float(ckpt.get("best_top1", -1.0))
        rng = ckpt.get("rng")
        if isinstance(rng, list) and len(rng) == world:
            resume_rng = rng[rank]
        if start_step:
            if ckpt.get("world_size") != world or resume_rng is None:
                raise ConfigError(f"{resume_path} is a mid-epoch checkpoint of {ckpt.get('world_size')} "
                                  f"processes; resume it with the same number, not {world}")
            # Rank 0 carries the epoch's running sums so far; the others add only what follows.
            progress = dict(ckpt["epoch_progress"])
            if rank != 0:
                progress = {"time_s": progress.get("time_s", 0.0)}
        where = f"epoch {start_epoch}" + (f" + {start_step} steps" if start_step else "")
        logger.info(f"resumed from {resume_path} ({where}, iter {iteration})")
        del ckpt

    model = core
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            core, device_ids=[dev.index] if dev.type == "cuda" else None)
    if cfg.TRAIN.COMPILE:
        model = torch.compile(model)

    train_loader = build_loader(cfg, "train", "train", micro, rank, world)
    val_loader = (build_loader(cfg, "val", "val", micro, rank, world)
                  if cfg.TRAIN.EVAL_PERIOD > 0 else None)
    steps = len(train_loader) // accum
    if steps < 1:
        raise ConfigError(f"the train split gives {len(train_loader)} micro-batches of {micro} per process, "
                          f"fewer than one global batch of {cfg.TRAIN.BATCH_SIZE}")
    max_epoch = cfg.SOLVER.MAX_EPOCH
    base_lr = scaled_lr(cfg.SOLVER.BASE_LR, cfg.TRAIN.BATCH_SIZE, cfg.SOLVER.REFERENCE_BATCH_SIZE)
    total_iters = max_epoch * steps
    warmup_iters = int(round(cfg.SOLVER.WARMUP_EPOCHS * steps))

    def lr_fn(it: int) -> float:
        return lr_at(it, base_lr, total_iters, warmup_iters, cfg.SOLVER.WARMUP_START_LR, cfg.SOLVER.COSINE_END_LR)

    sc = StepConfig(device=dev, amp_dtype=amp_dtype, channels_last=cfg.TRAIN.CHANNELS_LAST,
                    clip_grad_norm=cfg.TRAIN.CLIP_GRAD_NORM, accum=accum,
                    mean=list(cfg.DATA.MEAN), std=list(cfg.DATA.STD))
    stats = StatsWriter(out, enabled=info.is_main, tensorboard=cfg.TENSORBOARD.ENABLE,
                        purge_step=iteration + 1)  # also a restart from scratch: hide old runs
    logger.info(f"{steps} steps/epoch, {total_iters} steps in all, peak lr {base_lr:.5g} "
                f"(BASE_LR {cfg.SOLVER.BASE_LR} x {cfg.TRAIN.BATCH_SIZE}/{cfg.SOLVER.REFERENCE_BATCH_SIZE}), "
                f"warm-up {warmup_iters} steps")
    if start_step >= steps:
        raise ConfigError(f"{resume_path} is {start_step} steps into an epoch, but an epoch now has "
                          f"{steps} steps (the data or TRAIN.BATCH_SIZE changed)")
    loss_fn = build_loss(cfg.TRAIN.LABEL_SMOOTHING)
    schedule = {"base_lr": base_lr, "total_iters": total_iters, "warmup_iters": warmup_iters,
                "steps_per_epoch": steps}

    def write_checkpoint(epoch_done: int, step: int, iteration: int, progress: Optional[dict] = None,
                         is_best: bool = False) -> None:
        """Collective (RNG states are gathered); rank 0 writes ``epoch_done`` epochs + ``step``."""
        rng = dist_utils.all_gather_object(get_rng_state())
        if info.is_main:
            state = {
                "model": core.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch_done, "step_in_epoch": step,
                "iteration": iteration, "cfg": cfg.dump(), "rng": rng, "sampler_epoch": epoch_done,
                "best_top1": best_top1, "world_size": world, "scheduler": schedule,
            }
            if progress is not None:
                state["epoch_progress"] = progress
            if ema is not None:
                state["ema"] = ema.module.state_dict()
            path = save_checkpoint(state, checkpoint_path(out, epoch_done, step))
            if is_best:
                save_checkpoint(state, best_checkpoint_path(out))
            prune_checkpoints(out, cfg.TRAIN.CHECKPOINT_KEEP)
            logger.info(f"saved {path}" + (" (best)" if is_best else ""))
        dist_utils.barrier()

    epoch_stats: dict = {}
    try:
        for epoch in range(start_epoch, max_epoch):
            first = start_step if epoch == start_epoch else 0
            if first:  # mid-epoch resume: the random streams continue where the checkpoint left them
                set_rng_state(resume_rng)
            else:
                seed_all(cfg.RNG_SEED, epoch, rank)
            set_epoch(train_loader, epoch, start_batch=first * accum)
            epoch_stats, iteration = train_one_epoch(
                model, core, ema, train_loader, optimizer, scaler, loss_fn, sc, epoch=epoch,
                max_epoch=max_epoch, iteration=iteration, steps=steps, lr_fn=lr_fn,
                log_period=cfg.LOG_PERIOD, stats=stats, global_batch=cfg.TRAIN.BATCH_SIZE,
                start_step=first, progress=progress if first else None,
                save_period=cfg.TRAIN.CHECKPOINT_PERIOD_ITERS,
                save_fn=lambda step, it, prog, e=epoch: write_checkpoint(e, step, it, prog))
            logger.info(f"epoch {epoch + 1} done: loss {epoch_stats['loss']:.4f} train top-1 "
                        f"{epoch_stats['top1']:.2f}% broken videos replaced {epoch_stats['skipped_videos']} "
                        f"time {epoch_stats['time_s']:.1f}s")
            stats.write(epoch_stats, "train_epoch", iteration)

            last = epoch + 1 == max_epoch
            is_best = False
            if val_loader is not None and ((epoch + 1) % cfg.TRAIN.EVAL_PERIOD == 0 or last):
                # The EMA model is the one the recipe evaluates (BN statistics included).
                val_stats = validate(ema.module if ema is not None else core, val_loader, sc, epoch, iteration)
                is_best = val_stats["top1"] > best_top1
                best_top1 = max(best_top1, val_stats["top1"])
                logger.info(f"val (epoch {epoch + 1}, {'EMA' if ema is not None else 'model'}): "
                            f"top-1 {val_stats['top1']:.2f}% top-5 {val_stats['top5']:.2f}% "
                            f"loss {val_stats['loss']:.4f} on {val_stats['num_clips']} clips (best {best_top1:.2f}%)")
                stats.write(val_stats, "val", iteration)

            if (epoch + 1) % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last or is_best:
                # Saved after validation so the file holds everything the next epoch depends on.
                write_checkpoint(epoch + 1, 0, iteration, is_best=is_best)
    finally:
        stats.close()
    if info.is_main and os.path.exists(stats.path):
        png = plot_training_curves(stats.path, os.path.join(out, "training_curves.png"))
        logger.info(f"curves: {png}")
    return epoch_stats
