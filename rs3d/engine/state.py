"""Everything a training run carries from one optimizer step to the next, as one object.

``TrainState.state_dict()`` is what a checkpoint file holds and ``load_state_dict()`` is how a run
resumes from one, so the list of what is saved exists in one place. Only tensors and plain
containers go in: the file loads with ``torch.load(weights_only=True)``. The keys are the ones
rs3d checkpoints have always had (``model``, ``ema``, ``optimizer``, ``epoch``, ...), so older
files still resume and evaluate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from rs3d.engine import distributed as dist_utils
from rs3d.engine.ema import ModelEma
from rs3d.engine.optim import state_mismatch
from rs3d.engine.rng import get_rng_state
from rs3d.errors import ConfigError


@dataclass
class Progress:
    """Where a run is. ``step_in_epoch == 0`` is an epoch end; otherwise the run stands
    ``step_in_epoch`` optimizer steps into epoch ``epoch`` (0-based)."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # optimizer steps done in the epoch under way
    iteration: int = 0  # optimizer steps since the start of the run

    def describe(self) -> str:
        return f"epoch {self.epoch}" + (f" + {self.step_in_epoch} steps" if self.step_in_epoch else "")


@dataclass
class EpochSums:
    """Running sums of the epoch under way, up to ``Progress.step_in_epoch`` (all ranks added).

    Kept so that an epoch resumed in the middle reports the same totals as an uninterrupted one."""

    loss_sum: float = 0.0  # sum over clips of the training loss
    correct: float = 0.0  # clips whose top-1 prediction was right
    seen: float = 0.0  # clips
    skipped: float = 0.0  # broken videos replaced by another sample
    time_s: float = 0.0  # seconds spent on the epoch so far

    @classmethod
    def from_dict(cls, d: dict) -> "EpochSums":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: float(v) for k, v in d.items() if k in names})


@dataclass
class TrainState:
    """Model, EMA, optimizer, gradient scaler and the run's position; what a checkpoint holds.

    ``model`` is the plain module (never the DDP or torch.compile wrapper), so the saved keys
    have no wrapper prefixes.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: Optional[ModelEma] = None
    progress: Progress = field(default_factory=Progress)
    # The best validation figure so far (%) and its name: "top1", or "mAP" on multi-label data;
    # None before the first validation.
    best_metric: Optional[float] = None
    best_metric_name: Optional[str] = None
    sums: EpochSums = field(default_factory=EpochSums)
    # Every rank's RNG state at ``progress``, rank order (``capture_rng``); a run resumed in the
    # middle of an epoch continues each rank's random streams from here.
    rng: list = field(default_factory=list)
    world_size: int = 1
    # Written with every checkpoint for readers (the config YAML, the schedule), never read back.
    info: dict = field(default_factory=dict)

    def capture_rng(self) -> None:
        """Gather every rank's RNG state into ``rng``. Collective: every rank calls it."""
        self.rng = dist_utils.all_gather_object(get_rng_state())

    def state_dict(self) -> dict:
        p = self.progress
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": p.epoch,
            "step_in_epoch": p.step_in_epoch,
            "iteration": p.iteration,
            "rng": self.rng,
            "best_metric": self.best_metric,
            "best_metric_name": self.best_metric_name,
            "world_size": self.world_size,
            **self.info,
        }
        if p.step_in_epoch:
            state["epoch_progress"] = dataclasses.asdict(self.sums)
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        return state

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore everything ``state_dict`` wrote (``world_size`` and ``info`` stay this run's).

        A checkpoint without EMA weights gives the EMA the model's; one without a scaler keeps
        the fresh scaler. Files written before ``best_metric`` hold ``best_top1`` (the run's
        validation figure, mAP on multi-label data, whatever the name; -1 meant no validation yet)."""
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None:
            self.ema.module.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
        mismatch = state_mismatch(self.optimizer, ckpt["optimizer"])
        if mismatch:
            raise ConfigError(mismatch)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.progress = Progress(
            epoch=int(ckpt["epoch"]), step_in_epoch=int(ckpt.get("step_in_epoch", 0)), iteration=int(ckpt["iteration"])
        )
        best = ckpt.get("best_metric", ckpt.get("best_top1"))
        self.best_metric = None if best is None or best < 0 else float(best)
        self.best_metric_name = ckpt.get("best_metric_name") if self.best_metric is not None else None
        self.sums = (
            EpochSums.from_dict(ckpt.get("epoch_progress") or {}) if self.progress.step_in_epoch else EpochSums()
        )
        self.rng = list(ckpt["rng"]) if isinstance(ckpt.get("rng"), list) else []
