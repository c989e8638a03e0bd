"""Checkpoint files: atomic write, newest good one found, unsafe or broken files refused in one line."""

import logging
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rs3d.checkpoint import (
    checkpoint_path,
    checkpoint_position,
    find_latest_checkpoint,
    latest_good_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    remove_stale_temporaries,
    save_checkpoint,
)
from rs3d.engine.rng import get_rng_state, set_rng_state
from rs3d.errors import CheckpointError


def _state(epoch):
    return {"model": {"w": torch.full((2,), float(epoch))}, "epoch": epoch, "iteration": 10 * epoch, "cfg": "X: 1\n"}


@pytest.fixture
def warnings_seen(caplog, monkeypatch):
    """The rs3d logger's warnings (a run in this process may have stopped their propagation)."""
    monkeypatch.setattr(logging.getLogger("rs3d"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="rs3d")
    return lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_latest_skips_corrupt_and_partial_files(tmp_path, warnings_seen):
    out = str(tmp_path)
    assert find_latest_checkpoint(out) is None
    for e in (1, 2, 3):
        save_checkpoint(_state(e), checkpoint_path(out, e))
    # epoch 4 was cut short by a crash (not via save_checkpoint), epoch 5 is garbage
    data = open(checkpoint_path(out, 3), "rb").read()
    open(checkpoint_path(out, 4), "wb").write(data[: len(data) // 2])
    open(checkpoint_path(out, 5), "wb").write(b"not a checkpoint")
    path, ckpt = latest_good_checkpoint(out)
    assert path == checkpoint_path(out, 3) == find_latest_checkpoint(out)
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["model"]["w"], torch.full((2,), 3.0))
    # Each file skipped is named, with why.
    seen = warnings_seen()
    assert any(checkpoint_path(out, 5) in w and "not a checkpoint" in w for w in seen), seen
    assert any(checkpoint_path(out, 4) in w and "damaged" in w for w in seen), seen
    with pytest.raises(CheckpointError, match="checkpoint_epoch_00004.pyth"):
        load_checkpoint(checkpoint_path(out, 4))


def _overwrite_middle(path, nbytes=4096, seed=0):
    data = bytearray(open(path, "rb").read())
    mid = len(data) // 2
    data[mid : mid + nbytes] = random.Random(seed).randbytes(nbytes)
    open(path, "wb").write(bytes(data))


def test_bytes_overwritten_inside_the_newest_checkpoint_are_detected_and_it_is_skipped_by_name(tmp_path, warnings_seen):
    """4 KB overwritten in the middle of a checkpoint: torch.load alone reads it without a word (the
    weights are wrong); the CRC check refuses it and the lookup falls back to the previous file."""
    out = str(tmp_path)
    for e in (1, 2):
        save_checkpoint({**_state(e), "optimizer": {"m": torch.randn(2**16)}}, checkpoint_path(out, e))
    newest = checkpoint_path(out, 2)
    _overwrite_middle(newest)
    torch.load(newest, weights_only=True)  # what made this dangerous: no error from PyTorch
    with pytest.raises(CheckpointError, match=r"checkpoint_epoch_00002.pyth is damaged: .*CRC") as e:
        load_checkpoint(newest)
    assert "\n" not in str(e.value)
    path, ckpt = latest_good_checkpoint(out)
    assert path == checkpoint_path(out, 1) and ckpt["epoch"] == 1
    assert any(newest in w and "CRC" in w for w in warnings_seen()), warnings_seen()


def test_a_text_file_is_not_a_checkpoint_and_not_called_unsafe(tmp_path):
    path = tmp_path / "notes.pyth"
    path.write_text("these are my notes, not weights\n")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(str(path))
    assert f"{path} is not a checkpoint" in str(e.value) and "run code" not in str(e.value)


def test_only_temporaries_whose_writer_is_gone_are_removed(tmp_path):
    """A save under way in a live process (or on another host) keeps its temporary; a dead
    writer's is removed."""
    from rs3d.file_io.owner import temporary_name

    final = checkpoint_path(str(tmp_path), 1)
    os.makedirs(os.path.dirname(final))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = temporary_name(final)  # this process: alive
    live_old_style = f"{final}.{os.getpid()}.tmp"
    gone = f"{final}.{os.path.basename(live).split('.')[-3]}.{dead.pid}.tmp"
    gone_old_style = f"{final}.{dead.pid}.tmp"  # names written before the host was in them
    elsewhere = f"{final}.some-other-host.{os.getpid()}.tmp"
    for p in (live, live_old_style, gone, gone_old_style, elsewhere):
        open(p, "wb").write(b"partial")
    assert sorted(remove_stale_temporaries(str(tmp_path))) == sorted([gone, gone_old_style])
    assert all(os.path.exists(p) for p in (live, live_old_style, elsewhere))


def test_epoch_numbers_sort_numerically_and_prune_keeps_newest(tmp_path):
    out = str(tmp_path)
    for e in (9, 10, 100, 2):
        save_checkpoint(_state(e), checkpoint_path(out, e))
    assert find_latest_checkpoint(out) == checkpoint_path(out, 100)
    prune_checkpoints(out, keep=2)
    left = sorted(os.listdir(tmp_path / "checkpoints"))
    assert left == ["checkpoint_epoch_00010.pyth", "checkpoint_epoch_00100.pyth"]


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    path = checkpoint_path(str(tmp_path), 1)
    save_checkpoint(_state(1), path)
    save_checkpoint(_state(2), path)  # overwrite in place
    assert load_checkpoint(path)["epoch"] == 2
    assert os.listdir(tmp_path / "checkpoints") == ["checkpoint_epoch_00001.pyth"]


def test_mid_epoch_checkpoints_sort_between_epochs_and_only_the_newest_is_kept(tmp_path):
    out = str(tmp_path)
    assert os.path.basename(checkpoint_path(out, 2, 150)) == "checkpoint_epoch_00002_step_000150.pyth"
    assert checkpoint_position(checkpoint_path(out, 2, 150)) == (2, 150)
    assert checkpoint_position(checkpoint_path(out, 3)) == (3, 0)
    assert checkpoint_position(str(tmp_path / "checkpoint_best.pyth")) is None
    for epoch, step in [(1, 0), (2, 0), (1, 900), (2, 40), (2, 1000)]:
        save_checkpoint(_state(epoch), checkpoint_path(out, epoch, step))
    assert [checkpoint_position(p) for p in list_checkpoints(out)] == [(1, 0), (1, 900), (2, 0), (2, 40), (2, 1000)]
    assert find_latest_checkpoint(out) == checkpoint_path(out, 2, 1000)
    prune_checkpoints(out, keep=3)  # the older mid-epoch files are superseded
    assert [checkpoint_position(p) for p in list_checkpoints(out)] == [(1, 0), (2, 0), (2, 1000)]
    save_checkpoint(_state(3), checkpoint_path(out, 3))
    prune_checkpoints(out, keep=2)  # the epoch end supersedes the mid-epoch file; keep 2 epoch ends
    assert [checkpoint_position(p) for p in list_checkpoints(out)] == [(2, 0), (3, 0)]


_SAVE_BIG = """
import sys, torch
from rs3d.checkpoint import save_checkpoint
save_checkpoint({"model": {"w": torch.ones(2**27)}, "epoch": 2}, sys.argv[1])  # 512 MB
print("done", flush=True)
"""


def test_sigkill_during_a_save_leaves_the_previous_checkpoint_intact(tmp_path):
    """A real process killed while it writes a new version of a checkpoint: the file on disk is
    still the complete old one, and the only debris is the temporary file (which is ignored)."""
    path = checkpoint_path(str(tmp_path), 1)
    save_checkpoint(_state(1), path)
    before = open(path, "rb").read()
    proc = subprocess.Popen([sys.executable, "-c", _SAVE_BIG, path], stdout=subprocess.PIPE)
    t0 = time.time()
    while not any(
        n.endswith(".tmp") and os.path.getsize(tmp_path / "checkpoints" / n) > 2**20
        for n in os.listdir(tmp_path / "checkpoints")
    ):
        assert proc.poll() is None, "the save ended before it could be interrupted"
        assert time.time() - t0 < 120
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert open(path, "rb").read() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert latest_good_checkpoint(str(tmp_path))[0] == path
    assert list_checkpoints(str(tmp_path)) == [path]  # the .tmp is not taken for a checkpoint
    # The next run's writer clears the debris (it can be as large as a checkpoint).
    [tmp] = [n for n in os.listdir(tmp_path / "checkpoints") if n.endswith(".tmp")]
    assert remove_stale_temporaries(str(tmp_path)) == [str(tmp_path / "checkpoints" / tmp)]
    assert os.listdir(tmp_path / "checkpoints") == [os.path.basename(path)]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_unsafe_pickle_is_refused(tmp_path):
    path = str(tmp_path / "evil.pyth")
    torch.save({"model": _Evil()}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and "evil.pyth" in msg and "refused" in msg
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.pyth"))


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.randn()  # leave cached gaussians in the states
    path = save_checkpoint({"rng": get_rng_state()}, str(tmp_path / "r.pyth"))
    expected = (random.random(), random.gauss(0, 1), np.random.randn(), torch.rand(3))
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    set_rng_state(load_checkpoint(path)["rng"])
    got = (random.random(), random.gauss(0, 1), np.random.randn(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def _train_state(seed: int, ema: bool = True):
    from torch import nn

    from rs3d.engine.ema import ModelEma
    from rs3d.engine.optim import build_optimizer
    from rs3d.engine.state import TrainState

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = build_optimizer(model, lr=0.1, momentum=0.9, weight_decay=1e-4)
    return TrainState(
        model=model,
        optimizer=opt,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        ema=ModelEma(model, 0.9) if ema else None,
        info={"cfg": "X: 1\n"},
    )


def _one_step(state):
    x = torch.randn(8, 3)
    state.model.train()
    state.model(x).square().mean().backward()
    state.optimizer.step()
    state.optimizer.zero_grad()
    state.ema.update(state.model, state.progress.iteration)


def test_train_state_round_trips_through_a_weights_only_file(tmp_path):
    """What a checkpoint holds is TrainState.state_dict(); load_state_dict restores all of it
    into a differently initialised state, and the file keeps the keys evaluation reads."""
    from rs3d.engine.state import EpochSums, Progress

    a = _train_state(0)
    _one_step(a)
    a.progress = Progress(epoch=2, step_in_epoch=3, iteration=23)
    a.best_metric, a.best_metric_name = 41.5, "top1"
    a.sums = EpochSums(loss_sum=7.0, correct=2.0, seen=12.0, skipped=1.0, time_s=3.5)
    a.capture_rng()
    path = save_checkpoint(a.state_dict(), str(tmp_path / "c.pyth"))
    ckpt = load_checkpoint(path)  # weights_only=True
    for key in (
        "model",
        "ema",
        "optimizer",
        "scaler",
        "epoch",
        "step_in_epoch",
        "iteration",
        "cfg",
        "rng",
        "best_metric",
        "best_metric_name",
        "world_size",
        "epoch_progress",
    ):
        assert key in ckpt, key

    b = _train_state(1)
    assert not torch.equal(b.model[0].weight, a.model[0].weight)
    b.load_state_dict(ckpt)
    for x, y in ((a.model, b.model), (a.ema.module, b.ema.module)):
        for (k, u), v in zip(x.state_dict().items(), y.state_dict().values()):
            assert torch.equal(u, v), k
    assert b.optimizer.state_dict()["state"].keys() == a.optimizer.state_dict()["state"].keys()
    for k, s in a.optimizer.state_dict()["state"].items():
        assert torch.equal(s["momentum_buffer"], b.optimizer.state_dict()["state"][k]["momentum_buffer"])
    assert (b.progress, b.best_metric, b.best_metric_name, b.sums) == (a.progress, 41.5, "top1", a.sums)
    assert len(b.rng) == 1 and torch.equal(b.rng[0]["torch"], a.rng[0]["torch"])
    assert b.info == {"cfg": "X: 1\n"}  # this run's, not read back


def test_train_state_reads_older_checkpoints():
    """Files written before TrainState: best_top1 -1 meant "no validation yet", no EMA weights
    gives the EMA the model's, an epoch-end file has no running sums."""
    from rs3d.engine.state import EpochSums, Progress

    src = _train_state(0, ema=False)
    old = {
        "model": src.model.state_dict(),
        "optimizer": src.optimizer.state_dict(),
        "epoch": 4,
        "iteration": 40,
        "best_top1": -1.0,
        "sampler_epoch": 4,
        "cfg": "X: 1\n",
    }
    b = _train_state(1)
    b.load_state_dict(old)
    assert b.progress == Progress(epoch=4, step_in_epoch=0, iteration=40)
    assert b.best_metric is None and b.best_metric_name is None and b.sums == EpochSums() and b.rng == []
    assert torch.equal(b.ema.module[0].weight, src.model[0].weight)
    assert "epoch_progress" not in b.state_dict()  # only a mid-epoch position carries sums
    # A validated run of that time: its best_top1 (mAP on multi-label data) is the best so far,
    # under no name (the file does not say which figure it was).
    b.load_state_dict({**old, "best_top1": 41.5})
    assert (b.best_metric, b.best_metric_name) == (41.5, None)


def test_checkpointer_writes_at_the_position_and_prunes(tmp_path):
    from rs3d.engine.checkpointer import Checkpointer
    from rs3d.engine.state import Progress

    state = _train_state(0)
    saver = Checkpointer(str(tmp_path), keep=1, every_steps=5)
    assert [s for s in range(1, 16) if saver.mid_epoch_due(s)] == [5, 10, 15]
    assert not Checkpointer(str(tmp_path), keep=1).mid_epoch_due(5)
    state.progress = Progress(epoch=0, step_in_epoch=5, iteration=5)
    saver.save(state)
    assert [checkpoint_position(p) for p in list_checkpoints(str(tmp_path))] == [(0, 5)]
    state.progress = Progress(epoch=1, step_in_epoch=0, iteration=12)
    saver.save(state, is_best=True)
    assert [checkpoint_position(p) for p in list_checkpoints(str(tmp_path))] == [(1, 0)]
    assert load_checkpoint(str(tmp_path / "checkpoints" / "checkpoint_best.pyth"))["iteration"] == 12


def test_initial_weights_are_checked_the_same_way(tmp_path):
    """TRAIN.CHECKPOINT_FILE_PATH and foreign files (rs3d.models.convert) get the same CRC check and
    the same "not a checkpoint" message."""
    from rs3d.models.convert import read_weights_file

    path = str(tmp_path / "init.pyth")
    save_checkpoint({"model": {"w": torch.randn(2**16)}, "epoch": 1}, path)
    _overwrite_middle(path)
    with pytest.raises(CheckpointError, match="init.pyth is damaged: .*CRC"):
        read_weights_file(path)
    text = tmp_path / "notes.pyth"
    text.write_text("not weights")
    with pytest.raises(CheckpointError, match="notes.pyth is not a checkpoint") as e:
        read_weights_file(str(text))
    assert "run code" not in str(e.value)
