"""``TrainJob``: what every task of a submitted training job runs, and how it is requeued.

submitit pickles the job, SLURM starts it on every task, and each task calls it: the env://
variables are filled from SLURM's (``rendezvous.export_torch_env``) and ``rs3d.engine.train.train``
runs in-process with the resolved config that was submitted (a later edit of the YAML does not
change a requeued job).

Preemption and time limit, with submitit's protocol:

    SLURM sends USR2 (submitit's ``--signal=USR2@<delay>``)  ->  every rank finishes its step, a
    mid-epoch checkpoint is written (rs3d.engine.preemption)  ->  train raises ``Preempted``  ->
    the task hands the signal to submitit's own handler, which calls :meth:`TrainJob.checkpoint`,
    counts timeouts and requeues the job (``scontrol requeue``; status 144 under LocalExecutor)
    ->  the requeued job calls the same ``TrainJob``, which resumes from that checkpoint.

submitit's handler is not left to run when the signal arrives, as it would by default: it
requeues at once, in the middle of a step. A signal that comes before training has started
(while the job imports or builds) does reach it: nothing has been trained yet, so requeuing then
loses nothing. SIGTERM and SIGUSR1 stop the same way but do not requeue (a preemption with
``PreemptMode=REQUEUE`` is requeued by SLURM itself; ``scancel`` should stay cancelled): the
tasks exit with status 75 after the checkpoint.
"""

from __future__ import annotations

import signal
import sys

from rs3d.engine import distributed
from rs3d.engine.preemption import PREEMPTED_EXIT_CODE, STOP_SIGNALS, Preempted, StopFlag
from rs3d.engine.train import train

from .rendezvous import export_torch_env


class TrainJob:
    """``TrainJob(cfg)()`` trains ``cfg`` (a validated, frozen config) on this task's rank."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __call__(self) -> dict:
        import submitit

        export_torch_env()
        requeue_signal = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)
        stop = StopFlag(signals=tuple(dict.fromkeys((*STOP_SIGNALS, requeue_signal.name))))
        try:
            return train(self.cfg, stop=stop)
        except Preempted as e:
            if e.signum == requeue_signal:
                handler = signal.getsignal(requeue_signal)  # submitit's, back in place after train
                if callable(handler):
                    handler(requeue_signal, None)  # rank 0: checkpoint() + requeue, then exits
            sys.exit(PREEMPTED_EXIT_CODE)
        finally:
            distributed.cleanup()

    def checkpoint(self, *args, **kwargs):
        """submitit's requeue hook: the same job again (training resumes from its own newest
        checkpoint, so there is nothing else to carry)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(TrainJob(self.cfg))

    def __repr__(self) -> str:
        return f"TrainJob(OUTPUT_DIR={self.cfg.OUTPUT_DIR})"
