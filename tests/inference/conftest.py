"""Fixtures of the inference tests: a tiny model whose every block contributes, saved as a checkpoint.

``tiny_checkpoint`` -> (path, model)
    ``resnet3d_rs26`` at width 0.25 for 4 classes with randomised BatchNorm affine parameters and
    statistics (so no residual branch is zero, as it is at initialisation), saved with EMA weights.
``cfg`` -> CfgNode
    ``data_cfg`` (tests/conftest.py: 4 frames x stride 2, 32x32 crops, 2 clips x 3 crops) pointed at
    that model and checkpoint, on the CPU.
"""
import pytest
import torch

from inference_helpers import tiny_model


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    model = tiny_model()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pyth"
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "epoch": 1}, path)
    return path, model


@pytest.fixture
def cfg(data_cfg, tiny_checkpoint):
    data_cfg.MODEL.ARCH = "resnet3d_rs26"
    data_cfg.MODEL.WIDTH_MULTIPLIER = 0.25
    data_cfg.TEST.CHECKPOINT_FILE_PATH = str(tiny_checkpoint[0])
    data_cfg.TEST.BATCH_SIZE = 4  # 6 views per video: two chunks, so chunking is exercised
    data_cfg.DEVICE = "cpu"
    return data_cfg


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: one intra-op thread is faster than several fighting over busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
