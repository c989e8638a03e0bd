"""Real submitit jobs (LocalExecutor: submitit's controller, pickles, signal handler and requeue
on this machine) of a small demo-style config, through rs3d-submit --cluster local --wait:

- preempted: the preemption signal reaches the training task mid-epoch; it checkpoints, submitit
  requeues it (status 144 to the controller), the requeued task resumes and the final weights
  equal an uninterrupted run's, bit for bit.
- time limit: the controller itself sends the signal ``--signal-delay`` seconds before the limit,
  as SLURM does; the job is requeued (counted as a timeout) and ends with the same bits.

submitit 1.5.4's ``LocalJob._interrupt()`` sends the signal to the controller process, which has
no handler for it and dies (the task runs on unsignalled, nothing is requeued); so the preemption
test signals the training task directly, which is what SLURM does.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")
EPOCHS = 8


def demo_opts(data_dir, out_dir):
    """configs/demo.yaml made small: width 1/8, 4 frames, batch 4 -> 3 steps per epoch, 1 loader worker."""
    opts = {
        "DATA.PATH_TO_DATA_DIR": data_dir,
        "OUTPUT_DIR": out_dir,
        "MODEL.WIDTH_MULTIPLIER": 0.125,
        "MODEL.NUM_CLASSES": 4,
        "DATA.NUM_FRAMES": 4,
        "TRAIN.BATCH_SIZE": 4,
        "SOLVER.REFERENCE_BATCH_SIZE": 4,
        "SOLVER.WARMUP_EPOCHS": 1.0,
        "SOLVER.MAX_EPOCH": EPOCHS,
        "TRAIN.EVAL_PERIOD": 4,
        "LOG_PERIOD": 1,
        "DATA_LOADER.NUM_WORKERS": 1,
        "TENSORBOARD.ENABLE": False,
        "DATA.DECODING_BACKEND": "pyav",
    }
    return [str(x) for kv in opts.items() for x in kv]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def _final(out):
    return torch.load(Path(out) / "checkpoints" / f"checkpoint_epoch_{EPOCHS:05d}.pyth", weights_only=True)


def _assert_same(a, b):
    assert a["iteration"] == b["iteration"] == 3 * EPOCHS
    for part in ("model", "ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k}"
    for k, s in a["optimizer"]["state"].items():
        for name, t in s.items():
            if isinstance(t, torch.Tensor):
                assert torch.equal(t, b["optimizer"]["state"][k][name]), f"optimizer {k}.{name}"


@pytest.fixture(scope="module")
def reference(synthetic_dataset, tmp_path_factory):
    """The uninterrupted run (plain rs3d-train): its final checkpoint."""
    out = tmp_path_factory.mktemp("reference")
    p = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_net.py"), "--cfg", DEMO, *demo_opts(synthetic_dataset, out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return _final(out)


def _submit(data, out, folder, *resources):
    cmd = [
        sys.executable,
        "-m",
        "rs3d.cli.submit",
        "--cluster",
        "local",
        "--gpus-per-node",
        "0",
        "--folder",
        str(folder),
        "--wait",
        *resources,
        "--cfg",
        DEMO,
        *demo_opts(data, out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _training_task(folder: Path):
    """PID of the job's training process: the one running submitit's _submit on ``folder``
    whose parent is not (its loader workers run the same command line)."""

    def cmdline(pid):
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return ""

    def ppid(pid):
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return -1

    mine = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and "submitit.core._submit" in cmdline(p.name) and str(folder) in cmdline(p.name)
    ]
    tasks = [p for p in mine if ppid(p) not in mine]
    return tasks[0] if len(tasks) == 1 else None


def _submitit_logs(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*_log.*")))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the task through /proc")
def test_preempted_job_requeues_and_ends_bitwise_equal(synthetic_dataset, tmp_path, reference):
    """The task is frozen (SIGSTOP) the moment the log shows epoch 3 under way, signalled, then let
    go: the signal is handled at its next step, wherever the scheduler's delivery lands."""
    out, folder = tmp_path / "run", tmp_path / "submitit"
    job = _submit(synthetic_dataset, out, folder, "--time", "60")
    log = out / "log.txt"
    deadline = time.time() + 300
    task = None
    while not (log.exists() and "epoch 3/8 iter 1/3" in log.read_text()):
        assert job.poll() is None and time.time() < deadline, job.communicate()
        task = task or _training_task(folder)
        time.sleep(0.02)
    task = task or _training_task(folder)
    assert task is not None
    os.kill(task, signal.SIGSTOP)
    os.kill(task, signal.SIGUSR2)  # submitit's preemption signal, as SLURM sends it to each task
    os.kill(task, signal.SIGCONT)
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stdout + stderr
    text = log.read_text()
    stopped = re.search(r"stopped by SIGUSR2 at epoch (\d+)( \+ (\d+) steps)?; saved (\S+);", text)
    assert stopped, text[-3000:]
    assert int(stopped.group(1)) in (2, 3), stopped.group(0)  # during epoch 3 (0-based 2) or at its end
    assert f"resumed from {stopped.group(4)}" in text
    logs = _submitit_logs(folder)
    assert "this job is preempted" in logs and "Requeued job" in logs and "(10 remaining timeouts)" in logs
    _assert_same(reference, _final(out))


def _pending(pid: int) -> int:
    """The signals pending for ``pid`` (a bit mask, bit n-1 = signal n), from /proc."""
    mask = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            mask |= int(line.split()[1], 16)
    return mask


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the task's signals from /proc")
def test_job_at_its_time_limit_requeues_and_ends_bitwise_equal(synthetic_dataset, tmp_path, reference):
    """The controller sends USR2 20 s before a 50 s limit. So that it lands mid-training however
    fast this machine is, the task is frozen (SIGSTOP, as a slow step would be) once training is
    under way, until the controller's signal is pending, then let go."""
    out, folder = tmp_path / "run", tmp_path / "submitit"
    job = _submit(synthetic_dataset, out, folder, "--time", "0:50", "--signal-delay", "20", "--max-requeues", "5")
    log = out / "log.txt"
    deadline = time.time() + 300
    while not (log.exists() and "epoch 2/8 iter 1/3" in log.read_text()):
        assert job.poll() is None and time.time() < deadline, job.communicate()
        time.sleep(0.02)
    task = _training_task(folder)
    os.kill(task, signal.SIGSTOP)
    try:
        while not _pending(task) & (1 << (signal.SIGUSR2 - 1)):
            assert time.time() < deadline and job.poll() is None
            time.sleep(0.1)
    finally:
        os.kill(task, signal.SIGCONT)
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stdout + stderr
    logs = _submitit_logs(folder)
    assert "this job is timed-out" in logs and "Requeued job" in logs, logs[-3000:]
    assert "(4 remaining timeouts)" in logs  # a time limit counts against --max-requeues
    text = log.read_text()
    assert "stopped by SIGUSR2 at epoch 1 + " in text, text[-2000:]
    assert "resumed from" in text
    _assert_same(reference, _final(out))
