"""Checkpoint files: names, atomic writes, newest-good lookup, safe loading.

Layout: ``OUTPUT_DIR/checkpoints/checkpoint_epoch_{epoch:05d}.pyth`` (``epoch`` = epochs completed),
``checkpoint_epoch_{epoch:05d}_step_{step:06d}.pyth`` for a mid-epoch checkpoint (``epoch`` epochs plus
``step`` optimizer steps of the next one; ``TRAIN.CHECKPOINT_PERIOD_ITERS``) and
``checkpoint_best.pyth``. A checkpoint is a dict with at least ``model``, ``ema`` (or absent),
``epoch``, ``iteration`` and ``cfg`` (YAML); what training writes is
``rs3d.engine.state.TrainState.state_dict()``. Everything is stored as tensors and plain
containers so ``torch.load(weights_only=True)`` reads it.

Integrity: ``torch.save`` writes a zip archive with a CRC-32 per member, but ``torch.load`` does not
check them, so bytes overwritten inside a file would load as wrong weights or NaN optimizer state.
Every load checks them first (``rs3d.file_io.integrity``: about a third of the load's time), and a file
that fails is skipped by the newest-good lookup with a warning naming it and why.

Paths go through :mod:`rs3d.file_io`, so ``OUTPUT_DIR`` may be an object store (``s3://...``) and a
checkpoint to load an ``http(s)://`` URL; writes stay atomic where the backend allows
(``rs3d.file_io.atomic_write`` says where it does not). A downloaded copy that does not load is evicted
from the download cache, so a fixed server is asked again.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from typing import Optional

import torch

from .. import file_io
from ..errors import CheckpointError
from ..file_io.integrity import check_torch_file
from ..file_io.owner import temporary_writer, writer_alive

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"checkpoint_epoch_(\d+)(?:_step_(\d+))?\.pyth$")


def checkpoint_dir(output_dir: str) -> str:
    return file_io.join(output_dir, "checkpoints")


def checkpoint_path(output_dir: str, epoch: int, step: int = 0) -> str:
    """The file for ``epoch`` completed epochs plus ``step`` steps into the next (0 = epoch end)."""
    name = f"checkpoint_epoch_{epoch:05d}" + (f"_step_{step:06d}" if step else "")
    return file_io.join(checkpoint_dir(output_dir), name + ".pyth")


def checkpoint_position(path: str) -> Optional[tuple[int, int]]:
    """(epochs completed, steps into the next epoch) from a checkpoint's name; None if not one."""
    m = _NAME_RE.search(path)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def best_checkpoint_path(output_dir: str) -> str:
    return file_io.join(checkpoint_dir(output_dir), "checkpoint_best.pyth")


def list_checkpoints(output_dir: str) -> list[str]:
    """Epoch and mid-epoch checkpoints, oldest first (by the position in the name)."""
    d = checkpoint_dir(output_dir)
    paths = [file_io.join(d, name) for name in file_io.ls(d) if name.startswith("checkpoint_epoch_")]
    return sorted((p for p in paths if checkpoint_position(p)), key=checkpoint_position)


def save_checkpoint(state: dict, path: str) -> str:
    """Write ``state`` so that ``path`` is either the old file or the complete new one, never partial.

    Locally a temporary file in the same directory is written and fsynced, then renamed over
    ``path`` (``os.replace`` is atomic on POSIX); a SIGKILL at any moment leaves at worst a stray
    ``.tmp``. On an object store the file is one upload, published only when complete.
    """
    return file_io.atomic_write(path, lambda f: torch.save(state, f))


def remove_stale_temporaries(output_dir: str) -> list:
    """Delete the partial ``*.tmp`` files that saves cut short by a crash left behind (each can be
    as large as a checkpoint); returns their paths. Only a temporary whose writer is gone is
    removed: its name holds the writer's host and PID (``rs3d.file_io.atomic_write``), a live process's
    save and another host's (whose processes cannot be seen from here) are left alone."""
    if not file_io.is_local(output_dir):
        return []  # uploads leave no temporaries behind
    stale = []
    for p in glob.glob(os.path.join(checkpoint_dir(output_dir), "*.pyth.*.tmp")):
        writer = temporary_writer(p, ".pyth")
        if writer is None or writer_alive(*writer) is not False:
            continue
        try:
            os.remove(p)
        except FileNotFoundError:
            continue
        stale.append(p)
    return stale


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """``torch.load(weights_only=True)`` after the integrity check; any failure becomes one line
    naming the file.

    ``path`` may be a URL (downloaded once into the cache, see ``rs3d.file_io``; a copy that does not
    load is evicted and the message says so) or an object-store path.
    """
    try:
        if not file_io.is_url(path) and not file_io.isfile(path):  # a URL's download says why it fails
            raise CheckpointError(f"checkpoint not found: {path}")
        with file_io.open(path, "rb") as f:
            check_torch_file(f, path)
            ckpt = torch.load(f, map_location=map_location, weights_only=True)
    except CheckpointError as e:
        raise _evicted(path, e) from None
    except OSError as e:  # a download or an object store that failed
        msg = " ".join(str(e).split())
        raise CheckpointError(f"cannot load checkpoint: {msg if path in msg else f'{path}: {msg}'}"[:400]) from None
    except Exception as e:  # pickle with code in it, a damaged pickle ...
        reason = " ".join(str(e).split())
        if "weights_only" in reason or "Unsupported global" in reason:
            reason = "it holds Python objects other than tensors (refused: loading could run code)"
        raise _evicted(path, CheckpointError(f"cannot load checkpoint {path}: {reason[:300]}")) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"cannot load checkpoint {path}: expected a dict, got {type(ckpt).__name__}")
    return ckpt


def _evicted(path: str, e: CheckpointError) -> CheckpointError:
    """``e``, after evicting a URL's cached download (the bad copy would be read again forever)."""
    if not file_io.is_url(path):
        return e
    cached = file_io.evict_download(path)
    return CheckpointError(
        f"{e}; its downloaded copy {cached} was removed from the cache (the next run downloads it again)"
    )


def latest_good_checkpoint(output_dir: str) -> tuple[Optional[str], Optional[dict]]:
    """Newest checkpoint (epoch end or mid-epoch) that loads, with its contents. A newer one that
    does not (truncated, damaged, not a checkpoint) is skipped with a warning naming it and why."""
    for path in reversed(list_checkpoints(output_dir)):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            logger.warning(f"skipped a checkpoint that does not load: {e}")
            continue
        if "model" in ckpt and "epoch" in ckpt:
            return path, ckpt
        logger.warning(f"skipped {path}: not a training checkpoint (no 'model' and 'epoch')")
    return None, None


def find_latest_checkpoint(output_dir: str) -> Optional[str]:
    """Path of the newest checkpoint that loads, or None."""
    return latest_good_checkpoint(output_dir)[0]


def prune_checkpoints(output_dir: str, keep: int) -> None:
    """Keep the newest ``keep`` epoch-end checkpoints, and a mid-epoch one only while it is the
    newest checkpoint of all (a later one supersedes it). The best one is a separate file."""
    paths = list_checkpoints(output_dir)
    ends = [p for p in paths if checkpoint_position(p)[1] == 0]
    doomed = set(ends[: max(len(ends) - keep, 0)])
    doomed |= {p for p in paths[:-1] if checkpoint_position(p)[1] != 0}
    for p in doomed:
        file_io.rm(p)
