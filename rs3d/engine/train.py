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

A stop signal (SIGUSR1/SIGUSR2/SIGTERM, ``rs3d.engine.preemption``) ends the run after the step
under way with such a checkpoint and :class:`~rs3d.engine.preemption.Preempted` (exit status 75);
after an epoch's last step the checkpoint is taken before validation, which the resumed run does.
A remote ``OUTPUT_DIR`` (``s3://...``) gets its checkpoints directly and its logs through a local
mirror uploaded at every checkpoint (``rs3d.io.OutputMirror``).
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Optional

import torch
from torch import nn

from rs3d import io
from rs3d.config import save_config
from rs3d.engine import distributed as dist_utils
from rs3d.engine.builder import StepConfig, TrainParts, batch_split, build_training, seed_all  # noqa: F401
from rs3d.engine.checkpoint import (Checkpointer, latest_good_checkpoint, remove_stale_temporaries,
                                    set_rng_state)
from rs3d.engine.distributed import no_sync
from rs3d.engine.logs import StatsWriter, format_eta, logger, memory_mb, plot_training_curves, setup_logging
from rs3d.engine.precision import AMP_DTYPES, autocast  # noqa: F401  (AMP_DTYPES re-exported)
from rs3d.engine.preemption import Preempted, StopFlag
from rs3d.engine.metrics import top1_hits
from rs3d.engine.state import EpochSums, Progress, TrainState
from rs3d.errors import ConfigError, NonFiniteLossError  # noqa: F401  (re-exported)


def train(cfg, stop: Optional[StopFlag] = None) -> dict:
    """Train ``cfg`` (validated, frozen) to SOLVER.MAX_EPOCH; returns the last epoch's stats.

    ``stop``: what ends the run early with a checkpoint (default: the signals of
    ``rs3d.engine.preemption.STOP_SIGNALS``); raises ``Preempted`` when it does.
    """
    dist = dist_utils.init_distributed(cfg.DEVICE, cfg.DIST_BACKEND, cfg.DIST_TIMEOUT_S)
    stop = stop if stop is not None else StopFlag()
    stop.device = dist.device
    with stop:
        return _train(cfg, dist, stop)


def _train(cfg, dist: dist_utils.DistInfo, stop: StopFlag) -> dict:
    out = cfg.OUTPUT_DIR
    mirror = io.OutputMirror(out)  # where the logs are written: OUTPUT_DIR itself when local
    if dist.is_main:
        mirror.pull(("log.txt", "json_stats.log"))
    setup_logging(mirror.local, dist.rank)
    if dist.is_main:
        _save_config(cfg, out)
        for path in remove_stale_temporaries(out):
            logger.info(f"removed {path} (a save cut short by a crash)")
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restarts:
        logger.info(f"torchrun restart {restarts}: the worker group resumes from the newest good checkpoint")
    resume_path, ckpt = latest_good_checkpoint(out) if cfg.TRAIN.AUTO_RESUME else (None, None)
    parts = build_training(cfg, dist, init_weights=ckpt is None)
    if ckpt is not None:
        resume(parts, resume_path, ckpt)
        del ckpt
    state = parts.state
    checkpointer = Checkpointer(out, cfg.TRAIN.CHECKPOINT_KEEP, cfg.TRAIN.CHECKPOINT_PERIOD_ITERS,
                                on_saved=mirror.push if mirror.is_remote else None)
    stats = StatsWriter(mirror.local, enabled=dist.is_main, tensorboard=cfg.TENSORBOARD.ENABLE,
                        purge_step=state.progress.iteration + 1)  # also a restart from scratch: hide old runs

    epoch_stats: dict = {}
    try:
        for epoch in range(state.progress.epoch, parts.max_epoch):
            epoch_stats = train_one_epoch(parts, epoch, stats=stats, checkpointer=checkpointer, stop=stop)
            last = epoch + 1 == parts.max_epoch
            is_best = False
            if parts.val_loader is not None and ((epoch + 1) % cfg.TRAIN.EVAL_PERIOD == 0 or last):
                is_best = validate_and_log(parts, epoch, stats, stop=stop)
            saved = (epoch + 1) % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last or is_best
            if saved:
                # Saved after validation so the file holds everything the next epoch depends on.
                path = checkpointer.save(state, is_best=is_best)
            signum = 0 if last else stop.agreed(now=True)  # a signal during validation or the save
            if signum:
                path = path if saved else checkpointer.save(state)
                raise Preempted(signum, path, state.progress.describe())
    except Preempted as e:
        logger.warning(f"{e} (exit status {e.exit_code})")
        raise
    finally:
        _end_workers(stop, (parts.train_loader, parts.val_loader))
        stats.close()
        if dist.is_main:
            mirror.push()
    if dist.is_main and os.path.exists(stats.path):
        png = plot_training_curves(stats.path, os.path.join(mirror.local, "training_curves.png"))
        mirror.push()
        logger.info(f"curves: {io.join(out, os.path.basename(png))}")
    return epoch_stats


def _end_workers(stop: StopFlag, loaders) -> None:
    """End the loader worker processes this run started, through DataLoader's own shutdown (it asks
    them to quit). They were started with the stop signals blocked, so the SIGTERM with which
    multiprocessing ends leftover workers at interpreter exit would not reach them, and the exit
    would wait for them forever (an iterator outlives the run in a persistent loader, or in the
    traceback of an error)."""
    for it in list(stop.shielded):
        if hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
    for loader in loaders:
        if getattr(loader, "_iterator", None) is not None:
            loader._iterator = None  # persistent workers: ended above


def _save_config(cfg, out: str) -> None:
    """``config.yaml`` next to the outputs (atomic where the backend allows, see ``rs3d.io``)."""
    if io.is_local(out):
        save_config(cfg, out)
    else:
        io.atomic_write_text(io.join(out, "config.yaml"), cfg.dump())


def resume(parts: TrainParts, path: str, ckpt: dict) -> None:
    """Continue from checkpoint ``ckpt`` (read from ``path``); ConfigError if this run cannot."""
    world, step = parts.dist.world_size, int(ckpt.get("step_in_epoch", 0))
    if step:
        # Per-rank RNG states and positions in per-rank data shards: only the same world size fits.
        rng = ckpt.get("rng")
        if ckpt.get("world_size") != world or not isinstance(rng, list) or len(rng) != world:
            raise ConfigError(f"{path} is a mid-epoch checkpoint of {ckpt.get('world_size')} "
                              f"processes; resume it with the same number, not {world}")
    parts.state.load_state_dict(ckpt)
    logger.info(f"resumed from {path} ({parts.state.progress.describe()}, iter {parts.state.progress.iteration})")
    if step > parts.steps_per_epoch:  # == : every step done, validation not yet (a stop signal)
        raise ConfigError(f"{path} is {step} steps into an epoch, but an epoch now has "
                          f"{parts.steps_per_epoch} steps (the data or TRAIN.BATCH_SIZE changed)")


def start_epoch(parts: TrainParts, epoch: int) -> int:
    """Set every random source and the loader for ``epoch``; returns the optimizer step it starts at.

    A fresh epoch re-seeds from (RNG_SEED, epoch, rank); a resumed one continues each rank's
    random streams from the checkpoint, and the loader skips the batches already done.
    """
    p = parts.state.progress
    first = p.step_in_epoch if p.epoch == epoch else 0
    if first:
        set_rng_state(parts.state.rng[parts.dist.rank])
    else:
        seed_all(parts.seed, epoch, parts.dist.rank)
    from rs3d.data import set_epoch
    set_epoch(parts.train_loader, epoch, start_batch=first * parts.step.accum)
    return first


def _model_input(batch: dict, sc: StepConfig) -> torch.Tensor:
    from rs3d.data import to_model_input
    x = to_model_input(batch["clip"].to(sc.device, non_blocking=True), sc.mean, sc.std)
    if sc.channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def train_one_epoch(parts: TrainParts, epoch: int, stats: Optional[StatsWriter] = None,
                    checkpointer: Optional[Checkpointer] = None,
                    until_step: Optional[int] = None, stop: Optional[StopFlag] = None) -> dict:
    """Train ``epoch`` (0-based) from where ``parts.state`` stands to its end; returns its stats.

    One optimizer step = ``accum`` micro-batches (gradients all-reduced on the last one only).
    ``stats``: where progress records go (None: the log only). ``checkpointer``: writes a
    mid-epoch checkpoint when one is due (never after the last step: the epoch end is saved by
    the caller, after validation). ``until_step``: stop after this step of the epoch instead of
    its last (benchmarks). ``parts.state.progress`` follows every optimizer step, so a checkpoint
    taken between two steps resumes exactly there. ``stop``: after each step every rank agrees
    whether to stop (with ``checkpointer``): then a checkpoint, and ``Preempted`` is raised.
    """
    state, sc = parts.state, parts.step
    steps = parts.steps_per_epoch
    last_step = min(until_step or steps, steps)
    start_step = step = start_epoch(parts, epoch)
    meter = _EpochMeter(_sums_before(parts, start_step), sc.device)
    # The last lr set; resumed after every step of the epoch, the one its last step used.
    lr = parts.schedule(state.progress.iteration - (start_step == steps > 0))
    parts.model.train()
    micro = 0
    batches = meter.timed(parts.train_loader, stop) if step < last_step else ()
    for batch in batches:
        if micro % sc.accum == 0:
            lr = parts.schedule(state.progress.iteration)
            for g in state.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)  # fine-tuning multipliers (rs3d.engine.optim)
        x = _model_input(batch, sc)
        y = batch["label"].to(sc.device, non_blocking=True)
        last_micro = (micro + 1) % sc.accum == 0
        # Gradients are all-reduced once per optimizer step, not on every micro-batch.
        with no_sync(parts.model) if not last_micro else contextlib.nullcontext():
            with autocast(sc.device, sc.amp_dtype):
                logits = parts.model(x)
            loss = parts.loss_fn(logits.float(), y)
            state.scaler.scale(loss / sc.accum).backward()
        meter.add(loss, logits, y, int(batch["skipped"].sum()) if "skipped" in batch else 0)
        micro += 1
        if not last_micro:
            continue

        optimizer_step(state, sc)
        step += 1
        state.progress = Progress(epoch=epoch, step_in_epoch=step, iteration=state.progress.iteration + 1)
        if step % parts.log_period == 0 or step == last_step:
            meter.stop_if_nonfinite(epoch, state.progress.iteration)
            _log_step(parts, meter.period_record(parts, epoch, step, start_step, lr), stats)
        signum = stop.agreed() if stop is not None and checkpointer is not None else 0
        if signum:
            meter.stop_if_nonfinite(epoch, state.progress.iteration)
            state.sums = meter.totals()
            raise Preempted(signum, checkpointer.save(state), state.progress.describe())
        if step == last_step:
            break
        if checkpointer is not None and checkpointer.mid_epoch_due(step):
            meter.stop_if_nonfinite(epoch, state.progress.iteration)  # never checkpoint a diverged state
            state.sums = meter.totals()
            checkpointer.save(state)
    meter.stop_if_nonfinite(epoch, state.progress.iteration)

    totals = meter.totals()
    if step == steps:
        state.progress, state.sums = Progress(epoch + 1, 0, state.progress.iteration), EpochSums()
    n = max(totals.seen, 1)
    epoch_stats = {
        "_type": "train_epoch", "epoch": epoch + 1, "iteration": state.progress.iteration,
        "loss": totals.loss_sum / n, "top1": 100.0 * totals.correct / n, "lr": lr,
        "skipped_videos": int(totals.skipped), "clips_per_s": totals.seen / max(totals.time_s, 1e-9),
        "time_s": totals.time_s, "mem_mb": memory_mb(sc.device),
    }
    logger.info(f"epoch {epoch + 1} done: loss {epoch_stats['loss']:.4f} train top-1 "
                f"{epoch_stats['top1']:.2f}% broken videos replaced {epoch_stats['skipped_videos']} "
                f"time {epoch_stats['time_s']:.1f}s")
    if stats is not None:
        stats.write(epoch_stats, "train_epoch", state.progress.iteration)
    return epoch_stats


