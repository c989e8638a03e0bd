"""Stop training cleanly on the signal a scheduler sends before it takes the machines back.

SLURM signals a job ahead of its end when asked (``--signal=USR1@120``; submitit asks for USR2
90 s ahead) and sends SIGTERM, then SIGKILL after ``KillWait``, on preemption, ``scancel`` and at
the time limit; torchrun passes SIGTERM (and, with ``--signals-to-handle``, others) on to its
workers. On any of :data:`STOP_SIGNALS`:

    handler            sets a flag, nothing else (it runs between two bytecodes of the main
                       thread, possibly inside a collective)
    every step         the ranks add up their flags (one tiny all-reduce), so all of them stop
                       after the same optimizer step even if only one was signalled
    then               a mid-epoch checkpoint (atomic), and :class:`Preempted`: ``rs3d-train``
                       exits with status 75 (``EX_TEMPFAIL``: run the same command again to
                       continue); ``rs3d.cluster.TrainJob`` requeues the job through submitit.

Loader workers are started with these signals blocked (:meth:`StopFlag.blocked`): SLURM signals
every process of a job step, and a worker that died of SIGTERM would fail the trainer's next batch
before it could save. Forked workers (the Linux default) inherit the mask; they end when the run
does (it shuts them down) or when the trainer dies (PyTorch's workers watch their parent).

On a GPU the flags' sum is read one step late (the all-reduce of step k is read after step k+1 has
been queued), so the host never waits for the GPU to drain; the stop then comes one step later.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import weakref
from typing import Iterable, Optional

import torch

from ..errors import Rs3dError
from . import distributed as dist_utils

STOP_SIGNALS = ("SIGUSR1", "SIGUSR2", "SIGTERM")
PREEMPTED_EXIT_CODE = 75  # os.EX_TEMPFAIL: a temporary failure; the same command continues the run


class Preempted(Rs3dError):
    """Training stopped on a signal after writing a checkpoint it resumes from exactly."""

    exit_code = PREEMPTED_EXIT_CODE

    def __init__(self, signum: int, checkpoint: str, where: str):
        super().__init__(
            f"stopped by {signal_name(signum)} at {where}; saved {checkpoint}; run the same command to continue"
        )
        self.signum = signum
        self.checkpoint = checkpoint


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _as_signals(signals: Iterable) -> tuple:
    return tuple(getattr(signal, s) if isinstance(s, str) else signal.Signals(s) for s in signals)


class StopFlag:
    """The stop request of this process, and the agreement of all ranks on it.

    Use as a context manager around training: it installs the handlers on entry (main thread
    only; elsewhere nothing is installed and :meth:`request` is the only way to stop) and puts
    the previous ones back on exit, so a caller such as submitit finds its own handler again.
    """

    def __init__(self, signals: Iterable = STOP_SIGNALS, device: Optional[torch.device] = None):
        self.signals = _as_signals(signals)
        self.device = device or torch.device("cpu")
        self.received = 0  # the first stop signal this process got; 0 = none
        self._previous: dict = {}
        self._pending = None  # (pinned host tensor, CUDA event) of the all-reduce not read yet
        # What was started under ``blocked()`` (loader iterators): SIGTERM does not end those
        # processes, so their owner must (rs3d.engine.train ends them when the run ends).
        self.shielded = weakref.WeakSet()

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if not self.received:
            self.received = signum

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop as if ``signum`` had arrived (tests, callers with their own triggers)."""
        self._handle(signum, None)

    def agreed(self, now: bool = False) -> int:
        """The signal every rank stops for (0: go on). Collective: every rank calls it at the same
        points. ``now``: the current flags even on a GPU (epoch ends, where the host waits anyway)."""
        if not dist_utils.is_dist():
            return self.received
        if self.device.type != "cuda" or now:
            prev = self._drain()
            t = torch.tensor([float(self.received)], device=self.device)
            dist_utils.all_reduce_max(t)
            return max(int(t.item()), prev)
        buf = torch.tensor([float(self.received)], device=self.device)
        dist_utils.all_reduce_max(buf)  # queued behind this step on the stream; the host goes on
        host = torch.empty(1, pin_memory=True)
        host.copy_(buf, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        prev, self._pending = self._drain(), (host, event)
        return prev

    def _drain(self) -> int:
        if self._pending is None:
            return 0
        host, event = self._pending
        self._pending = None
        event.synchronize()
        return int(host.item())

    @contextlib.contextmanager
    def blocked(self):
        """Block the stop signals in this thread while starting processes (loader workers), which
        inherit the mask; a signal arriving meanwhile is delivered when the block ends."""
        if not hasattr(signal, "pthread_sigmask"):
            yield
            return
        old = signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
