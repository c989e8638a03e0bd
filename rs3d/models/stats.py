"""How big and how costly a model is: parameters, FLOPs, and the time and memory of a training step.

The one implementation behind ``tools/model_stats.py`` (the zoo table), the benchmarks and the
scaling sweep, so every figure they print is counted the same way.

    count_parameters(model) -> int
        Number of parameters (every ``model.parameters()`` element, trainable or not).

    count_flops(model, frames, res, in_channels=3) -> float
        GFLOPs of one clip [1, in_channels, frames, res, res] at inference, as fvcore counts them:
        one fused multiply-add is one FLOP (the convention of PySlowFast's and PyTorchVideo's model
        zoos, so "41.9 GFLOPs" for slow_r50 at 8x224x224 compares directly). The model is run in
        eval mode and returned to the mode it was in.

    measure_train_step(model, batch, frames, res, steps, device, *, warmup=1, channels_last=False,
                       clock=time.perf_counter) -> (seconds_per_step, peak_memory_bytes)
        Median wall time of ``steps`` full training steps (forward, cross-entropy, backward,
        SGD-Nesterov update) on random clips [batch, 3, frames, res, res], after ``warmup``
        untimed steps (allocator, cuDNN algorithm choice, optimizer state). The model is moved to
        ``device``. Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` since just before
        the first step (so it includes parameters, gradients, optimizer state and activations);
        on a CPU, the growth of the process's peak resident memory above its level before the
        first step (activations, gradients, optimizer state; an approximation, and 0 when the
        platform cannot report it). ``clock`` is injectable so tests can check the arithmetic.
"""

from __future__ import annotations

import ctypes
import resource
import statistics
import sys
import time
from typing import Callable, Optional, Tuple, Union

import torch
from torch import nn

__all__ = ["count_parameters", "count_flops", "measure_train_step", "rss_peak_growth_bytes"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, frames: int, res: int, in_channels: int = 3) -> float:
    """fvcore GFLOPs (multiply-adds) of one ``frames x res x res`` clip at inference."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    param = next(model.parameters(), None)
    clip = torch.zeros(1, in_channels, frames, res, res, device=param.device if param is not None else "cpu")
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, clip)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return analysis.total() / 1e9
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------- CPU memory
def _status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Return freed heap to the OS and reset ``VmHWM`` to the current RSS (Linux >= 4.0)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_peak_growth_bytes(fn: Callable[[], None]) -> Optional[int]:
    """Bytes by which the process's peak resident memory rose above its level before ``fn()``.

    Exact on Linux (the high-water mark is reset first); elsewhere the lifetime peak
    ``ru_maxrss`` is used, which reads 0 when an earlier phase of the process peaked higher.
    None when neither is available.
    """
    if _reset_rss_peak():
        before = _status_kib("VmRSS")
        fn()
        peak = _status_kib("VmHWM")
        if before is not None and peak is not None:
            return max(peak - before, 0) * 1024
        return None
    try:
        before = _maxrss_bytes()
    except (OSError, ValueError):
        fn()
        return None
    fn()
    return max(_maxrss_bytes() - before, 0)


# ----------------------------------------------------------------------------- training step
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_train_step(
    model: nn.Module,
    batch: int,
    frames: int,
    res: int,
    steps: int,
    device: Union[str, torch.device],
    *,
    warmup: int = 1,
    channels_last: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> Tuple[float, int]:
    """(median seconds per training step, peak memory bytes); see the module docstring."""
    if steps < 1:
        raise ValueError(f"steps={steps!r} must be >= 1")
    dev = torch.device(device)
    model = model.to(dev).train()
    clip = torch.randn(batch, 3, frames, res, res, device=dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    labels = []  # drawn at the first step, from the classifier's actual width

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = model(clip)
        if not labels:
            labels.append(torch.randint(0, logits.shape[1], (batch,), device=dev))
        nn.functional.cross_entropy(logits, labels[0]).backward()
        opt.step()
        _sync(dev)

    times = []

    def run() -> None:
        for _ in range(warmup):
            step()
        for _ in range(steps):
            t = clock()
            step()
            times.append(clock() - t)

    if dev.type == "cuda":
        _sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        run()
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        peak = rss_peak_growth_bytes(run) or 0
    return statistics.median(times), int(peak)
