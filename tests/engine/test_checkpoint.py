"""Checkpoint files: atomic write, newest good one found, unsafe or broken files refused in one line."""
import os
import random

import numpy as np
import pytest
import torch

from rs3d.engine.checkpoint import (CheckpointError, checkpoint_path, find_latest_checkpoint,
                                    get_rng_state, latest_good_checkpoint, load_checkpoint,
                                    prune_checkpoints, save_checkpoint, set_rng_state)


def _state(epoch):
    return {"model": {"w": torch.full((2,), float(epoch))}, "epoch": epoch, "iteration": 10 * epoch,
            "cfg": "X: 1\n"}


def test_latest_skips_corrupt_and_partial_files(tmp_path):
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
    with pytest.raises(CheckpointError, match="checkpoint_epoch_00004.pyth"):
        load_checkpoint(checkpoint_path(out, 4))


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
