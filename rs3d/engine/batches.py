"""Feeding a model during training and validation: starting a loader's workers under the stop
flag, ending them, and turning a batch into the model's input on the device."""

from __future__ import annotations

from typing import Optional

import torch

from rs3d.data import to_model_input
from rs3d.engine.builder import StepConfig
from rs3d.engine.preemption import StopFlag


def model_input(batch: dict, sc: StepConfig) -> torch.Tensor:
    """The batch's uint8 clips on ``sc.device``, normalised (and channels-last if asked)."""
    x = to_model_input(batch["clip"].to(sc.device, non_blocking=True), sc.mean, sc.std)
    if sc.channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def start_batches(loader, stop: Optional[StopFlag]):
    """``iter(loader)``, its worker processes started with the stop signals blocked (they are
    the trainer's to handle; see ``rs3d.engine.preemption``)."""
    if stop is None:
        return iter(loader)
    with stop.blocked():
        it = iter(loader)
    stop.shielded.add(it)
    return it


def end_workers(stop: StopFlag, loaders) -> None:
    """End the loader worker processes this run started, through DataLoader's own shutdown (it asks
    them to quit). They were started with the stop signals blocked, so the SIGTERM with which
    multiprocessing ends leftover workers at interpreter exit would not reach them, and the exit
    would wait for them forever (an iterator outlives the run in a persistent loader, or in the
    traceback of an error).

    This is the one place that touches DataLoader internals (``_shutdown_workers``, ``_iterator``):
    PyTorch has no public call that ends a loader's workers now; dropping the references ends them
    only when the iterator is garbage-collected, which a traceback or a persistent loader defers.
    """
    for it in list(stop.shielded):
        end_iterator_workers(it)
    for loader in loaders:
        if getattr(loader, "_iterator", None) is not None:
            loader._iterator = None  # persistent workers: ended above


def end_iterator_workers(it, loader=None) -> None:
    """End the worker processes of the loader iterator ``it`` now (nothing for other iterables);
    ``loader``: forget ``it`` if it is the loader's persistent iterator, which cannot run again."""
    if hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()
    if loader is not None and getattr(loader, "_iterator", None) is it:
        loader._iterator = None
