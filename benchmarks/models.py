"""Training-step and inference throughput, peak memory and achieved FLOP/s of models side by side.

A grid point is (frames, resolution, batch); at each one every contender, a (model, variant) pair
(rs3d registry models, and PyTorchVideo's ``slow_r50`` as the peer of rs3d's ``slow_r50``), is
built fresh and all are timed in interleaved rounds (:func:`benchmarks.measure.interleaved_median`).
A ratio is the median over rounds of the per-round ratio, so both sides of each ratio ran
back to back.

A variant is a ``+``-joined set of optimisations, ``base`` for none:

* ``cl``      model and input in ``torch.channels_last_3d``;
* ``bf16``    forward under ``torch.autocast(dtype=torch.bfloat16)``;
* ``compile`` ``torch.compile(model)`` (the first steps compile and are not timed).

FLOP convention: :func:`rs3d.models.stats.count_flops`, fvcore's count, one fused multiply-add as one
FLOP (the "GFLOPs" of the model zoos), the same figure as ``tools/model_stats.py``.
Achieved TFLOP/s = fvcore GFLOPs per clip x 2 (multiply and add) x 3 (forward + backward, the usual
estimate of backward = 2 x forward) x clips per second; MFU = that / the device's dense bf16 peak.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from rs3d.engine.optim import param_groups
from rs3d.models import create_model
from rs3d.models.stats import count_flops, count_parameters

from .measure import interleaved_median, optimizer_state_bytes, peak_growth_bytes, tensor_bytes

VARIANT_FLAGS = ("cl", "bf16", "compile")
PTV_PREFIX = "ptv:"


def parse_variant(variant: str) -> frozenset:
    """``"cl+bf16"`` -> {"cl", "bf16"}; ``"base"`` -> {}; ValueError names an unknown flag."""
    flags = frozenset() if variant == "base" else frozenset(variant.split("+"))
    unknown = sorted(flags - set(VARIANT_FLAGS))
    if unknown:
        raise ValueError(
            f"unknown variant flag(s) {unknown} in {variant!r}; use 'base' or a '+'-joined "
            f"subset of {list(VARIANT_FLAGS)}"
        )
    return flags


def build_contender_model(name: str, frames: int, res: int, num_classes: int, overrides: dict) -> nn.Module:
    """An rs3d registry model, or ``ptv:slow_r50`` (PyTorchVideo, random init).

    PyTorchVideo's head pools with a fixed (8, 7, 7) kernel sized for 8x224x224 input; for other
    sizes that pool is replaced by one over the whole final feature map (frames, res/32, res/32),
    the same arithmetic as rs3d's global average pool.
    """
    if name.startswith(PTV_PREFIX):
        ptv_name = name[len(PTV_PREFIX) :]
        if ptv_name != "slow_r50":
            raise ValueError(f"only ptv:slow_r50 is supported as a PyTorchVideo peer, got {name!r}")
        from pytorchvideo.models.hub import slow_r50

        model = slow_r50(pretrained=False, model_num_class=num_classes)
        kernel = (frames, -(-res // 32), -(-res // 32))
        if kernel != (8, 7, 7):
            model.blocks[-1].pool = nn.AvgPool3d(kernel, stride=1)
        return model
    return create_model(name, num_classes=num_classes, **overrides)


@dataclass
class Contender:
    """One model at one grid point, ready to run a training step or an inference forward."""

    name: str
    model: nn.Module
    run_model: nn.Module  # maybe compiled
    opt: torch.optim.Optimizer
    clip: torch.Tensor
    label: torch.Tensor
    autocast: Callable[[], contextlib.AbstractContextManager]
    params_m: float
    gflops: float
    error: Optional[str] = None
    extra: dict = field(default_factory=dict)

    def train_step(self) -> None:
        self.run_model.train()
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.run_model(self.clip)
        nn.functional.cross_entropy(logits.float(), self.label).backward()
        self.opt.step()

    @torch.no_grad()
    def infer_step(self) -> None:
        self.run_model.eval()
        with self.autocast():
            self.run_model(self.clip)

    def static_bytes(self) -> int:
        """Parameters, buffers, gradients, optimizer state and the input batch."""
        m = self.model
        return (
            tensor_bytes(m.parameters()) * 2
            + tensor_bytes(m.buffers())
            + optimizer_state_bytes(self.opt)
            + tensor_bytes([self.clip])
        )


def make_contender(
    name: str,
    frames: int,
    res: int,
    batch: int,
    variant: str,
    device: torch.device,
    num_classes: int = 400,
    overrides: Optional[dict] = None,
    gflops_cache: Optional[dict] = None,
    foreach: Optional[bool] = None,
) -> Contender:
    flags = parse_variant(variant)
    overrides = dict(overrides or {}) if not name.startswith(PTV_PREFIX) else {}
    torch.manual_seed(0)
    model = build_contender_model(name, frames, res, num_classes, overrides)
    key = (name, frames, res, tuple(sorted(overrides.items())))
    if gflops_cache is not None and key in gflops_cache:
        gflops = gflops_cache[key]
    else:
        gflops = count_flops(model, frames, res)
        if gflops_cache is not None:
            gflops_cache[key] = gflops
    params_m = count_parameters(model) / 1e6
    model = model.to(device)
    clip = torch.randn(batch, 3, frames, res, res, device=device)
    if "cl" in flags:
        model = model.to(memory_format=torch.channels_last_3d)
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    label = torch.randint(0, num_classes, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, foreach=foreach)
    run_model = torch.compile(model) if "compile" in flags else model
    use_bf16 = "bf16" in flags

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    return Contender(name, model, run_model, opt, clip, label, autocast, params_m, gflops)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160] if text else ''}"


def _safe(fn: Callable[[], None], c: Contender) -> Callable[[], None]:
    """Run ``fn``; after the first failure the contender is marked and skipped (no exception)."""

    def wrapped() -> None:
        if c.error is None:
            try:
                fn()
            except Exception as e:  # OOM, an unsupported op under a variant: reported in the row
                c.error = _first_line(e)

    return wrapped


def bench_point(
    names: Sequence[str],
    variants: Sequence[str],
    frames: int,
    res: int,
    batch: int,
    device: torch.device,
    rounds: int,
    warmup: int,
    overrides: Optional[dict] = None,
    peak: Optional[float] = None,
    inference: bool = True,
    gflops_cache: Optional[dict] = None,
) -> List[dict]:
    """Rows for every (model, variant) at one (frames, res, batch), all timed interleaved.

    Interleaving variants too makes "variant / base" ratios as robust to machine noise as
    "rs3d / PyTorchVideo" ones. ``warmup`` untimed steps first (one more for compiled models).
    """
    keys = [(n, v) for v in variants for n in names]
    contenders: Dict[tuple, Contender] = {}
    errors: Dict[tuple, str] = {}
    for key in keys:
        try:
            contenders[key] = make_contender(
                key[0], frames, res, batch, key[1], device, overrides=overrides, gflops_cache=gflops_cache
            )
        except Exception as e:
            errors[key] = _first_line(e)
    mems = {}
    for key, c in contenders.items():
        n_warm = warmup + (1 if "compile" in parse_variant(key[1]) else 0)
        t_warm = time.perf_counter()
        for _ in range(n_warm):  # allocator, cuDNN algorithm choice, optimizer state, compilation
            _safe(c.train_step, c)()
        if inference:
            for _ in range(n_warm):
                _safe(c.infer_step, c)()
        warm_s = time.perf_counter() - t_warm  # includes compilation
        mem = peak_growth_bytes(_safe(c.train_step, c), device) if c.error is None else None
        imem = peak_growth_bytes(_safe(c.infer_step, c), device) if inference and c.error is None else None
        infer_static = tensor_bytes(c.model.parameters()) + tensor_bytes(c.model.buffers()) + tensor_bytes([c.clip])
        mems[key] = {
            "train_peak_mem_gib": None if mem is None else (c.static_bytes() + mem) / 2**30,
            "infer_peak_mem_gib": None if imem is None else (infer_static + imem) / 2**30,
            "warmup_s": warm_s,
        }
    live = {k: c for k, c in contenders.items() if c.error is None}
    train_t = interleaved_median({k: _safe(c.train_step, c) for k, c in live.items()}, rounds, device)
    infer_t = (
        interleaved_median({k: _safe(c.infer_step, c) for k, c in live.items()}, rounds, device) if inference else {}
    )
    out = []
    for key in keys:
        name, variant = key
        row = {
            "model": name,
            "source": "pytorchvideo" if name.startswith(PTV_PREFIX) else "rs3d",
            "frames": frames,
            "res": res,
            "batch": batch,
            "variant": variant,
            "device": device.type,
        }
        if key in errors:
            row["error"] = errors[key]
            out.append(row)
            continue
        c = contenders[key]
        row.update(params_m=c.params_m, gflops=c.gflops, **mems[key])
        if c.error is not None or key not in train_t:
            row["error"] = c.error
        else:
            ts = train_t[key]["median_s"]
            row.update(
                train_step_s=ts,
                train_clips_s=batch / ts,
                train_times_s=train_t[key]["times_s"],
                train_tflops=c.gflops * 2 * 3 * batch / ts / 1e3,
            )
            if peak:
                row["mfu"] = row["train_tflops"] / peak
            if inference:
                ti = infer_t[key]["median_s"]
                row.update(infer_step_s=ti, infer_clips_s=batch / ti, infer_times_s=infer_t[key]["times_s"])
            if row.get("train_peak_mem_gib") is not None:
                row["train_mem_per_clip_gib"] = row["train_peak_mem_gib"] / batch
        out.append(row)
    del contenders, live
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def ratios(rows: List[dict]) -> List[dict]:
    """rs3d / PyTorchVideo ratios for ``slow_r50`` at matching points, and variant / base per model.

    A ratio < 1 in time or memory means the first is faster or lighter.
    """
    key = lambda r: (r["frames"], r["res"], r["batch"], r["variant"])  # noqa: E731
    ok = [r for r in rows if "train_step_s" in r]
    out = []
    ptv = {key(r): r for r in ok if r["model"] == PTV_PREFIX + "slow_r50"}
    for r in ok:
        p = ptv.get(key(r))
        if r["model"] == "slow_r50" and p is not None:
            out.append(_ratio_row(f"rs3d slow_r50 / PTV slow_r50 ({r['variant']})", r, p))
    base = {(r["model"], r["frames"], r["res"], r["batch"]): r for r in ok if r["variant"] == "base"}
    for r in ok:
        b = base.get((r["model"], r["frames"], r["res"], r["batch"]))
        if r["variant"] != "base" and b is not None:
            out.append(_ratio_row(f"{r['model']} {r['variant']} / base", r, b))
    return out


def _ratio_row(what: str, a: dict, b: dict) -> dict:
    def per_round(k):
        if not k.endswith("_step_s"):
            return None
        ta, tb = a.get(k.replace("_step_s", "_times_s")), b.get(k.replace("_step_s", "_times_s"))
        if ta and tb and len(ta) == len(tb):  # paired: both ran in the same round
            return [x / y for x, y in zip(ta, tb)]
        return None

    def div(k):
        if a.get(k) is None or b.get(k) is None or not b[k]:
            return None
        rounds = per_round(k)
        return statistics.median(rounds) if rounds else a[k] / b[k]

    return {
        "what": what,
        "frames": a["frames"],
        "res": a["res"],
        "batch": a["batch"],
        "variant": a["variant"],
        "train_step_ratio": div("train_step_s"),
        "train_step_ratio_rounds": per_round("train_step_s"),
        "infer_step_ratio": div("infer_step_s"),
        "train_mem_ratio": div("train_peak_mem_gib"),
    }


def sgd_step_times(
    model_name: str, device: torch.device, rounds: int, modes: Sequence[str] = ("for-loop", "foreach", "fused")
) -> dict:
    """Median time of one SGD (Nesterov, weight decay) update over a model's parameters, by mode.

    Gradients are filled with random values once; only ``optimizer.step()`` is timed, interleaved.
    """
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=400).to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opts, errors = {}, {}
    for mode in modes:
        kw = {"for-loop": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}[mode]
        try:
            opt = torch.optim.SGD(param_groups(model, 4e-5), lr=1e-3, momentum=0.9, nesterov=True, **kw)
            opt.step()  # momentum buffers
            opts[mode] = opt
        except Exception as e:  # fused SGD is not implemented on every device
            errors[mode] = _first_line(e)
    times = interleaved_median({m: o.step for m, o in opts.items()}, rounds, device, calls_per_round=3)
    n_params = count_parameters(model)
    rows = []
    for mode in modes:
        row = {
            "mode": mode,
            "model": model_name,
            "params_m": n_params / 1e6,
            "num_tensors": len(list(model.parameters())),
        }
        if mode in errors:
            row["error"] = errors[mode]
        else:
            row["step_s"] = times[mode]["median_s"]
            row["times_s"] = times[mode]["times_s"]
        rows.append(row)
    base = next((r for r in rows if r["mode"] == "for-loop" and "step_s" in r), None)
    for r in rows:
        if base is not None and "step_s" in r:  # paired per round, as the model ratios
            r["ratio_vs_for_loop"] = statistics.median(a / b for a, b in zip(r["times_s"], base["times_s"]))
    return {"rows": rows}
