"""Learning rate as a pure function of the optimizer step (nanoGPT style: no scheduler object).

Linear warm-up from ``warmup_start_lr`` to the cosine curve's value at the end of warm-up, then
the cosine curve over the whole run to ``end_lr`` (as PySlowFast and the Model Garden's
LinearWarmup-wrapped cosine do). Stepping per iteration, not per epoch, is what the recipe uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def scaled_lr(base_lr: float, batch_size: int, reference_batch_size: int) -> float:
    """Linear scaling rule: the recipe's 0.8 at batch 1024 becomes 0.1 at batch 128."""
    return base_lr * batch_size / reference_batch_size


def cosine_lr(it: int, base_lr: float, total_iters: int, end_lr: float = 0.0) -> float:
    t = min(max(it, 0), total_iters) / max(total_iters, 1)
    return end_lr + (base_lr - end_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def lr_at(it: int, base_lr: float, total_iters: int, warmup_iters: int = 0,
          warmup_start_lr: float = 0.0, end_lr: float = 0.0) -> float:
    """Learning rate of optimizer step ``it`` (0-based) of ``total_iters``.

    ``lr_at(0) == warmup_start_lr`` when there is a warm-up, ``lr_at(total_iters) == end_lr``.
    """
    if it < warmup_iters:
        target = cosine_lr(warmup_iters, base_lr, total_iters, end_lr)
        return warmup_start_lr + (target - warmup_start_lr) * it / warmup_iters
    return cosine_lr(it, base_lr, total_iters, end_lr)


@dataclass(frozen=True)
class Schedule:
    """The run's learning-rate curve, resolved once: ``schedule(it)`` is the rate of step ``it``."""
    base_lr: float          # peak rate, after linear scaling
    total_iters: int        # optimizer steps of the whole run
    warmup_iters: int
    steps_per_epoch: int
    warmup_start_lr: float = 0.0
    end_lr: float = 0.0

    def __call__(self, it: int) -> float:
        return lr_at(it, self.base_lr, self.total_iters, self.warmup_iters, self.warmup_start_lr, self.end_lr)

    def summary(self) -> dict:
        """What a checkpoint records about the schedule (for readers; a resume recomputes it)."""
        return {"base_lr": self.base_lr, "total_iters": self.total_iters,
                "warmup_iters": self.warmup_iters, "steps_per_epoch": self.steps_per_epoch}
