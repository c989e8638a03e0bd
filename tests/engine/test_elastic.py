"""Elastic restarts: ``torchrun --max-restarts 1 --rdzv-backend c10d`` with 2 gloo ranks; one rank is
SIGKILLed mid-epoch, torchrun restarts the worker group, which resumes from the newest good
(mid-epoch) checkpoint and ends with the weights of a run that was never interrupted, bit for bit.

TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 gives each rendezvous round its own store: with torchrun's
default (its store shared with the workers), the restarted group read the dead group's gloo
addresses in about a third of the runs here and failed to connect (pytorch/pytorch#135712)."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TOOL = str(REPO / "tools" / "train_net.py")


def two_rank_opts(data_dir, out_dir):
    """3 epochs of 3 steps; global batch 4 = 2 ranks x 2 clips; a checkpoint after every step."""
    opts = {
        "DATA.PATH_TO_DATA_DIR": data_dir,
        "OUTPUT_DIR": out_dir,
        "DEVICE": "cpu",
        "MODEL.ARCH": "resnet3d_rs26",
        "MODEL.NUM_CLASSES": 4,
        "MODEL.WIDTH_MULTIPLIER": 0.125,
        "DATA.NUM_FRAMES": 4,
        "DATA.SAMPLING_RATE": 2,
        "DATA.TRAIN_CROP_SIZE": 32,
        "DATA.TEST_CROP_SIZE": 32,
        "DATA.DECODING_BACKEND": "pyav",
        "DATA_LOADER.NUM_WORKERS": 0,
        "TRAIN.BATCH_SIZE": 4,
        "TRAIN.AMP_DTYPE": "float32",
        "TRAIN.EVAL_PERIOD": 0,
        "TRAIN.EMA_DECAY": 0.9,
        "TRAIN.CHECKPOINT_PERIOD_ITERS": 1,
        "SOLVER.BASE_LR": 0.1,
        "SOLVER.REFERENCE_BATCH_SIZE": 4,
        "SOLVER.WARMUP_EPOCHS": 1.0,
        "SOLVER.MAX_EPOCH": 3,
        "LOG_PERIOD": 1,
        "TENSORBOARD.ENABLE": False,
        "DIST_TIMEOUT_S": 60,
    }
    return [str(x) for kv in opts.items() for x in kv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out, data):
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{_free_port()}",
        "--rdzv-id",
        f"rs3d-{random.getrandbits(32)}",
        TOOL,
        *two_rank_opts(str(data), str(out)),
    ]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")


def _workers(agent_pid: int) -> dict:
    """RANK -> pid of the agent's worker processes (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != agent_pid:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for item in env:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(entry.name)
    return found


def _final(out):
    return torch.load(Path(out) / "checkpoints" / "checkpoint_epoch_00003.pyth", weights_only=True)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_killed_rank_restarts_the_group_and_ends_bitwise_equal(synthetic_dataset, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    p = subprocess.run(_torchrun(ref, synthetic_dataset), capture_output=True, text=True, env=_env(), timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]

    agent = subprocess.Popen(
        _torchrun(out, synthetic_dataset),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
    )
    try:
        log, deadline = out / "log.txt", time.time() + 300
        mid = out / "checkpoints" / "checkpoint_epoch_00001_step_000001.pyth"
        while not (log.exists() and f"saved {mid}" in log.read_text()):
            assert agent.poll() is None and time.time() < deadline, agent.stderr.read().decode()[-3000:]
            time.sleep(0.01)
        workers = _workers(agent.pid)
        assert set(workers) == {0, 1}, workers
        os.kill(workers[1], signal.SIGKILL)  # a worker dies mid-epoch (a lost GPU, an OOM kill ...)
        _, err = agent.communicate(timeout=300)
        assert agent.returncode == 0, err.decode()[-6000:] + log.read_text()[-3000:]
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
    text = log.read_text()
    assert "torchrun restart 1: the worker group resumes from the newest good checkpoint" in text
    resumed = [line for line in text.splitlines() if "resumed from" in line]
    # The newest good checkpoint: the one written after step 1 of epoch 2, or a later step's.
    assert len(resumed) == 1 and "checkpoint_epoch_00001_step_00000" in resumed[0], resumed
    a, b = _final(ref), _final(out)
    assert a["iteration"] == b["iteration"] == 9 and b["world_size"] == 2
    for part in ("model", "ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k}"
    for k, s in a["optimizer"]["state"].items():
        assert torch.equal(s["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])