def optimizer_step(state: TrainState, sc: StepConfig) -> None:
    """Clip (if asked), step, update the scaler, clear the gradients, update the EMA."""
    if sc.clip_grad_norm is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.model.parameters(), sc.clip_grad_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    if state.ema is not None:
        state.ema.update(state.model, state.progress.iteration)


def _log_step(parts: TrainParts, rec: dict, stats: Optional[StatsWriter]) -> None:
    logger.info(f"epoch {rec['epoch']}/{parts.max_epoch} iter {rec['iter']}/{parts.steps_per_epoch} "
                f"loss {rec['loss']:.4f} lr {rec['lr']:.5g} clips/s {rec['clips_per_s']:.1f} "
                f"data {rec['data_time_s']:.3f}s/step eta {format_eta(rec['eta_s'])} mem {rec['mem_mb']:.0f}MB")
    if stats is not None:
        stats.write(rec, "train", rec["iteration"])


class _EpochMeter:
    """This rank's running sums of one epoch, kept on the device: read (one sync) only when a
    progress line is logged, a checkpoint is written or the epoch ends."""

    def __init__(self, before: EpochSums, device: torch.device):
        def scalar(v):
            return torch.tensor(float(v), device=device, dtype=torch.float64)
        self.device = device
        self.loss_sum, self.correct = scalar(before.loss_sum), scalar(before.correct)
        self.seen = scalar(before.seen)
        self.skipped = int(before.skipped)
        self.nonfinite = scalar(0.0)
        self.period_loss, self.period_n = scalar(0.0), 0  # since the last progress line
        self.time_before = before.time_s  # spent on this epoch before a resume
        self.data_time = 0.0
        self.t_start = self.t_period = time.perf_counter()

    def timed(self, loader, stop: Optional[StopFlag] = None):
        """``loader``'s batches, with the time spent waiting for each added to ``data_time``."""
        it = _start(loader, stop)
        while True:
            t = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.data_time += time.perf_counter() - t
            yield batch

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, skipped: int) -> None:
        d = loss.detach()
        self.nonfinite += (~torch.isfinite(d)).double()
        self.loss_sum += d.double() * y.shape[0]
        self.period_loss += d.double()
        self.period_n += 1
        self.correct += top1_hits(logits.detach(), y)  # y: labels [B] or multi-hot [B, K]
        self.seen += y.shape[0]
        self.skipped += skipped

    def stop_if_nonfinite(self, epoch: int, iteration: int) -> None:
        """All ranks agree (one tiny all-reduce) so they stop together instead of hanging."""
        f = self.nonfinite.clone()
        dist_utils.all_reduce_sum(f)
        if float(f) > 0:
            raise NonFiniteLossError(
                f"non-finite loss (NaN/inf) in epoch {epoch + 1} before optimizer step {iteration}; "
                "stopped without saving (lower SOLVER.BASE_LR, set TRAIN.CLIP_GRAD_NORM, or use float32)")

    def period_record(self, parts: TrainParts, epoch: int, step: int, start_step: int, lr: float) -> dict:
        """The ``train_iter`` record of the steps since the last one; starts a new period."""
        now = time.perf_counter()
        done = step - start_step  # steps run by this process in this epoch
        period = min(step % parts.log_period or parts.log_period, done)
        steps = parts.steps_per_epoch
        remaining = (steps - step) + (parts.max_epoch - epoch - 1) * steps
        rec = {
            "_type": "train_iter", "epoch": epoch + 1, "iter": step, "iteration": parts.state.progress.iteration,
            "loss": float(self.period_loss) / max(self.period_n, 1), "lr": lr,
            "clips_per_s": parts.global_batch * period / max(now - self.t_period, 1e-9),
            "data_time_s": self.data_time / done, "eta_s": (now - self.t_start) / done * remaining,
            "mem_mb": memory_mb(self.device),
        }
        self.period_loss.zero_()
        self.period_n, self.t_period = 0, now
        return rec

    def totals(self) -> EpochSums:
        """The epoch's sums so far, added over all ranks (one small all-reduce; each rank saw a
        disjoint part of every global batch)."""
        t = torch.stack([self.loss_sum, self.correct, self.seen,
                         torch.tensor(float(self.skipped), device=self.device, dtype=torch.float64)])
        dist_utils.all_reduce_sum(t)
        loss_sum, correct, seen, skipped = t.tolist()
        return EpochSums(loss_sum=loss_sum, correct=correct, seen=seen, skipped=skipped,
                         time_s=self.time_before + time.perf_counter() - self.t_start)


