"""Stopping on a scheduler's signal: every rank agrees, a checkpoint is written, the run resumes
exactly. In-process runs stop at scripted points (the last step of an epoch, after validation,
mid-epoch); real processes get SIGTERM (to the whole process group, loader worker included, as
SLURM sends it) and SIGUSR1; remote OUTPUT_DIR (an fsspec store) holds checkpoints and logs."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import torch
from helpers import tiny_run_opts

from rs3d import file_io
from rs3d.engine.preemption import PREEMPTED_EXIT_CODE, Preempted, StopFlag

REPO = Path(__file__).resolve().parents[2]
TOOL = str(REPO / "tools" / "train_net.py")


def small_opts(data_dir, out_dir, **extra):
    """A 3-epoch run of 3 optimizer steps per epoch on 4-frame 32x32 clips, width 1/8."""
    return tiny_run_opts(data_dir, out_dir, **extra)


class ScriptedStop(StopFlag):
    """Agrees to stop at the ``at``-th agreement (one per optimizer step, one per epoch end but
    the last), as if SIGUSR1 had reached one of the ranks; installs no handler."""

    def __init__(self, at):
        super().__init__(signals=())
        self.at, self.calls = at, 0

    def agreed(self, now=False):
        self.calls += 1
        return signal.SIGUSR1 if self.calls == self.at else 0


def _load(path):
    with file_io.open(str(path), "rb") as f:
        return torch.load(f, weights_only=True)


def _assert_same_weights(a, b):
    assert a["iteration"] == b["iteration"]
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k}"
    for k, s in a["optimizer"]["state"].items():
        for name, t in s.items():
            if isinstance(t, torch.Tensor):
                assert torch.equal(t, b["optimizer"]["state"][k][name]), f"optimizer {k}.{name}"


def _epoch_records(json_stats_text):
    recs = {}
    for line in json_stats_text.splitlines():
        r = json.loads(line)
        if r["_type"] in ("train_epoch", "val_epoch"):
            recs[(r["_type"], r["epoch"])] = {k: r[k] for k in ("iteration", "loss", "top1", "top5", "lr") if k in r}
    return recs


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def _blocked_in_child(ctx) -> set:
    """The signals a child process started now has blocked."""
    q = ctx.SimpleQueue()
    p = ctx.Process(target=_report_mask, args=(q,))
    p.start()
    mask = q.get()
    p.join()
    return mask


def _report_mask(q):
    q.put({int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])})


def test_stop_flag_takes_signals_restores_handlers_and_blocks_them_in_children():
    import multiprocessing

    before = signal.getsignal(signal.SIGUSR1)
    flag = StopFlag(signals=("SIGUSR1", "SIGTERM"))
    with flag:
        assert signal.getsignal(signal.SIGUSR1) == flag._handle and flag.agreed() == 0
        with flag.blocked():  # loader workers (forked: Linux's default) start here: they inherit the mask
            mask = _blocked_in_child(multiprocessing.get_context("fork"))
            assert {signal.SIGUSR1, signal.SIGTERM} <= mask, mask
        assert signal.SIGUSR1 not in _blocked_in_child(multiprocessing.get_context("fork"))
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            if flag.received:
                break
            time.sleep(0.01)
        assert flag.received == signal.SIGUSR1 and flag.agreed(now=True) == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is before
    e = Preempted(signal.SIGTERM, "/out/checkpoints/checkpoint_epoch_00001_step_000002.pyth", "epoch 1 + 2 steps")
    assert e.exit_code == PREEMPTED_EXIT_CODE == 75 and "\n" not in str(e)
    assert str(e).startswith("stopped by SIGTERM at epoch 1 + 2 steps; saved /out/")


@pytest.mark.slow
def test_scripted_stops_resume_bitwise_with_the_same_records(synthetic_dataset, tmp_path):
    """Stops at the last step of epoch 1 (before its validation), at the end of epoch 2 (after
    validation and its checkpoint), and two steps into epoch 3: each run raises Preempted naming
    the checkpoint it wrote; the last run ends with the uninterrupted run's bits, and every
    epoch's train/val record equals the uninterrupted one."""
    from rs3d.config import load_config
    from rs3d.engine.train import train

    torch.set_num_threads(1)
    ref, out = tmp_path / "ref", tmp_path / "stopped"
    train(load_config(None, small_opts(synthetic_dataset, ref)))
    cfg = load_config(None, small_opts(synthetic_dataset, out))
    ckpts = out / "checkpoints"
    for at, expected in (
        (3, "checkpoint_epoch_00000_step_000003.pyth"),  # run 1: steps 1-3
        (5, "checkpoint_epoch_00002.pyth"),  # run 2: end of epoch 1, steps 2-4, end of 2
        (2, "checkpoint_epoch_00002_step_000002.pyth"),
    ):  # run 3: steps 1-2
        with pytest.raises(Preempted) as e:
            train(cfg, stop=ScriptedStop(at))
        assert e.value.checkpoint == str(ckpts / expected) and (ckpts / expected).is_file()
        assert e.value.signum == signal.SIGUSR1
        if at == 3:  # stopped before epoch 1's validation: nothing of it was recorded yet
            assert "val_epoch" not in (out / "json_stats.log").read_text()
    train(cfg)
    log = (out / "log.txt").read_text()
    assert f"resumed from {ckpts}/checkpoint_epoch_00000_step_000003.pyth (epoch 0 + 3 steps" in log
    assert f"resumed from {ckpts}/checkpoint_epoch_00002_step_000002.pyth (epoch 2 + 2 steps" in log
    _assert_same_weights(
        _load(ref / "checkpoints" / "checkpoint_epoch_00003.pyth"), _load(ckpts / "checkpoint_epoch_00003.pyth")
    )
    want = _epoch_records((ref / "json_stats.log").read_text())
    got = _epoch_records((out / "json_stats.log").read_text())
    assert len(want) == 6 and got == want
    assert not any("_step_" in p.name for p in ckpts.iterdir())  # superseded by the epoch ends


