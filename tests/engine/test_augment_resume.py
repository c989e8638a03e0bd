"""Exact resume with the ResNet strikes back augmentations on: RandAugment in a loader worker,
MixUp/CutMix, binary cross-entropy and LAMB. A run checkpointed in the middle of an epoch and
resumed in fresh parts ends with the bits of a run that was never interrupted (in process, tiny
model: the real-process SIGKILL tests in test_train.py cover the plain recipe)."""

import pytest
import torch
from helpers import tiny_run_opts

AUGMENTED = {
    "AUG.RAND_AUGMENT_NUM_OPS": 2,
    "AUG.RAND_AUGMENT_MAGNITUDE": 9,
    "MIXUP.ENABLE": True,
    "MIXUP.ALPHA": 0.2,
    "MIXUP.CUTMIX_ALPHA": 1.0,
    "TRAIN.LOSS": "bce",
    "TRAIN.BCE_TARGET_THRESHOLD": 0.2,
}


def tiny_opts(data_dir, out_dir, **extra):
    """4 classes, 4x32x32 clips, 3 optimizer steps per epoch, 2 epochs, one loader worker."""
    changes = {
        "DATA_LOADER.NUM_WORKERS": 1,
        "DATA_LOADER.PERSISTENT_WORKERS": False,
        "TRAIN.EVAL_PERIOD": 0,
        "SOLVER.MAX_EPOCH": 2,
        "TRAIN.CHECKPOINT_PERIOD_ITERS": 1,
    }
    return tiny_run_opts(data_dir, out_dir, **{**changes, **extra})


def _parts(cfg):
    from rs3d.engine.builder import build_training
    from rs3d.engine.distributed import DistInfo

    return build_training(cfg, DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))


def _weights(parts) -> dict:
    s = parts.state
    out = {f"model.{k}": v.clone() for k, v in s.model.state_dict().items()}
    out.update({f"ema.{k}": v.clone() for k, v in s.ema.module.state_dict().items()})
    for i, st in s.optimizer.state_dict()["state"].items():
        out.update({f"opt.{i}.{k}": v.clone() for k, v in st.items() if torch.is_tensor(v)})
    return out


@pytest.mark.parametrize("optimizer", ["sgd", "lamb"])
def test_mid_epoch_resume_is_bitwise_with_randaugment_and_mixup(synthetic_dataset, tmp_path, optimizer):
    from rs3d.checkpoint.files import latest_good_checkpoint
    from rs3d.config import load_config
    from rs3d.engine.checkpointer import Checkpointer
    from rs3d.engine.train import resume, train_one_epoch

    torch.set_num_threads(1)
    extra = {**AUGMENTED, "SOLVER.OPTIMIZING_METHOD": optimizer}
    ref = _parts(load_config(None, tiny_opts(synthetic_dataset, tmp_path / "ref", **extra)))
    assert ref.mix is not None and ref.train_loader.dataset.rand_augment is not None
    for epoch in range(2):
        train_one_epoch(ref, epoch)
    expected = _weights(ref)

    out = tmp_path / "killed"
    cfg = load_config(None, tiny_opts(synthetic_dataset, out, **extra))
    first = _parts(cfg)
    ckpt = Checkpointer(str(out), keep=2, every_steps=1)
    train_one_epoch(first, 0, checkpointer=ckpt)
    ckpt.save(first.state)
    train_one_epoch(first, 1, checkpointer=ckpt, until_step=2)  # dies after step 2; newest file: step 1
    del first
    path, state = latest_good_checkpoint(str(out))
    assert path.endswith("checkpoint_epoch_00001_step_000001.pyth"), path
    second = _parts(cfg)
    resume(second, path, state)
    train_one_epoch(second, 1)
    got = _weights(second)
    assert got.keys() == expected.keys()
    differ = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differ, differ[:5]
    # and the augmentations did act: the same run without them ends elsewhere
    plain = _parts(
        load_config(None, tiny_opts(synthetic_dataset, tmp_path / "plain", **{"SOLVER.OPTIMIZING_METHOD": optimizer}))
    )
    for epoch in range(2):
        train_one_epoch(plain, epoch)
    assert not torch.equal(_weights(plain)["model.fc.weight"], expected["model.fc.weight"])
