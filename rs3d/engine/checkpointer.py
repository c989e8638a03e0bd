"""The training run's checkpoint writer: save ``TrainState`` where and when due, prune the old files.

The files themselves (names, atomic save, safe load) are :mod:`rs3d.checkpoint`'s. A save that
fails (disk full, read-only or forbidden folder) is one ``OutputWriteError`` naming the file and
the checkpoint that is kept; the atomic write leaves every earlier file whole.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Callable, Optional

from rs3d.checkpoint import best_checkpoint_path, checkpoint_path, list_checkpoints, prune_checkpoints, save_checkpoint
from rs3d.engine import distributed as dist_utils
from rs3d.engine.logs import logger
from rs3d.errors import OutputWriteError


def os_error_in(e: BaseException) -> Optional[OSError]:
    """The ``OSError`` behind ``e`` (itself, or its cause/context: ``torch.save`` reports a full disk
    as ``RuntimeError: ... unexpected pos`` raised while handling ``OSError: No space left``)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


# The errors of a file that cannot be written for lack of room or rights (not a bug of the run).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def is_write_failure(e: BaseException) -> bool:
    cause = os_error_in(e)
    return cause is not None and cause.errno in WRITE_ERRNOS


def kept_note(output_dir: str, failed: str = "") -> str:
    """What a failed write leaves: the newest checkpoint other than ``failed`` (complete: every
    checkpoint is written atomically)."""
    kept = [p for p in list_checkpoints(output_dir) if os.path.abspath(p) != os.path.abspath(failed or "/")]
    return f"kept: {kept[-1]}" if kept else "no checkpoint of this run was written yet"


def write_error(e: BaseException, path: str, output_dir: str) -> OutputWriteError:
    """One line for a failed write of ``path``: the OS's reason and what is kept."""
    cause = os_error_in(e)
    reason = cause.strerror if cause is not None and cause.strerror else " ".join(str(e).split())[:200]
    where = str(getattr(cause, "filename", None) or path)
    if where.startswith(path):  # the temporary the atomic write goes through: name the file itself
        where = path
    return OutputWriteError(f"cannot write {where}: {reason}; {kept_note(output_dir, path)}")


@dataclass
class Checkpointer:
    """Writes a run's ``TrainState`` into ``output_dir/checkpoints`` and prunes the old files."""

    output_dir: str
    keep: int  # epoch-end checkpoints kept (TRAIN.CHECKPOINT_KEEP), besides the best
    every_steps: int = 0  # also every this many optimizer steps inside an epoch; 0 = epoch ends only
    # Called on rank 0 after each save (a remote OUTPUT_DIR uploads its logs then).
    on_saved: Optional[Callable[[], object]] = None

    def mid_epoch_due(self, step_in_epoch: int) -> bool:
        return bool(self.every_steps) and step_in_epoch % self.every_steps == 0

    def save(self, state, is_best: bool = False) -> str:
        """Checkpoint ``state`` at ``state.progress``; returns the file's path. Collective (every
        rank's RNG state is gathered); rank 0 writes, then all ranks wait for it."""
        state.capture_rng()
        p = state.progress
        path = checkpoint_path(self.output_dir, p.epoch, p.step_in_epoch)
        if dist_utils.is_main_process():
            ckpt = state.state_dict()
            target = path
            try:
                save_checkpoint(ckpt, path)
                if is_best:
                    target = best_checkpoint_path(self.output_dir)
                    save_checkpoint(ckpt, target)
                prune_checkpoints(self.output_dir, self.keep)
            except (OSError, RuntimeError) as e:
                if not is_write_failure(e):
                    raise
                raise write_error(e, target, self.output_dir) from None
            logger.info(f"saved {path}" + (" (best)" if is_best else ""))
            if self.on_saved is not None:
                self.on_saved()
        dist_utils.barrier()
        return path
