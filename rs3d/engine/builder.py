"""Config -> the training loop's parts: the one place of the engine that reads a training config.

``build_training(cfg, dist)`` gives model, EMA, optimizer and scaler (as a :class:`TrainState`),
the forward module (DDP / torch.compile around the model), the loaders, the loss, the learning
rate schedule and the per-step settings. ``rs3d.engine.train`` runs them; so does the end-to-end
benchmark, which therefore measures the real set-up rather than a copy of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from rs3d.checkpoint import METADATA_KEY, checkpoint_metadata
from rs3d.data import build_loader
from rs3d.engine.distributed import DistInfo
from rs3d.engine.ema import ModelEma
from rs3d.engine.finetune import FinetuneOptions, apply_freezing, describe, lr_multiplier
from rs3d.engine.logs import logger
from rs3d.engine.losses import build_loss
from rs3d.engine.mixup import ClipMix, build_mix
from rs3d.engine.optim import build_optimizer
from rs3d.engine.precision import AMP_DTYPES
from rs3d.engine.schedule import Schedule, resolve_warmup, run_steps, scaled_lr
from rs3d.engine.state import TrainState
from rs3d.errors import ConfigError
from rs3d.models import build_model
from rs3d.models.convert import load_pretrained_report


def batch_split(global_batch: int, micro_batch: Optional[int], world_size: int) -> tuple[int, int]:
    """(micro, accum) with ``global_batch == world_size * micro * accum``; ConfigError otherwise.

    ``micro_batch`` None: the global batch divided among the processes (no accumulation)."""
    if micro_batch is None:
        micro_batch = global_batch // world_size
        if micro_batch < 1 or micro_batch * world_size != global_batch:
            raise ConfigError(
                f"TRAIN.BATCH_SIZE {global_batch} does not divide among {world_size} "
                "processes; set TRAIN.MICRO_BATCH_SIZE"
            )
    accum, rem = divmod(global_batch, world_size * micro_batch)
    if rem or accum < 1:
        raise ConfigError(
            f"TRAIN.BATCH_SIZE {global_batch} must equal processes ({world_size}) x "
            f"TRAIN.MICRO_BATCH_SIZE ({micro_batch}) x accumulation steps"
        )
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
    clip_grad_norm: Optional[float]  # max global gradient norm; None = no clipping
    accum: int  # micro-batches per optimizer step on each rank
    mean: list
    std: list
    multi_label: bool = False  # DATA.MULTI_LABEL: multi-hot targets, validation reports mAP


@dataclass
class TrainParts:
    """Everything ``train_one_epoch`` and ``validate`` work with."""

    state: TrainState
    model: nn.Module  # what runs forward: ``state.model``, maybe inside DDP and/or torch.compile
    train_loader: object
    val_loader: Optional[object]  # None when TRAIN.EVAL_PERIOD is 0
    loss_fn: nn.Module
    step: StepConfig
    schedule: Schedule
    dist: DistInfo
    seed: int  # RNG_SEED: every epoch's random streams derive from (seed, epoch, rank)
    max_epoch: int  # epochs the run starts (the last may be cut short: SOLVER.RUN_LENGTH examples)
    global_batch: int
    log_period: int
    mix: Optional[ClipMix] = None  # MixUp/CutMix of the training batches (MIXUP.ENABLE)

    @property
    def steps_per_epoch(self) -> int:
        return self.schedule.steps_per_epoch

    def steps_in_epoch(self, epoch: int) -> int:
        """Steps of ``epoch``: ``steps_per_epoch`` but in a cut-short last epoch (SOLVER.RUN_LENGTH)."""
        return self.schedule.steps_in_epoch(epoch)


def build_state(cfg, dist: DistInfo, init_weights: bool = True) -> TrainState:
    """Model (seeded from RNG_SEED, the same on every rank), EMA, optimizer and scaler.

    ``init_weights``: load TRAIN.CHECKPOINT_FILE_PATH first, if set (a fresh run; a resumed one
    takes its weights from its checkpoint instead). It happens before the EMA copies the model.
    Fine-tuning choices (frozen stages and BN statistics, learning-rate multipliers;
    ``rs3d.engine.finetune``) apply to fresh and resumed runs alike, before the optimizer is built.
    """
    opts = FinetuneOptions.from_cfg(cfg)
    seed_all(cfg.RNG_SEED)
    model = build_model(cfg)
    if init_weights and cfg.TRAIN.CHECKPOINT_FILE_PATH:
        loaded = load_pretrained_report(
            model,
            cfg.TRAIN.CHECKPOINT_FILE_PATH,
            inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
            inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE,
        )
        logger.info(f"initial weights from {loaded.describe()}")
    if dist.world_size > 1 and cfg.BN.SYNC:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not opts.is_default or cfg.TRAIN.CHECKPOINT_FILE_PATH:
        # After the SyncBatchNorm conversion, which replaces the BN modules it would pin in eval mode.
        counts = apply_freezing(model, opts)
        from_checkpoint = bool(cfg.TRAIN.CHECKPOINT_FILE_PATH)
        logger.info(describe(opts, counts, sum(p.numel() for p in model.parameters()), from_checkpoint))
        if (opts.freeze_stages or opts.freeze_bn) and not from_checkpoint:
            logger.warning(
                "frozen stages or BN statistics without TRAIN.CHECKPOINT_FILE_PATH: they keep "
                "their random initialisation"
            )
    model.to(dist.device)
    if cfg.TRAIN.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last_3d)
    ema = ModelEma(model, cfg.TRAIN.EMA_DECAY, form=cfg.TRAIN.EMA_FORM) if cfg.TRAIN.EMA else None
    optimizer = build_optimizer(
        model,
        lr=0.0,
        momentum=cfg.SOLVER.MOMENTUM,
        nesterov=cfg.SOLVER.NESTEROV,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        method=cfg.SOLVER.OPTIMIZING_METHOD,
        lr_mult=lr_multiplier(model, opts),
        momentum_form=cfg.SOLVER.MOMENTUM_FORM,
        decay_self_gating=cfg.SOLVER.SELF_GATING_WEIGHT_DECAY,
    )
    scaler = torch.amp.GradScaler(dist.device.type, enabled=AMP_DTYPES[cfg.TRAIN.AMP_DTYPE] == torch.float16)
    return TrainState(
        model=model,
        optimizer=optimizer,
        scaler=scaler,
        ema=ema,
        world_size=dist.world_size,
        info={"cfg": cfg.dump(), METADATA_KEY: checkpoint_metadata(cfg)},
    )


def wrap_model(model: nn.Module, dist: DistInfo, compile: bool) -> nn.Module:
    """The module that runs forward: DDP over the ranks (world > 1), then torch.compile if asked."""
    if dist.world_size > 1:
        dev = dist.device
        model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return torch.compile(model) if compile else model


def build_schedule(cfg, steps_per_epoch: int, num_examples: int = 0) -> Schedule:
    """Warm-up + cosine over the run (SOLVER.RUN_LENGTH: MAX_EPOCH whole epochs, or MAX_EPOCH x
    ``num_examples`` clips), peak BASE_LR linearly scaled to the batch. A warm-up as long as the run
    is shortened, with a warning (``rs3d.engine.schedule.resolve_warmup``)."""
    total = run_steps(cfg.SOLVER.MAX_EPOCH, steps_per_epoch, cfg.SOLVER.RUN_LENGTH, num_examples, cfg.TRAIN.BATCH_SIZE)
    warmup, warning = resolve_warmup(int(round(cfg.SOLVER.WARMUP_EPOCHS * steps_per_epoch)), total)
    if warning:
        logger.warning(warning)
    return Schedule(
        base_lr=scaled_lr(cfg.SOLVER.BASE_LR, cfg.TRAIN.BATCH_SIZE, cfg.SOLVER.REFERENCE_BATCH_SIZE),
        total_iters=total,
        warmup_iters=warmup,
        steps_per_epoch=steps_per_epoch,
        warmup_start_lr=cfg.SOLVER.WARMUP_START_LR,
        end_lr=cfg.SOLVER.COSINE_END_LR,
    )


def build_training(cfg, dist: DistInfo, init_weights: bool = True) -> TrainParts:
    """The parts of a training run of ``cfg`` (validated) on this rank, at the start of the run.

    A resumed run then loads its checkpoint into ``parts.state`` (``TrainState.load_state_dict``).
    """
    if dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.CUDNN_BENCHMARK)
    rank, world = dist.rank, dist.world_size
    micro, accum = batch_split(cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.MICRO_BATCH_SIZE, world)
    logger.info(
        f"world {world} x micro-batch {micro} x accumulation {accum} = global batch "
        f"{cfg.TRAIN.BATCH_SIZE}; device {dist.device}; output {cfg.OUTPUT_DIR}"
    )
    state = build_state(cfg, dist, init_weights)
    model = wrap_model(state.model, dist, cfg.TRAIN.COMPILE)

    train_loader = build_loader(cfg, "train", "train", micro, rank, world)
    val_loader = build_loader(cfg, "val", "val", micro, rank, world) if cfg.TRAIN.EVAL_PERIOD > 0 else None
    steps = len(train_loader) // accum
    if steps < 1:
        raise ConfigError(
            f"the train split gives {len(train_loader)} micro-batches of {micro} per process, "
            f"fewer than one global batch of {cfg.TRAIN.BATCH_SIZE}"
        )
    schedule = build_schedule(cfg, steps, len(train_loader.dataset))
    state.info["scheduler"] = schedule.summary()
    logger.info(
        f"{steps} steps/epoch, {schedule.total_iters} steps in all ({schedule.num_epochs} epochs), "
        f"peak lr {schedule.peak_lr:.5g} at step {schedule.warmup_iters} (BASE_LR {cfg.SOLVER.BASE_LR} x "
        f"{cfg.TRAIN.BATCH_SIZE}/{cfg.SOLVER.REFERENCE_BATCH_SIZE} = {schedule.base_lr:.5g}), "
        f"warm-up {schedule.warmup_iters} steps"
    )
    step = StepConfig(
        device=dist.device,
        amp_dtype=AMP_DTYPES[cfg.TRAIN.AMP_DTYPE],
        channels_last=cfg.TRAIN.CHANNELS_LAST,
        clip_grad_norm=cfg.TRAIN.CLIP_GRAD_NORM,
        accum=accum,
        mean=list(cfg.DATA.MEAN),
        std=list(cfg.DATA.STD),
        multi_label=cfg.DATA.MULTI_LABEL,
    )
    loss_fn = build_loss(
        cfg.TRAIN.LABEL_SMOOTHING,
        multi_label=cfg.DATA.MULTI_LABEL,
        loss=cfg.TRAIN.LOSS,
        target_threshold=cfg.TRAIN.BCE_TARGET_THRESHOLD,
    )
    return TrainParts(
        state=state,
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        loss_fn=loss_fn,
        step=step,
        schedule=schedule,
        dist=dist,
        seed=cfg.RNG_SEED,
        max_epoch=schedule.num_epochs,
        global_batch=cfg.TRAIN.BATCH_SIZE,
        log_period=cfg.LOG_PERIOD,
        mix=build_mix(cfg),
    )
