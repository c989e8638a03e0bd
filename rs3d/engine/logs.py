"""Where training numbers go: the console/log.txt, ``json_stats.log``, TensorBoard, a PNG at the end.

Only rank 0 writes files. ``json_stats.log`` holds one JSON object per line (``_type`` says which
kind) and is appended to across resumes; readers keep the last record per (type, epoch, iter),
so an epoch redone after a crash replaces its earlier, partial records.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
from typing import Optional

import torch

logger = logging.getLogger("rs3d")


def setup_logging(output_dir: str = "", rank: Optional[int] = None, stream=None) -> logging.Logger:
    """The one logging set-up of every run and command: the ``rs3d`` logger (every module's logger
    is below it). Rank 0: INFO to ``stream`` (default stdout) and, given ``output_dir``, to its
    ``log.txt``; other ranks: warnings only, to stderr. ``rank`` None: torchrun's ``RANK`` (0 alone)."""
    rank = int(os.environ.get("RANK", "0") or 0) if rank is None else rank
    logger.handlers.clear()
    # A run with its own log.txt keeps its records to itself (no second copy through handlers an
    # embedding application put on the root logger); a command without one lets them propagate,
    # so an application (or pytest's caplog) still sees them.
    logger.propagate = not output_dir
    fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    if rank == 0:
        logger.setLevel(logging.INFO)
        h = logging.StreamHandler(sys.stdout if stream is None else stream)
        h.setFormatter(fmt)
        logger.addHandler(h)
        if output_dir:
            os.makedirs(output_dir, exist_ok=True)
            fh = _LogFile(os.path.join(output_dir, "log.txt"))
            fh.setFormatter(fmt)
            logger.addHandler(fh)
    else:
        logger.setLevel(logging.WARNING)
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(f"[rank {rank}] %(message)s"))
        logger.addHandler(h)
    return logger


class _LogFile(logging.FileHandler):
    """``log.txt``. A write that fails (disk full) is said once on stderr, not as logging's
    traceback per record; the run's own error then names the file it could not write."""

    _failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self._failed:
            self._failed = True
            err = sys.exc_info()[1]
            print(
                f"warning: cannot write {self.baseFilename}: {getattr(err, 'strerror', None) or err}", file=sys.stderr
            )


def log_to_file(message: str) -> None:
    """Write ``message`` as an ERROR record to the run's ``log.txt`` only (the console already
    gets it as the command's ``error:`` line); nothing when there is no log file or it fails."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler):
            try:
                h.handle(record)
            except Exception:  # noqa: BLE001  (a log line must not hide the error it reports)
                pass


def memory_mb(device: torch.device) -> float:
    """Peak accelerator memory on CUDA; peak resident set size of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return (f"{d}d " if d else "") + f"{h:d}:{m:02d}:{s:02d}"


class StatsWriter:
    """json_stats.log + TensorBoard scalars (rank 0); a no-op object on other ranks."""

    def __init__(self, output_dir: str, enabled: bool, tensorboard: bool, purge_step: Optional[int] = None):
        """``purge_step``: the first step still to come (1 on a fresh start); TensorBoard hides
        the events at and after it that an interrupted run wrote, so no curve has a step twice.
        Every scalar is logged against the optimizer step (validation too), which makes that work."""
        self.enabled = enabled
        self.path = os.path.join(output_dir, "json_stats.log")
        self.tb = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(output_dir, "tensorboard"), purge_step=purge_step)

    def write(self, record: dict, tb_prefix: Optional[str] = None, step: Optional[int] = None) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.tb is not None and tb_prefix:
            for k, v in record.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("_"):
                    self.tb.add_scalar(f"{tb_prefix}/{k}", v, step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_json_stats(path: str) -> list[dict]:
    """Records of ``json_stats.log``, the last one kept per (type, epoch, iter)."""
    recs: dict = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            recs[(r.get("_type"), r.get("epoch"), r.get("iter"))] = r
    return list(recs.values())


def plot_training_curves(json_stats_path: str, png_path: str) -> str:
    """Loss, learning rate and accuracy against the optimizer step, one PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_json_stats(json_stats_path)
    it = sorted((r for r in recs if r.get("_type") == "train_iter"), key=lambda r: r["iteration"])
    ep = sorted((r for r in recs if r.get("_type") == "train_epoch"), key=lambda r: r["epoch"])
    va = sorted((r for r in recs if r.get("_type") == "val_epoch"), key=lambda r: r["epoch"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot([r["iteration"] for r in it], [r["loss"] for r in it], lw=0.8, label="train (per log period)")
    axes[0].set(title="loss", xlabel="optimizer step")
    if va:
        axes[0].plot([r["iteration"] for r in va], [r["loss"] for r in va], "o-", label="val (EMA)")
    axes[0].legend()
    axes[1].plot([r["iteration"] for r in it], [r["lr"] for r in it])
    axes[1].set(title="learning rate", xlabel="optimizer step")
    axes[2].plot([r["iteration"] for r in ep], [r["top1"] for r in ep], "o-", label="train top-1")
    if va:
        axes[2].plot([r["iteration"] for r in va], [r["top1"] for r in va], "s-", label="val top-1 (EMA)")
        axes[2].plot([r["iteration"] for r in va], [r["top5"] for r in va], "^-", label="val top-5 (EMA)")
    axes[2].set(title="accuracy (%)", xlabel="optimizer step")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
