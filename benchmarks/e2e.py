"""The real training loop (``rs3d.engine.train.train_one_epoch``) with data wait and compute timed apart.

The loader is wrapped in :class:`TimedLoader`, which records for every micro-batch how long the
loop waited in ``next(loader)`` (data wait) and how long it spent before asking for the next one
(compute: host-to-device copy, forward, backward, optimizer step, EMA). On a GPU the wrapper
synchronises before each request so that compute includes the kernels, not just their launch
(this removes a little of the overlap a real run would have). The first batch is reported on its
own: it includes starting the worker processes.

Whichever side is larger per iteration limits the run: data-bound if the median wait is a
sizeable fraction of the step, compute-bound if the wait is near zero.
"""

from __future__ import annotations

import statistics
import time
from typing import List

import torch


class TimedLoader:
    """Iterates a DataLoader and records (data_wait_s, compute_s) per batch in ``self.records``."""

    def __init__(self, loader, device: torch.device, sync: bool = True):
        self.loader, self.device, self.sync = loader, device, sync
        self.records: List[dict] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):  # sampler, batch_size, dataset: as the wrapped loader
        return getattr(self.loader, name)

    def _now(self) -> float:
        if self.sync and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def __iter__(self):
        t_request = self._now()
        it = iter(self.loader)  # starts the workers (non-persistent, or the first epoch): data wait
        first = True
        try:
            while True:
                try:
                    batch = next(it)
                except StopIteration:
                    return
                t_got = time.perf_counter()
                rec = {"data_wait_s": t_got - t_request, "first_of_epoch": first}
                first = False
                self.records.append(rec)
                yield batch
                t_request = self._now()
                rec["compute_s"] = t_request - t_got
        finally:
            # The loop breaks out after its last step: that step's compute ends here.
            if self.records and "compute_s" not in self.records[-1]:
                self.records[-1]["compute_s"] = self._now() - t_got


def summarize(records: List[dict], batch: int) -> dict:
    """Medians and totals over complete iterations, the first (worker start-up) apart."""
    done = [r for r in records if "compute_s" in r]
    if not done:
        return {"iterations": 0}
    steady = done[1:] or done
    wait = [r["data_wait_s"] for r in steady]
    comp = [r["compute_s"] for r in steady]
    total_wait, total_comp = sum(wait), sum(comp)
    med_wait, med_comp = statistics.median(wait), statistics.median(comp)
    share = total_wait / max(total_wait + total_comp, 1e-12)
    return {
        "iterations": len(done),
        "batch": batch,
        "epoch_start_waits_s": [r["data_wait_s"] for r in done if r.get("first_of_epoch")],
        "first_batch_wait_s": done[0]["data_wait_s"],
        "first_compute_s": done[0]["compute_s"],
        "median_data_wait_s": med_wait,
        "median_compute_s": med_comp,
        "total_data_wait_s": total_wait,
        "total_compute_s": total_comp,
        "data_wait_fraction": share,
        "clips_s": batch * len(steady) / max(total_wait + total_comp, 1e-12),
        "compute_only_clips_s": batch / max(med_comp, 1e-12),
        "limited_by": "data" if share > 0.2 else "compute",
    }


def run_e2e(cfg, steps: int, sync: bool = True) -> dict:
    """``steps`` optimizer steps of the real loop on ``cfg`` (frozen config with a data dir).

    The parts come from :func:`rs3d.engine.builder.build_training` and the steps from
    :func:`rs3d.engine.train.train_one_epoch`, exactly as training runs them (schedule included),
    in one process (no DDP): the global batch is ``cfg.TRAIN.BATCH_SIZE`` with
    ``cfg.TRAIN.MICRO_BATCH_SIZE`` per forward. Nothing is written: no validation, checkpoints
    or statistics files. Returns :func:`summarize`'s dict plus ``records`` (every micro-batch).
    """
    from rs3d.engine.builder import build_training
    from rs3d.engine.distributed import DistInfo
    from rs3d.engine.train import train_one_epoch

    cfg = cfg.clone()
    cfg.defrost()
    cfg.TRAIN.EVAL_PERIOD = 0  # the loop alone: no validation loader
    cfg.freeze()
    dev = torch.device(cfg.DEVICE or ("cuda" if torch.cuda.is_available() else "cpu"))
    parts = build_training(cfg, DistInfo(rank=0, world_size=1, local_rank=0, device=dev))
    loader = parts.train_loader = TimedLoader(parts.train_loader, dev, sync=sync)
    done, epoch = 0, 0
    t0 = time.perf_counter()
    while done < steps:
        n = min(parts.steps_per_epoch, steps - done)
        train_one_epoch(parts, epoch, until_step=n)
        done += n
        epoch += 1
    micro = loader.loader.batch_size
    out = summarize(loader.records, micro)
    out.update(
        optimizer_steps=done,
        micro_batch=micro,
        accum=parts.step.accum,
        epochs=epoch,
        wall_s=time.perf_counter() - t0,
        device=dev.type,
        records=loader.records,
    )
    return out