@pytest.mark.slow
def test_two_clips_per_video_stop_and_resume_bitwise(synthetic_dataset, tmp_path):
    """DATA.TRAIN_CLIPS_PER_VIDEO 2 stopped two steps into epoch 2, resumed: the uninterrupted
    run's bits; an epoch has the steps it has with one clip per video."""
    from rs3d.config import load_config
    from rs3d.engine.train import train

    torch.set_num_threads(1)
    ref, out = tmp_path / "ref", tmp_path / "stopped"
    extra = {"DATA.TRAIN_CLIPS_PER_VIDEO": 2}
    train(load_config(None, small_opts(synthetic_dataset, ref, **extra)))
    cfg = load_config(None, small_opts(synthetic_dataset, out, **extra))
    with pytest.raises(Preempted) as e:
        train(cfg, stop=ScriptedStop(3 + 1 + 3 + 1 + 2))  # epoch 0 (3 steps + end), epoch 1, 2 steps
    assert e.value.signum == signal.SIGUSR1 and e.value.checkpoint.endswith("checkpoint_epoch_00002_step_000002.pyth")
    train(cfg)
    a, b = (
        _load(ref / "checkpoints" / "checkpoint_epoch_00003.pyth"),
        _load(out / "checkpoints" / "checkpoint_epoch_00003.pyth"),
    )
    assert a["iteration"] == 9  # 3 epochs x 3 steps, as with one clip per video
    _assert_same_weights(a, b)


# The released TF conventions (configs/k400_rs50.yaml) on the small run, with 12 clips in batches of 5:
# 2 steps an epoch and ceil(2 x 12 / 5) = 5 steps in all, so the third epoch is cut short after 1 step.
TF_CONVENTIONS = {
    "MODEL.INIT": "tf",
    "BN.MOMENTUM": 1.0,
    "DATA.TRAIN_JITTER_MODE": "tf_area",
    "SOLVER.RUN_LENGTH": "examples",
    "SOLVER.MOMENTUM_FORM": "keras",
    "SOLVER.SELF_GATING_WEIGHT_DECAY": False,
    "TRAIN.EMA_FORM": "tf",
    "TEST.VIEW_POSITIONS": "tf",
    "TRAIN.BATCH_SIZE": 5,
    "SOLVER.REFERENCE_BATCH_SIZE": 5,
    "SOLVER.MAX_EPOCH": 2,
}


