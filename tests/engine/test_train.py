"""The training loop end to end on the real synthetic videos: outputs, exact resume, torchrun, NaN stop.

Real-process tests (SIGKILL-and-resume, torchrun) are marked slow; they use a tiny model and data.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_run_opts

import rs3d

REPO = Path(__file__).resolve().parents[2]
TOOL = str(REPO / "tools" / "train_net.py")


def tiny_opts(data_dir, out_dir, **extra):
    """KEY VALUE overrides: 4 classes, 4x32x32 clips, 3 optimizer steps per epoch, 3 epochs."""
    return tiny_run_opts(data_dir, out_dir, **{"TENSORBOARD.ENABLE": True, **extra})


def _env():
    # One thread per process: the machine is small and results must not depend on thread count.
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def _final(out_dir, epoch=3):
    return torch.load(Path(out_dir) / "checkpoints" / f"checkpoint_epoch_{epoch:05d}.pyth", weights_only=True)


def test_training_outputs(synthetic_dataset, tmp_path):
    """One in-process run: checkpoints, config.yaml, json_stats.log, TensorBoard events, the PNG."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rs3d.checkpoint import find_latest_checkpoint, load_checkpoint
    from rs3d.config import load_config
    from rs3d.engine.train import train

    out = tmp_path / "run"
    torch.set_num_threads(1)
    cfg = load_config(None, tiny_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 2}))
    stats = train(cfg)
    assert stats["epoch"] == 2 and stats["iteration"] == 6
    latest = find_latest_checkpoint(str(out))
    assert latest.endswith("checkpoint_epoch_00002.pyth")
    ckpt = load_checkpoint(latest)
    for key in ("model", "ema", "optimizer", "scaler", "epoch", "iteration", "cfg", "rng"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 2 and ckpt["iteration"] == 6
    assert "MODEL" in ckpt["cfg"] and (out / "config.yaml").read_text() == ckpt["cfg"]
    assert (out / "checkpoints" / "checkpoint_best.pyth").is_file()

    records = [json.loads(line) for line in (out / "json_stats.log").read_text().splitlines()]
    kinds = [r["_type"] for r in records]
    assert kinds.count("train_iter") == 6 and kinds.count("train_epoch") == 2 and kinds.count("val_epoch") == 2
    val = [r for r in records if r["_type"] == "val_epoch"]
    assert val[-1]["num_clips"] == 8 and 0 <= val[-1]["top1"] <= 100  # 2 val videos x 4 classes
    it = [r for r in records if r["_type"] == "train_iter"]
    assert it[0]["lr"] == 0.0 and all(r["clips_per_s"] > 0 and "eta_s" in r for r in it)

    tb = EventAccumulator(str(out / "tensorboard"))
    tb.Reload()
    tags = tb.Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/top1"} <= set(tags)
    assert [e.step for e in tb.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert (out / "training_curves.png").stat().st_size > 1000


def test_batch_split_fills_the_global_batch_or_names_the_key():
    from rs3d.config import ConfigError
    from rs3d.engine.builder import batch_split

    assert batch_split(16, None, 2) == (8, 1)  # unset: the global batch divided among processes
    assert batch_split(16, 2, 2) == (2, 4)  # 2 processes x 2 clips x 4 accumulation steps
    with pytest.raises(ConfigError, match="TRAIN.MICRO_BATCH_SIZE"):
        batch_split(16, None, 3)
    with pytest.raises(ConfigError, match="TRAIN.MICRO_BATCH_SIZE"):
        batch_split(16, 3, 2)


def test_unwrap_model_sees_through_torch_compile():
    from torch import nn

    from rs3d.engine.distributed import no_sync, unwrap_model

    plain = nn.Linear(2, 2)
    compiled = torch.compile(plain)  # compiles on the first call only
    assert compiled is not plain and unwrap_model(compiled) is plain and unwrap_model(plain) is plain
    with no_sync(compiled):  # not DDP: nothing to skip
        pass


def test_builder_parts_run_the_loop_in_process(synthetic_dataset, tmp_path):
    """The builder's parts drive train_one_epoch without train(): what the e2e benchmark does.
    It stops where asked, writes nothing, and the state says where it stands."""
    from rs3d.config import load_config
    from rs3d.engine.builder import build_training
    from rs3d.engine.distributed import DistInfo
    from rs3d.engine.state import Progress
    from rs3d.engine.train import train_one_epoch

    torch.set_num_threads(1)
    out = tmp_path / "none"
    cfg = load_config(None, tiny_opts(synthetic_dataset, out, **{"TRAIN.EVAL_PERIOD": 0}))
    parts = build_training(cfg, DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))
    assert parts.val_loader is None and parts.steps_per_epoch == 3 and parts.step.accum == 1
    assert parts.schedule(0) == 0.0 and parts.schedule.total_iters == 9
    w0 = parts.state.model.fc.weight.detach().clone()
    stats = train_one_epoch(parts, 0, until_step=2)
    assert parts.state.progress == Progress(epoch=0, step_in_epoch=2, iteration=2)
    assert stats["iteration"] == 2 and not torch.equal(parts.state.model.fc.weight, w0)
    assert not out.exists()


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(synthetic_dataset, tmp_path):
    """A learning rate that blows up: the run stops with one clear line, exit 1, no newer checkpoint."""
    out = tmp_path / "nan"
    opts = tiny_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 1, "TRAIN.EVAL_PERIOD": 0})
    p = subprocess.run([sys.executable, TOOL, *opts], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr
    good = out / "checkpoints" / "checkpoint_epoch_00001.pyth"
    before = good.read_bytes()
    # Same run continued to 2 epochs with an absurd learning rate: epoch 2 diverges.
    opts = tiny_opts(
        synthetic_dataset,
        out,
        **{"SOLVER.MAX_EPOCH": 2, "TRAIN.EVAL_PERIOD": 0, "SOLVER.BASE_LR": 1e30, "MODEL.DROPOUT_RATE": 0.0},
    )
    p = subprocess.run([sys.executable, TOOL, *opts], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: non-finite loss"), p.stderr
    assert "Traceback" not in p.stderr
    assert good.read_bytes() == before
    assert not (out / "checkpoints" / "checkpoint_epoch_00002.pyth").exists()


def test_a_diverged_validation_stops_the_run_and_nothing_is_saved_or_best(synthetic_dataset, tmp_path):
    """SOLVER.BASE_LR 1e6: the training loss of epoch 1 is still finite, its validation loss is NaN
    (NaN scores tie, top-1 = the share of class 0). That epoch used to be saved as the best
    checkpoint; now the run stops after validation with one line, exit 1, and nothing is saved."""
    out = tmp_path / "diverged"
    opts = tiny_opts(
        synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 2, "SOLVER.BASE_LR": 1e6, "TENSORBOARD.ENABLE": False}
    )
    p = subprocess.run([sys.executable, TOOL, *opts], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: non-finite validation loss (nan) after epoch 1"), p.stderr
    assert "epoch 1 done" in p.stdout  # the training loss itself was finite
    assert err[0] in (out / "log.txt").read_text()
    assert not (out / "checkpoints").exists() or not os.listdir(out / "checkpoints")


def test_mid_epoch_checkpoint_of_another_world_size_is_refused(synthetic_dataset, tmp_path):
    """A mid-epoch checkpoint holds per-rank RNG states and a position in per-rank data shards, so
    it resumes only with the same number of processes: otherwise one line and exit 2, not a run
    that silently diverges."""
    out = tmp_path / "run"
    opts = tiny_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 1, "TRAIN.EVAL_PERIOD": 0})
    p = subprocess.run([sys.executable, TOOL, *opts], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr
    from rs3d.checkpoint import checkpoint_path, save_checkpoint

    state = _final(out, 1)
    state.update(
        epoch=1,
        step_in_epoch=1,
        world_size=2,
        rng=[state["rng"][0]] * 2,
        epoch_progress={"loss_sum": 1.0, "correct": 0.0, "seen": 4.0, "skipped": 0.0, "time_s": 1.0},
    )
    mid = save_checkpoint(state, checkpoint_path(str(out), 1, 1))
    opts = tiny_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 2, "TRAIN.EVAL_PERIOD": 0})
    p = subprocess.run([sys.executable, TOOL, *opts], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and mid in err[0] and "same number" in err[0], p.stderr
    assert "Traceback" not in p.stderr


def _newest_checkpoint(out: Path):
    """(epochs, steps) of the newest complete checkpoint file in ``out``, or None."""
    from rs3d.checkpoint import checkpoint_position, list_checkpoints

    paths = list_checkpoints(str(out))
    return checkpoint_position(paths[-1]) if paths else None


def _stopped(pid: int) -> bool:
    """Stopped by a signal, or no longer running (zombie or gone)."""
    fields = _proc_stat(pid)
    return fields is None or fields[0] in "tTZX"


def _wait_stopped(pid: int, timeout: float = 0.2) -> bool:
    t0 = time.time()
    while not _stopped(pid):
        if time.time() - t0 > timeout:
            return False
        time.sleep(0.001)
    return True


def _kill_when(proc, out: Path, marks: tuple, n: int, wanted, rng: random.Random, timeout=300) -> tuple:
    """SIGKILL ``proc`` once it has logged ``n`` lines containing one of ``marks``, at a moment
    when ``wanted(position of the newest checkpoint)`` holds; returns that position.

    The process group (trainer and loader workers) is frozen (SIGSTOP) every few ms and the log
    and checkpoint files are read while nothing can write, so what the test asserts about the kill
    is exact, not a race with the writer. The kill goes to the whole group, as a preempted job's
    does (a worker forked in the instant its parent dies would otherwise never notice).
    """
    log = out / "log.txt"
    start = log.stat().st_size if log.exists() else 0
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended before it could be killed after {n} x {marks}: {proc.stderr.read().decode()[-2000:]}"
            )
        os.killpg(proc.pid, signal.SIGSTOP)
        if not _wait_stopped(proc.pid):
            # Not stoppable just now, e.g. in vfork() waiting for a child that the group stop
            # froze before it could exec: let everything run on and try again.
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(rng.uniform(0.001, 0.01))
            continue
        text = log.read_bytes()[start:].decode(errors="replace") if log.exists() else ""
        seen = sum(any(m in line for m in marks) for line in text.splitlines())
        newest = _newest_checkpoint(out)
        if seen >= n and wanted(newest):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            return newest
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(rng.uniform(0.001, 0.01))
    raise TimeoutError(f"{n} x {marks}")


