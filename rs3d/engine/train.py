"""The training loop, as plain functions: ``train(cfg)`` -> ``train_one_epoch`` / ``validate_and_log``.

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
mirror uploaded at every checkpoint (``rs3d.file_io.OutputMirror``).
"""

from __future__ import annotations

import contextlib
import os
from typing import Optional

import torch
from torch import nn

from rs3d import file_io
from rs3d.checkpoint import checkpoint_dir, latest_good_checkpoint, list_checkpoints, remove_stale_temporaries
from rs3d.config import save_config
from rs3d.data import set_epoch
from rs3d.engine import distributed as dist_utils
from rs3d.engine.batches import end_workers, model_input
from rs3d.engine.builder import StepConfig, TrainParts, build_training, seed_all
from rs3d.engine.checkpointer import Checkpointer, is_write_failure, write_error
from rs3d.engine.data_manifest import CHECKPOINT_KEY, training_set_entry
from rs3d.engine.distributed import no_sync
from rs3d.engine.logs import (
    StatsWriter,
    format_eta,
    log_to_file,
    logger,
    memory_mb,
    plot_training_curves,
    setup_logging,
)
from rs3d.engine.meter import EpochMeter, sums_before
from rs3d.engine.mixup import batch_rng
from rs3d.engine.precision import autocast
from rs3d.engine.preemption import Preempted, StopFlag
from rs3d.engine.rng import set_rng_state
from rs3d.engine.run_lock import announce, claim_output_dir
from rs3d.engine.state import EpochSums, Progress, TrainState
from rs3d.engine.validation import validate_and_log
from rs3d.errors import ConfigError, OutputDirError, Rs3dError, error_line


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
    """Claim OUTPUT_DIR (``rs3d.engine.run_lock``), then run; an error of the run is also written to
    log.txt, and a file that cannot be written (disk full, read-only) is one line naming it."""
    out = cfg.OUTPUT_DIR
    lock = claim_output_dir(out, resuming=cfg.TRAIN.AUTO_RESUME)  # before anything is written there
    try:
        mirror = file_io.OutputMirror(out)  # where the logs are written: OUTPUT_DIR itself when local
        try:
            if dist.is_main:
                mirror.pull(("log.txt", "json_stats.log"))
            setup_logging(mirror.local, dist.rank)
        except OSError as e:
            raise (write_error(e, out, out) if is_write_failure(e) else e) from None
        announce(lock, out)
        try:
            return _run(cfg, dist, stop, mirror)
        except OSError as e:  # a log, the config or the stats could not be written
            if not is_write_failure(e):
                raise
            error = write_error(e, out, out)
            log_to_file(f"error: {error}")
            raise error from None
        except Preempted:
            raise
        except Rs3dError as e:
            log_to_file(f"error: {error_line(e)}")
            raise
    finally:
        if lock is not None:
            lock.release()


def _run(cfg, dist: dist_utils.DistInfo, stop: StopFlag, mirror: file_io.OutputMirror) -> dict:
    out = cfg.OUTPUT_DIR
    if dist.is_main:
        save_config(cfg, out)
        for path in remove_stale_temporaries(out):
            logger.info(f"removed {path} (a save cut short by a crash)")
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restarts:
        logger.info(f"torchrun restart {restarts}: the worker group resumes from the newest good checkpoint")
    resume_path, ckpt = latest_good_checkpoint(out) if cfg.TRAIN.AUTO_RESUME else (None, None)
    if ckpt is None and cfg.TRAIN.AUTO_RESUME and list_checkpoints(out):
        # Starting afresh among them would number and prune this run's files among files it did not write.
        raise OutputDirError(
            f"none of the checkpoints in {checkpoint_dir(out)} loads (each is named above); "
            "move them away or choose another OUTPUT_DIR to start a new run"
        )
    parts = build_training(cfg, dist, init_weights=ckpt is None)
    if ckpt is not None:
        resume(parts, resume_path, ckpt)
        del ckpt
    state = parts.state
    checkpointer = Checkpointer(
        out,
        cfg.TRAIN.CHECKPOINT_KEEP,
        cfg.TRAIN.CHECKPOINT_PERIOD_ITERS,
        on_saved=mirror.push if mirror.is_remote else None,
    )
    stats = StatsWriter(
        mirror.local, enabled=dist.is_main, tensorboard=cfg.TENSORBOARD.ENABLE, purge_step=state.progress.iteration + 1
    )  # also a restart from scratch: hide old runs
    if dist.is_main:  # the training set's fingerprint and counts: json_stats.log and every checkpoint
        state.info[CHECKPOINT_KEY] = training_set_entry(cfg, stats)

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
        end_workers(stop, (parts.train_loader, parts.val_loader))
        stats.close()
        if dist.is_main:
            mirror.push()
    if dist.is_main and os.path.exists(stats.path):
        png = plot_training_curves(stats.path, os.path.join(mirror.local, "training_curves.png"))
        mirror.push()
        logger.info(f"curves: {file_io.join(out, os.path.basename(png))}")
    return epoch_stats


