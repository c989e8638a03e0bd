"""Timing and memory probes shared by the benchmarks.

Speed claims are ratios measured in the same run: contenders are timed in interleaved rounds
(A, B, A, B, ...) and each reports the median of its rounds, so a burst of load from another
process on a shared machine hits both sides instead of deciding the comparison.

Peak memory is defined the same way on every device, so CPU and GPU rows mean the same thing:
``static`` bytes (parameters, gradients, optimizer state, the input batch) plus the largest growth
above what was resident when the step started (activations, workspaces). The growth comes from
``torch.cuda.max_memory_allocated`` on a GPU and, on a CPU, from the process's resident-set
high-water mark (:func:`rs3d.models.stats.rss_peak_growth_bytes`: ``VmHWM`` reset through
``/proc/self/clear_refs`` after ``malloc_trim``, so that freed memory of an earlier contender is not
silently reused); the CPU figure is an approximation.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from rs3d.config import load_config
from rs3d.models.stats import rss_peak_growth_bytes


def rs3d_config(keys: Dict[str, object], opts: Sequence[str] = ()):
    """rs3d's config with ``keys`` (``{"DATA.NUM_FRAMES": 8, ...}``), then the ``KEY VALUE`` list
    ``opts``, set as command-line overrides are: through the config loader, every key and value
    validated, frozen."""
    return load_config(None, [str(x) for kv in keys.items() for x in kv] + list(opts))


# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets; MFU is measured against these.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_median(
    fns: Dict[str, Callable[[], None]],
    rounds: int,
    device: torch.device,
    calls_per_round: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> Dict[str, dict]:
    """Median seconds per call of each function, timed in interleaved rounds.

    Round r times ``calls_per_round`` calls of every function in turn (the order rotates each round
    so that none always runs right after another); returns ``{name: {"median_s", "times_s"}}``.
    ``clock`` is injectable for tests.
    """
    names = list(fns)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            sync(device)
            t = clock()
            for _ in range(calls_per_round):
                fns[name]()
            sync(device)
            times[name].append((clock() - t) / calls_per_round)
    return {n: {"median_s": statistics.median(ts), "times_s": ts} for n, ts in times.items()}


# ----------------------------------------------------------------------------- memory
def peak_growth_bytes(fn: Callable[[], None], device: torch.device) -> Optional[int]:
    """Bytes by which memory in use rose above its level before ``fn()``; None if not measurable."""
    if device.type == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    return rss_peak_growth_bytes(fn)


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def optimizer_state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(tensor_bytes(s.values()) for s in opt.state.values())


# ----------------------------------------------------------------------------- environment
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical cores, torch uses {torch.get_num_threads()} threads)"


def peak_tflops(device: torch.device, override: Optional[float] = None) -> Optional[float]:
    """The device's dense bf16 peak (TFLOP/s) from :data:`PEAK_BF16_TFLOPS`, or ``override``."""
    if override:
        return float(override)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def versions(extra: Sequence[str] = ()) -> Dict[str, str]:
    """Versions of torch and the packages a benchmark depends on ("missing" when not installed)."""
    import importlib

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", *extra):
        try:
            out[mod] = getattr(importlib.import_module(mod), "__version__", "?")
        except Exception:  # an import can fail with more than ImportError (missing shared libraries)
            out[mod] = "missing"
    return out


def environment(device: torch.device, extra: Sequence[str] = ()) -> dict:
    """What every JSON output starts with: date, device, versions, and whether the CPU was shared."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device_name(device),
        "device_type": device.type,
        "versions": versions(extra),
        "load_avg_1min": load,
        "cpu_count": os.cpu_count(),
    }
