"""One training epoch's running sums (loss, top-1 hits, clips, broken videos, time) and the
progress records made from them."""

from __future__ import annotations

import time
from typing import Optional

import torch

from rs3d.engine import distributed as dist_utils
from rs3d.engine.batches import start_batches
from rs3d.engine.builder import TrainParts
from rs3d.engine.logs import memory_mb
from rs3d.engine.metrics import top1_hits
from rs3d.engine.preemption import StopFlag
from rs3d.engine.state import EpochSums
from rs3d.errors import NonFiniteLossError


class EpochMeter:
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
        it = start_batches(loader, stop)
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
                "stopped without saving (lower SOLVER.BASE_LR, set TRAIN.CLIP_GRAD_NORM, or use float32)"
            )

    def period_record(self, parts: TrainParts, epoch: int, step: int, start_step: int, lr: float) -> dict:
        """The ``train_iter`` record of the steps since the last one; starts a new period."""
        now = time.perf_counter()
        done = step - start_step  # steps run by this process in this epoch
        period = min(step % parts.log_period or parts.log_period, done)
        remaining = parts.schedule.total_iters - parts.state.progress.iteration
        rec = {
            "_type": "train_iter",
            "epoch": epoch + 1,
            "iter": step,
            "iteration": parts.state.progress.iteration,
            "loss": float(self.period_loss) / max(self.period_n, 1),
            "lr": lr,
            "clips_per_s": parts.global_batch * period / max(now - self.t_period, 1e-9),
            "data_time_s": self.data_time / done,
            "eta_s": (now - self.t_start) / done * remaining,
            "mem_mb": memory_mb(self.device),
        }
        self.period_loss.zero_()
        self.period_n, self.t_period = 0, now
        return rec

    def totals(self) -> EpochSums:
        """The epoch's sums so far, added over all ranks (one small all-reduce; each rank saw a
        disjoint part of every global batch)."""
        t = torch.stack(
            [
                self.loss_sum,
                self.correct,
                self.seen,
                torch.tensor(float(self.skipped), device=self.device, dtype=torch.float64),
            ]
        )
        dist_utils.all_reduce_sum(t)
        loss_sum, correct, seen, skipped = t.tolist()
        return EpochSums(
            loss_sum=loss_sum,
            correct=correct,
            seen=seen,
            skipped=skipped,
            time_s=self.time_before + time.perf_counter() - self.t_start,
        )


def sums_before(parts: TrainParts, start_step: int) -> EpochSums:
    """What this rank adds its running sums to: zeros for a fresh epoch. In a resumed one, rank 0
    carries the sums of the steps done before (they are totals over ranks), the others only the
    time already spent."""
    if not start_step:
        return EpochSums()
    return parts.state.sums if parts.dist.is_main else EpochSums(time_s=parts.state.sums.time_s)