def resume(parts: TrainParts, path: str, ckpt: dict) -> None:
    """Continue from checkpoint ``ckpt`` (read from ``path``); ConfigError if this run cannot."""
    world, step = parts.dist.world_size, int(ckpt.get("step_in_epoch", 0))
    if step:
        # Per-rank RNG states and positions in per-rank data shards: only the same world size fits.
        rng = ckpt.get("rng")
        if ckpt.get("world_size") != world or not isinstance(rng, list) or len(rng) != world:
            raise ConfigError(
                f"{path} is a mid-epoch checkpoint of {ckpt.get('world_size')} "
                f"processes; resume it with the same number, not {world}"
            )
    parts.state.load_state_dict(ckpt)
    logger.info(f"resumed from {path} ({parts.state.progress.describe()}, iter {parts.state.progress.iteration})")
    if step > parts.steps_per_epoch:  # == : every step done, validation not yet (a stop signal)
        raise ConfigError(
            f"{path} is {step} steps into an epoch, but an epoch now has "
            f"{parts.steps_per_epoch} steps (the data or TRAIN.BATCH_SIZE changed)"
        )


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
    set_epoch(parts.train_loader, epoch, start_batch=first * parts.step.accum)
    return first


def _mixed(parts: TrainParts, x: torch.Tensor, y: torch.Tensor, epoch: int, micro: int) -> torch.Tensor:
    """MixUp/CutMix ``x`` in place (rs3d.engine.mixup); the soft targets. The draw is a function of
    (RNG_SEED, epoch, step, micro-batch, rank); train top-1 stays against the clips' own labels."""
    rng = batch_rng(parts.seed, epoch, parts.state.progress.iteration, micro % parts.step.accum, parts.dist.rank)
    return parts.mix(x, y, rng)[1]


def train_one_epoch(
    parts: TrainParts,
    epoch: int,
    stats: Optional[StatsWriter] = None,
    checkpointer: Optional[Checkpointer] = None,
    until_step: Optional[int] = None,
    stop: Optional[StopFlag] = None,
) -> dict:
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
    steps = parts.steps_in_epoch(epoch)
    last_step = min(until_step or steps, steps)
    start_step = step = start_epoch(parts, epoch)
    meter = EpochMeter(sums_before(parts, start_step), sc.device)
    lr = _lr_before_first_step(parts, start_step, steps)
    parts.model.train()
    micro = 0
    batches = meter.timed(parts.train_loader, stop) if step < last_step else ()
    for batch in batches:
        if micro % sc.accum == 0:
            lr = parts.schedule(state.progress.iteration)
            for g in state.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)  # fine-tuning multipliers (rs3d.engine.optim)
        x = model_input(batch, sc)
        y = batch["label"].to(sc.device, non_blocking=True)
        target = y if parts.mix is None else _mixed(parts, x, y, epoch, micro)
        last_micro = (micro + 1) % sc.accum == 0
        # Gradients are all-reduced once per optimizer step, not on every micro-batch.
        with no_sync(parts.model) if not last_micro else contextlib.nullcontext():
            with autocast(sc.device, sc.amp_dtype):
                logits = parts.model(x)
            loss = parts.loss_fn(logits.float(), target)
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
        "_type": "train_epoch",
        "epoch": epoch + 1,
        "iteration": state.progress.iteration,
        "loss": totals.loss_sum / n,
        "top1": 100.0 * totals.correct / n,
        "lr": lr,
        "skipped_videos": int(totals.skipped),
        "clips_per_s": totals.seen / max(totals.time_s, 1e-9),
        "time_s": totals.time_s,
        "mem_mb": memory_mb(sc.device),
    }
    logger.info(
        f"epoch {epoch + 1} done: loss {epoch_stats['loss']:.4f} train top-1 "
        f"{epoch_stats['top1']:.2f}% broken videos replaced {epoch_stats['skipped_videos']} "
        f"time {epoch_stats['time_s']:.1f}s"
    )
    if stats is not None:
        stats.write(epoch_stats, "train_epoch", state.progress.iteration)
    return epoch_stats


def _lr_before_first_step(parts: TrainParts, start_step: int, steps: int) -> float:
    """The learning rate the epoch's stats report if it runs no step: an epoch resumed after its
    last step (only validation was left to do) reports the lr that last step used; otherwise the
    lr of the step about to run (the loop then sets it again, step by step). ``steps``: the epoch's."""
    iteration = parts.state.progress.iteration
    resumed_after_last_step = steps > 0 and start_step == steps
    return parts.schedule(iteration - 1 if resumed_after_last_step else iteration)


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
    logger.info(
        f"epoch {rec['epoch']}/{parts.max_epoch} iter {rec['iter']}/{parts.steps_per_epoch} "
        f"loss {rec['loss']:.4f} lr {rec['lr']:.5g} clips/s {rec['clips_per_s']:.1f} "
        f"data {rec['data_time_s']:.3f}s/step eta {format_eta(rec['eta_s'])} mem {rec['mem_mb']:.0f}MB"
    )
    if stats is not None:
        stats.write(rec, "train", rec["iteration"])
