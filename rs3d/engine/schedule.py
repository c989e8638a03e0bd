"""Learning rate as a pure function of the optimizer step (nanoGPT style: no scheduler object).

Linear warm-up from ``warmup_start_lr`` to the cosine curve's value at the end of warm-up, then
the cosine curve over the whole run to ``end_lr`` (as PySlowFast and the Model Garden's
LinearWarmup-wrapped cosine do). Stepping per iteration, not per epoch, is what the recipe uses.

The run's length (``SOLVER.RUN_LENGTH``): "epochs" (PyTorch / PySlowFast) trains ``MAX_EPOCH``
whole epochs of ``floor(clips / batch)`` steps; "examples" (the TF Model Garden) trains
``ceil(MAX_EPOCH * clips / batch)`` steps, the last epoch cut short where they end: the released
run is 73,682 steps (350 epochs of 215,570 clips at 1,024), not 350 x 210 = 73,500. The warm-up is
``round(WARMUP_EPOCHS * steps per epoch)`` either way (the released 1,050 = 5 x 210).

Because the warm-up climbs to the cosine's value where the warm-up ends, a warm-up as long as the
run never gets off the ground (every step's rate would be 0). :func:`resolve_warmup` shortens such a
warm-up to a tenth of the run and says so, and :attr:`Schedule.peak_lr` is the rate actually reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

RUN_LENGTHS = ("epochs", "examples")
# What a warm-up that would last the whole run is shortened to, as a share of the run.
SHORTENED_WARMUP = 0.1


def scaled_lr(base_lr: float, batch_size: int, reference_batch_size: int) -> float:
    """Linear scaling rule: the recipe's 0.8 at batch 1024 becomes 0.1 at batch 128."""
    return base_lr * batch_size / reference_batch_size


def cosine_lr(it: int, base_lr: float, total_iters: int, end_lr: float = 0.0) -> float:
    t = min(max(it, 0), total_iters) / max(total_iters, 1)
    return end_lr + (base_lr - end_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def lr_at(
    it: int, base_lr: float, total_iters: int, warmup_iters: int = 0, warmup_start_lr: float = 0.0, end_lr: float = 0.0
) -> float:
    """Learning rate of optimizer step ``it`` (0-based) of ``total_iters``.

    ``lr_at(0) == warmup_start_lr`` when there is a warm-up, ``lr_at(total_iters) == end_lr``.
    """
    if it < warmup_iters:
        target = cosine_lr(warmup_iters, base_lr, total_iters, end_lr)
        return warmup_start_lr + (target - warmup_start_lr) * it / warmup_iters
    return cosine_lr(it, base_lr, total_iters, end_lr)


def run_steps(
    max_epoch: int, steps_per_epoch: int, run_length: str = "epochs", num_examples: int = 0, batch_size: int = 1
) -> int:
    """Optimizer steps of the whole run (see the module docstring for ``run_length``)."""
    if run_length == "epochs":
        return max_epoch * steps_per_epoch
    if run_length == "examples":
        return max(1, -(-max_epoch * num_examples // batch_size))  # ceil: every clip MAX_EPOCH times
    raise ValueError(f"SOLVER.RUN_LENGTH must be one of {list(RUN_LENGTHS)}, got {run_length!r}")


def resolve_warmup(warmup_iters: int, total_iters: int) -> Tuple[int, Optional[str]]:
    """(warm-up steps to use, a warning or None).

    A warm-up of at least the whole run would keep the rate at 0 throughout: it is shortened to
    ``SHORTENED_WARMUP`` of the run. One that ends past the middle of the run is kept but warned
    about: the rate then never reaches half of the (scaled) BASE_LR.
    """
    if warmup_iters >= total_iters > 0:
        short = int(total_iters * SHORTENED_WARMUP)
        return short, (
            f"SOLVER.WARMUP_EPOCHS gives a warm-up of {warmup_iters} steps, not shorter than the "
            f"run ({total_iters} steps): the rate would stay 0 throughout; warm-up shortened to "
            f"{short} steps ({SHORTENED_WARMUP:.0%} of the run)"
        )
    if 2 * warmup_iters > total_iters:
        peak = 0.5 * (1.0 + math.cos(math.pi * warmup_iters / total_iters))
        return warmup_iters, (
            f"SOLVER.WARMUP_EPOCHS gives a warm-up of {warmup_iters} of the run's {total_iters} "
            f"steps: the rate peaks at {peak:.0%} of the scaled BASE_LR (the cosine's value "
            "where the warm-up ends)"
        )
    return warmup_iters, None


@dataclass(frozen=True)
class Schedule:
    """The run's learning-rate curve, resolved once: ``schedule(it)`` is the rate of step ``it``."""

    base_lr: float  # peak rate, after linear scaling
    total_iters: int  # optimizer steps of the whole run
    warmup_iters: int
    steps_per_epoch: int
    warmup_start_lr: float = 0.0
    end_lr: float = 0.0

    def __call__(self, it: int) -> float:
        return lr_at(it, self.base_lr, self.total_iters, self.warmup_iters, self.warmup_start_lr, self.end_lr)

    @property
    def peak_lr(self) -> float:
        """The highest rate the run reaches: the cosine's value where the warm-up ends (BASE_LR's
        scaled value only without a warm-up)."""
        return max(self(min(self.warmup_iters, self.total_iters)), self.warmup_start_lr)

    @property
    def num_epochs(self) -> int:
        """Epochs the run starts, the last one possibly cut short."""
        return -(-self.total_iters // self.steps_per_epoch)

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimizer steps of ``epoch`` (0-based): all of them but in a run's cut-short last epoch."""
        return max(0, min(self.steps_per_epoch, self.total_iters - epoch * self.steps_per_epoch))

    def summary(self) -> dict:
        """What a checkpoint records about the schedule (for readers; a resume recomputes it)."""
        return {
            "base_lr": self.base_lr,
            "total_iters": self.total_iters,
            "warmup_iters": self.warmup_iters,
            "steps_per_epoch": self.steps_per_epoch,
        }