@pytest.mark.slow
def test_tf_conventions_with_a_cut_short_epoch_stop_and_resume_bitwise(synthetic_dataset, tmp_path):
    """Stopped one step into epoch 2 and in the cut-short epoch 3 (at its only step, before its
    validation), resumed each time: the uninterrupted run's bits (Keras SGD velocity, EMA from
    zero, BN statistics), 5 steps over 3 epochs, each epoch's records the same."""
    from rs3d.config import load_config
    from rs3d.engine.train import train

    torch.set_num_threads(1)
    ref, out = tmp_path / "ref", tmp_path / "stopped"
    train(load_config(None, small_opts(synthetic_dataset, ref, **TF_CONVENTIONS)))
    assert "5 steps in all (3 epochs)" in (ref / "log.txt").read_text()
    cfg = load_config(None, small_opts(synthetic_dataset, out, **TF_CONVENTIONS))
    ckpts = out / "checkpoints"
    for at, expected in (
        (4, "checkpoint_epoch_00001_step_000001.pyth"),  # epoch 0 (2 steps + end), 1 step
        (3, "checkpoint_epoch_00002_step_000001.pyth"),
    ):  # 1 step + end, the cut-short epoch's step
        with pytest.raises(Preempted) as e:
            train(cfg, stop=ScriptedStop(at))
        assert e.value.checkpoint == str(ckpts / expected)
    train(cfg)
    a, b = _load(ref / "checkpoints" / "checkpoint_epoch_00003.pyth"), _load(ckpts / "checkpoint_epoch_00003.pyth")
    assert a["iteration"] == 5 and "velocity" in next(iter(a["optimizer"]["state"].values()))
    _assert_same_weights(a, b)
    want = _epoch_records((ref / "json_stats.log").read_text())
    assert len(want) == 6 and _epoch_records((out / "json_stats.log").read_text()) == want
    assert [want[("train_epoch", e)]["iteration"] for e in (1, 2, 3)] == [2, 4, 5]