def _sums_before(parts: TrainParts, start_step: int) -> EpochSums:
    """What this rank adds its running sums to: zeros for a fresh epoch. In a resumed one, rank 0
    carries the sums of the steps done before (they are totals over ranks), the others only the
    time already spent."""
    if not start_step:
        return EpochSums()
    return parts.state.sums if parts.dist.is_main else EpochSums(time_s=parts.state.sums.time_s)


def _start(loader, stop: Optional[StopFlag]):
    """``iter(loader)``, its worker processes started with the stop signals blocked (they are
    the trainer's to handle; see ``rs3d.engine.preemption``)."""
    if stop is None:
        return iter(loader)
    with stop.blocked():
        it = iter(loader)
    stop.shielded.add(it)
    return it


@torch.no_grad()
def validate(model: nn.Module, loader, sc: StepConfig, epoch: int, iteration: int,
             stop: Optional[StopFlag] = None) -> dict:
    """Cheap validation (one centre clip, centre crop) over every rank's shard; top-1/top-5 in %."""
    if sc.multi_label:  # mAP over all ranks' clips
        from rs3d.engine.multilabel import validate_multilabel
        return validate_multilabel(model, loader, sc, epoch, iteration, stop)
    model.eval()
    dev = sc.device
    totals = torch.zeros(5, device=dev, dtype=torch.float64)  # loss, top1, top5, n, skipped
    ce = nn.CrossEntropyLoss(reduction="sum")
    t0 = time.perf_counter()
    for batch in _start(loader, stop):
        x = _model_input(batch, sc)
        y = batch["label"].to(dev, non_blocking=True)
        with autocast(dev, sc.amp_dtype):
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


def validate_and_log(parts: TrainParts, epoch: int, stats: Optional[StatsWriter] = None,
                     stop: Optional[StopFlag] = None) -> bool:
    """Validate the EMA model (the one the recipe evaluates, BN statistics included; the model
    itself without EMA), log and record it; returns whether it is the best so far."""
    state = parts.state
    model = state.ema.module if state.ema is not None else state.model
    val = validate(model, parts.val_loader, parts.step, epoch, state.progress.iteration, stop)
    key = "mAP" if "mAP" in val else "top1"  # the best model: by mAP on multi-label data
    is_best = state.best_top1 is None or val[key] > state.best_top1
    state.best_top1 = val[key] if is_best else state.best_top1
    shown = f"mAP {val['mAP']:.2f}% " if "mAP" in val else ""
    logger.info(f"val (epoch {epoch + 1}, {'EMA' if state.ema is not None else 'model'}): {shown}"
                f"top-1 {val['top1']:.2f}% top-5 {val['top5']:.2f}% "
                f"loss {val['loss']:.4f} on {val['num_clips']} clips (best {state.best_top1:.2f}%)")
    if stats is not None:
        stats.write(val, "val", state.progress.iteration)
    return is_best
