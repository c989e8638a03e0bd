"""The training run's checkpoint writer: save ``TrainState`` where and when due, prune the old files.

The files themselves (names, atomic save, safe load) are :mod:`rs3d.checkpoint`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from rs3d.checkpoint import best_checkpoint_path, checkpoint_path, prune_checkpoints, save_checkpoint
from rs3d.engine import distributed as dist_utils
from rs3d.engine.logs import logger


@dataclass
class Checkpointer:
    """Writes a run's ``TrainState`` into ``output_dir/checkpoints`` and prunes the old files."""
    output_dir: str
    keep: int             # epoch-end checkpoints kept (TRAIN.CHECKPOINT_KEEP), besides the best
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
            save_checkpoint(ckpt, path)
            if is_best:
                save_checkpoint(ckpt, best_checkpoint_path(self.output_dir))
            prune_checkpoints(self.output_dir, self.keep)
            logger.info(f"saved {path}" + (" (best)" if is_best else ""))
            if self.on_saved is not None:
                self.on_saved()
        dist_utils.barrier()
        return path