@pytest.mark.slow
def test_remote_output_dir_holds_checkpoints_config_and_logs_and_resumes(synthetic_dataset, tmp_path, monkeypatch):
    """OUTPUT_DIR on an object store (fsspec's memory:// here): checkpoints and config.yaml are
    written there, the logs through a local mirror; a second run resumes from the store and its
    records follow the first run's in the same json_stats.log."""
    from rs3d.config import load_config
    from rs3d.engine.train import train

    torch.set_num_threads(1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the mirror's staging folder
    remote = f"memory://rs3d-run-{uuid.uuid4().hex}"
    extra = {"TRAIN.EVAL_PERIOD": 0, "TENSORBOARD.ENABLE": True}
    train(load_config(None, small_opts(synthetic_dataset, remote, **extra, **{"SOLVER.MAX_EPOCH": 1})))
    names = set(file_io.ls(remote))
    assert {"config.yaml", "checkpoints", "log.txt", "json_stats.log", "tensorboard", "training_curves.png"} <= names, (
        names
    )
    assert file_io.ls(file_io.join(remote, "checkpoints")) == ["checkpoint_epoch_00001.pyth"]
    with file_io.open(file_io.join(remote, "config.yaml")) as f:
        assert f"OUTPUT_DIR: {remote}" in f.read()

    with pytest.raises(Preempted) as e:  # stopped mid-epoch: the checkpoint goes to the store
        train(
            load_config(None, small_opts(synthetic_dataset, remote, **extra, **{"SOLVER.MAX_EPOCH": 2})),
            stop=ScriptedStop(2),
        )
    assert e.value.checkpoint == f"{remote}/checkpoints/checkpoint_epoch_00001_step_000002.pyth"
    assert file_io.isfile(e.value.checkpoint)
    train(load_config(None, small_opts(synthetic_dataset, remote, **extra, **{"SOLVER.MAX_EPOCH": 2})))
    with file_io.open(file_io.join(remote, "log.txt")) as f:
        log = f.read()
    assert f"resumed from {remote}/checkpoints/checkpoint_epoch_00001.pyth" in log
    assert f"resumed from {remote}/checkpoints/checkpoint_epoch_00001_step_000002.pyth" in log
    with file_io.open(file_io.join(remote, "json_stats.log")) as f:
        epochs = [json.loads(line)["epoch"] for line in f if '"train_epoch"' in line]
    assert epochs == [1, 2]
    assert file_io.ls(file_io.join(remote, "checkpoints")) == [
        "checkpoint_epoch_00001.pyth",
        "checkpoint_epoch_00002.pyth",
    ]
    assert len(file_io.ls(file_io.join(remote, "tensorboard"))) == 3  # one events file per run


def _signal_after(proc, log: Path, n_steps: int, send, timeout=300):
    """Call ``send(proc)`` once the run has logged ``n_steps`` progress lines; returns stderr, rc."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        text = log.read_text() if log.exists() else ""
        if text.count("/3 iter ") >= n_steps:
            send(proc)
            _, err = proc.communicate(timeout=120)
            return err.decode(), proc.returncode
        time.sleep(0.005)
    raise TimeoutError(f"{n_steps} steps")


@pytest.mark.slow
def test_sigterm_to_the_process_group_and_sigusr1_stop_with_status_75_then_resume_bitwise(synthetic_dataset, tmp_path):
    """The signal SLURM sends reaches every process of the step, loader workers included: the
    trainer finishes its step, writes a mid-epoch checkpoint and exits with 75 and one line; the
    same command continues, without redoing a step, to the uninterrupted run's bits."""
    extra = {"DATA_LOADER.NUM_WORKERS": 1, "TRAIN.EVAL_PERIOD": 0}
    ref, out = tmp_path / "ref", tmp_path / "run"
    p = subprocess.run(
        [sys.executable, TOOL, *small_opts(synthetic_dataset, ref, **extra)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    cmd = [sys.executable, TOOL, *small_opts(synthetic_dataset, out, **extra)]
    lines_before = 0
    for n_steps, send, name in (
        (4, lambda pr: os.killpg(pr.pid, signal.SIGTERM), "SIGTERM"),
        (2, lambda pr: pr.send_signal(signal.SIGUSR1), "SIGUSR1"),
    ):
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), start_new_session=True
        )
        err, rc = _signal_after(proc, out / "log.txt", lines_before + n_steps, send)
        assert rc == PREEMPTED_EXIT_CODE, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: stopped by {name} at epoch "), err
        saved = lines[0].split("; saved ")[1].split(";")[0]
        assert Path(saved).is_file() and "Traceback" not in err
        lines_before = (out / "log.txt").read_text().count("/3 iter ")
    log_start = (out / "log.txt").stat().st_size
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr
    resumed = (out / "log.txt").read_text()[log_start:]
    assert f"resumed from {saved}" in resumed
    assert (out / "log.txt").read_text().count("/3 iter ") == 9  # every step once, none redone
    _assert_same_weights(
        _load(ref / "checkpoints" / "checkpoint_epoch_00003.pyth"),
        _load(out / "checkpoints" / "checkpoint_epoch_00003.pyth"),
    )


CRASH = """
import sys
import rs3d.engine.train as T
step = T.optimizer_step
def crash(state, sc):
    if state.progress.iteration == 2:
        raise RuntimeError("a bug in the middle of training")
    step(state, sc)
T.optimizer_step = crash
from rs3d.cli.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_runs_with_shielded_loader_workers_still_exit(synthetic_dataset, tmp_path):
    """Loader workers ignore SIGTERM (it is blocked in them), and multiprocessing ends leftover
    workers at exit with SIGTERM: the run must end them itself, also when an unexpected error's
    traceback keeps their iterator alive to the end (persistent workers, a validation loader)."""
    for n, (extra, code) in enumerate((({"SOLVER.MAX_EPOCH": 2}, 0), ({}, 1))):
        cmd = [sys.executable, "-c", CRASH] if code else [sys.executable, TOOL]
        opts = small_opts(synthetic_dataset, tmp_path / f"run{n}", **{"DATA_LOADER.NUM_WORKERS": 1, **extra})
        p = subprocess.run([*cmd, *opts], capture_output=True, text=True, env=_env(), timeout=120)
        assert p.returncode == code, p.stderr[-2000:]
    assert "RuntimeError: a bug in the middle of training" in p.stderr