SIGKILL_EXTRA = {"DATA_LOADER.NUM_WORKERS": 1}  # a real worker process, persistent across epochs


@pytest.fixture(scope="module")
def uninterrupted_run(synthetic_dataset, tmp_path_factory):
    """The reference: the tiny 3-epoch run, never killed, epoch-end checkpoints only."""
    out = tmp_path_factory.mktemp("uninterrupted")
    ref = subprocess.run(
        [sys.executable, TOOL, *tiny_opts(synthetic_dataset, out, **SIGKILL_EXTRA)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert ref.returncode == 0, ref.stderr
    return _final(out)


def _kill_and_resume(cmd, out: Path, kills: list, rng: random.Random) -> tuple[list, str]:
    """Start ``cmd`` once per ``(marks, n, wanted)`` and kill it (``_kill_when``), then run it
    to the end. Returns the newest checkpoint at each kill and what the final run logged."""
    positions = []
    for marks, n, wanted in kills:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), start_new_session=True
        )  # its own process group, workers included
        try:
            positions.append(_kill_when(proc, out, marks, n, wanted, rng))
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    log = out / "log.txt"
    start = log.stat().st_size
    resumed = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    return positions, log.read_bytes()[start:].decode()


def _assert_tensorboard_has_each_step_once(out: Path) -> None:
    """After kills and resumes, TensorBoard shows every optimizer step once (the events an
    interrupted run wrote after its last checkpoint are purged), validation at each epoch's end."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(out / "tensorboard"))
    tb.Reload()
    assert [e.step for e in tb.Scalars("train/loss")] == list(range(1, 10))
    assert [e.step for e in tb.Scalars("val/top1")] == [3, 6, 9]


def _assert_same_final_state(a: dict, b: dict) -> None:
    assert a["iteration"] == b["iteration"] == 9
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after resume"
    for k in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][k]["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])


# Kill points count lines of what the killed process itself logged: progress lines, and the lines
# that end validation and a checkpoint write, so a kill lands in a training step, in validation or
# in a checkpoint write (a "saved" line is followed by the next step or save).
STEP = ("iter ",)
EVENTS = ("iter ", "val (", "saved ")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_sigkill_and_resume_is_bitwise_exact(synthetic_dataset, tmp_path, uninterrupted_run):
    """Kill -9 twice, restart the same command: final weights equal the uninterrupted run's, bit for bit.

    The first kill lands in the first 1-3 steps (usually before the first checkpoint, so the
    restart begins afresh), the second after 1-4 more events once a checkpoint exists and the run
    is not done, so the last restart resumes from an epoch checkpoint.
    """
    rng = random.Random()
    out = tmp_path / "killed"
    cmd = [sys.executable, TOOL, *tiny_opts(synthetic_dataset, out, **SIGKILL_EXTRA)]
    plan = [
        (STEP, rng.randint(1, 3), lambda pos: True),
        (EVENTS, rng.randint(1, 4), lambda pos: pos is not None and pos < (3, 0)),
    ]
    (first, second), final_log = _kill_and_resume(cmd, out, plan, rng)
    assert (1, 0) <= second < (3, 0), (plan, first, second)
    assert f"resumed from {out}/checkpoints/checkpoint_epoch_{second[0]:05d}.pyth" in final_log, final_log
    _assert_same_final_state(uninterrupted_run, _final(out))
    _assert_tensorboard_has_each_step_once(out)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_sigkill_mid_epoch_resumes_mid_epoch_and_is_bitwise_exact(synthetic_dataset, tmp_path, uninterrupted_run):
    """With a checkpoint every optimizer step, a kill while the newest checkpoint is a mid-epoch
    one (in epoch 2 or 3) resumes there: the loader skips the batches done, the RNG streams
    continue, and the run still ends with the bits of the uninterrupted run (which wrote no
    mid-epoch checkpoints)."""
    rng = random.Random()
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        TOOL,
        *tiny_opts(synthetic_dataset, out, **SIGKILL_EXTRA, **{"TRAIN.CHECKPOINT_PERIOD_ITERS": 1}),
    ]
    plan = [(STEP, rng.randint(4, 6), lambda pos: pos is not None and pos[1] > 0)]
    (pos,), final_log = _kill_and_resume(cmd, out, plan, rng)
    epochs, steps = pos
    assert epochs >= 1, (plan, pos)
    assert (
        f"resumed from {out}/checkpoints/checkpoint_epoch_{epochs:05d}_step_{steps:06d}.pyth "
        f"(epoch {epochs} + {steps} steps" in final_log
    ), final_log
    assert f"epoch {epochs + 1}/3 iter {steps}/3" not in final_log  # steps already done are not redone
    assert f"epoch {epochs + 1}/3 iter {steps + 1}/3" in final_log
    _assert_same_final_state(uninterrupted_run, _final(out))
    _assert_tensorboard_has_each_step_once(out)
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    # Mid-epoch files are superseded by the epoch ends; a save cut short left a .tmp, which the
    # next start removed.
    assert not any("_step_" in n or n.endswith(".tmp") for n in names), names


@pytest.mark.slow
def test_torchrun_two_processes_matches_single_process(synthetic_dataset, tmp_path):
    """2-process torchrun (gloo) vs 1 process, same global batch 4 and the same clips per step.

    Micro-batch 1 everywhere (1 process: accumulation 4; 2 processes: 2 each), so BatchNorm sees one
    clip per forward in both runs and the gradients are the same sums in another order: parameters
    agree to float tolerance. Dropout and stochastic depth are off (their random draws are per rank).
    BN running statistics are not compared: DDP keeps rank 0's (2 of the 4 clips per step).
    Clips are 8x64x64 so that BN in the last stage still normalises over 16 values of one clip; at
    4x32x32 it sees 2, its output is +-1 whatever the input, and float noise decides the gradients.
    """
    extra = {
        "TRAIN.MICRO_BATCH_SIZE": 1,
        "MODEL.DROPOUT_RATE": 0.0,
        "MODEL.DROP_PATH_RATE": 0.0,
        "SOLVER.MAX_EPOCH": 2,
        "TRAIN.EVAL_PERIOD": 0,
        "DATA.NUM_FRAMES": 8,
        "DATA.TRAIN_CROP_SIZE": 64,
    }
    one, two = tmp_path / "one", tmp_path / "two"
    p1 = subprocess.run(
        [sys.executable, TOOL, *tiny_opts(synthetic_dataset, one, **extra)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert p1.returncode == 0, p1.stderr
    p2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(29500 + random.randint(0, 400)),
            TOOL,
            *tiny_opts(synthetic_dataset, two, **extra),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert p2.returncode == 0, p2.stdout[-2000:] + p2.stderr[-3000:]
    assert "world 2 x micro-batch 1 x accumulation 2 = global batch 4" in (two / "log.txt").read_text()
    a, b = _final(one, 2), _final(two, 2)
    assert a["iteration"] == b["iteration"] == 6
    params = [
        n for n, _ in rs3d.create_model("resnet3d_rs26", num_classes=4, width_multiplier=0.125).named_parameters()
    ]
    for part in ("model", "ema"):
        for n in params:
            torch.testing.assert_close(b[part][n], a[part][n], rtol=1e-4, atol=1e-5, msg=f"{part}.{n}")
    # The comparison is not vacuous: epoch 2 moved the weights far more than the runs differ.
    prev = _final(one, 1)
    moved = sum((a["model"][n] - prev["model"][n]).abs().sum().item() for n in params)
    mismatch = sum((a["model"][n] - b["model"][n]).abs().sum().item() for n in params)
    assert mismatch * 1000 < moved, (mismatch, moved)


def _proc_stat(pid) -> list:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list:
    """PIDs whose parent is ``pid`` (read from /proc; Linux only)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)
            if fields is not None and int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _rank_of(pid: int) -> int:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return -1
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return -1


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_a_dead_rank_stops_the_others(synthetic_dataset, tmp_path):
    """SIGKILL one of two training ranks mid-run: the whole job ends with an error, nothing hangs."""
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + random.randint(401, 800)),
        TOOL,
        *tiny_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 200, "TRAIN.EVAL_PERIOD": 0, "DIST_TIMEOUT_S": 60}),
    ]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    try:
        deadline = time.time() + 300
        log = out / "log.txt"
        while time.time() < deadline and not (log.exists() and "iter 1/" in log.read_text()):
            assert job.poll() is None, job.stderr.read().decode()[-2000:]
            time.sleep(0.5)
        workers = {_rank_of(p): p for p in _children(job.pid)}
        assert set(workers) >= {0, 1}, workers
        os.kill(workers[1], signal.SIGKILL)
        _, err = job.communicate(timeout=180)  # bounded: a hang fails the test here
        assert job.returncode != 0
        assert (
            not Path(f"/proc/{workers[0]}").exists() or "Z" in Path(f"/proc/{workers[0]}/stat").read_text().split()[2]
        )
    finally:
        if job.poll() is None:
            job.kill()
