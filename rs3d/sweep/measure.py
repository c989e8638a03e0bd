"""Params, GFLOPs, and the measured training-step latency and peak memory of one sweep point.

    python -m rs3d.cli.sweep_measure --cfg CFG --json OUT.json [--batch-cap 128] [--steps 3] [KEY VALUE ...]

The paper's point is that FLOPs and parameters do not predict speed or memory, so a sweep measures
a real training step (forward, backward, SGD update) of the point's model on the device it trains
on, in the precision it trains in. The protocol is appendix I's: start from the config's
per-device batch (at most ``batch_cap``, the paper's 128 on a V100), halve it while it does not
fit in accelerator memory, and normalise the latency to the config's batch (here also per clip).
Peak memory is reported at the batch that was measured. Run as its own process by the sweep, so an
out-of-memory kill or a crash costs one point's figures, not the sweep.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import torch

from ..engine.precision import AMP_DTYPES, autocast
from ..errors import ConfigError
from ..models import build_model
from ..models import stats as model_stats


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def device_of(cfg) -> torch.device:
    if cfg.DEVICE:
        return torch.device(cfg.DEVICE)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads)"


def _busy_cpu_s() -> Optional[float]:
    """CPU seconds every process on the machine has used since boot (Linux ``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


_own_cpu_s = time.process_time  # this process's CPU seconds
_wall_s = time.perf_counter


class OtherWork:
    """How many cores other processes kept busy while the block ran: the machine's CPU time less
    this process's, over the wall time (None where ``/proc/stat`` is missing). Unlike the load
    average it does not lag, so the sweep's own training, just ended, does not count."""

    def __enter__(self) -> "OtherWork":
        self.cores: Optional[float] = None
        self.wall_s = 0.0
        self._t0, self._busy0, self._own0 = _wall_s(), _busy_cpu_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc) -> None:
        own = _own_cpu_s() - self._own0
        busy = _busy_cpu_s()
        self.wall_s = _wall_s() - self._t0
        if busy is not None and self._busy0 is not None and self.wall_s > 0:
            self.cores = max(0.0, (busy - self._busy0 - own) / self.wall_s)


def measure_point(cfg, *, batch_cap: int = 128, steps: int = 3, warmup: int = 1, stats=None) -> dict:
    """The figures of ``cfg``'s model; ``stats`` is ``rs3d.models.stats`` (injectable for tests)."""
    stats = model_stats if stats is None else stats
    if batch_cap < 1:
        raise ConfigError(f"--batch-cap must be >= 1; got {batch_cap}")
    dev = device_of(cfg)
    frames, res = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    params = stats.count_parameters(model)
    gflops = stats.count_flops(model, frames, res)
    per_device = cfg.TRAIN.MICRO_BATCH_SIZE or cfg.TRAIN.BATCH_SIZE
    batch = min(per_device, batch_cap)
    amp = AMP_DTYPES[cfg.TRAIN.AMP_DTYPE]
    while True:
        try:
            with autocast(dev, amp), OtherWork() as other:
                step_s, peak = stats.measure_train_step(
                    model, batch, frames, res, steps, dev, warmup=warmup, channels_last=cfg.TRAIN.CHANNELS_LAST
                )
            break
        except RuntimeError as e:
            if not _is_oom(e) or batch == 1:
                raise
        # Out of the except block, so the failed attempt's tensors are no longer referenced.
        batch //= 2  # appendix I: halve the batch until it fits
        model = build_model(cfg)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "params": int(params),
        "params_m": params / 1e6,
        "gflops": float(gflops),
        "gflops_at": f"1x{frames}x{res}x{res}",
        "device": device_name(dev),
        "amp_dtype": cfg.TRAIN.AMP_DTYPE,
        "batch": int(cfg.TRAIN.BATCH_SIZE),
        "measure_batch": int(batch),
        "step_s": float(step_s),
        "latency_ms_per_clip": 1e3 * step_s / batch,
        "latency_s_per_batch": step_s * cfg.TRAIN.BATCH_SIZE / batch,
        "peak_mem_gib": peak / 2**30,
        "steps": int(steps),
        # Other work on the machine slows the step; this says whether the figure can be trusted.
        "other_cores_busy": None if other.cores is None else round(other.cores, 3),
    }
