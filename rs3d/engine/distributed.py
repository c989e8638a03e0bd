"""Process-group set-up and the few collectives rs3d needs.

rs3d is launched by ``torchrun`` (env:// rendezvous) on one or many machines, by SLURM with one
task per GPU (``rs3d.cluster`` fills the same env:// variables from SLURM's), or as a plain
process (world size 1, no process group). Everything here works in all cases so callers never
branch on "am I distributed".
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn

from rs3d.device import default_device_name

from .logs import logger


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: Optional[str] = None, backend: Optional[str] = None, timeout_s: float = 600) -> DistInfo:
    """Join the torchrun process group if launched by torchrun; pick this rank's device.

    ``device``: None = cuda when available else cpu. ``backend``: None = nccl on cuda, gloo on cpu.
    ``timeout_s`` bounds every collective, so a rank that dies makes the others fail, not hang.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = default_device_name(device)
    if device.startswith("cuda"):
        # One GPU per local rank; a scheduler that binds each task to its GPU shows it one device.
        index = 0 if torch.cuda.device_count() == 1 else local_rank
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device(device)
    if world_size > 1 and not dist.is_initialized():
        if rank == 0:
            _warn_if_restarts_share_the_store()
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            world_size=world_size,
            rank=rank,
            timeout=datetime.timedelta(seconds=timeout_s),
            **kwargs,
        )
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def _warn_if_restarts_share_the_store() -> None:
    """torchrun (c10d rendezvous) lends its own store to the workers' process group by default; a
    worker group restarted by ``--max-restarts`` then finds the keys of the group it replaces and
    can connect to dead peers (pytorch/pytorch#135712; seen here with gloo). A store per round,
    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, avoids it."""
    if (
        os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) > 0
    ):
        logger.warning(
            "torchrun --max-restarts with a shared rendezvous store: a restarted worker group "
            "may fail to connect (pytorch/pytorch#135712); export "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 before torchrun"
        )


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def all_gather_object(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` when not distributed."""
    if not is_dist():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (no-op when not distributed); returns ``t``."""
    if is_dist():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    """In-place maximum over ranks (no-op when not distributed); returns ``t``."""
    if is_dist():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def _wrappers(model: nn.Module):
    """``model``, then each module it wraps: torch.compile's ``_orig_mod``, DDP's ``module``."""
    while True:
        yield model
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under any DDP / torch.compile wrappers (what is saved and averaged)."""
    *_, core = _wrappers(model)
    return core


def no_sync(model: nn.Module):
    """DDP's ``no_sync()`` (skip the gradient all-reduce of this backward) if ``model`` is or wraps
    a DDP module; a context that does nothing otherwise."""
    for m in _wrappers(model):
        if isinstance(m, nn.parallel.DistributedDataParallel):
            return m.no_sync()
    return contextlib.nullcontext()


def cleanup() -> None:
    if is_dist():
        dist.destroy_process_group()
