"""Fixtures of the inference tests: a tiny model whose every block contributes, saved as a checkpoint.

``tiny_checkpoint`` -> (path, model)
    ``resnet3d_rs26`` at width 0.25 for 4 classes with randomised BatchNorm affine parameters and
    statistics (so no residual branch is zero, as it is at initialisation), saved with EMA weights
    and the self-description training writes (the ``cfg`` fixture's config, class names, ...).
``cfg`` -> CfgNode
    ``data_cfg`` (tests/conftest.py: 4 frames x stride 2, 32x32 crops, 2 clips x 3 crops) pointed at
    that model and checkpoint, on the CPU.
"""

import pytest
import torch
from inference_helpers import MODEL_OPTS, tiny_model

from rs3d.checkpoint import METADATA_KEY, checkpoint_metadata
from rs3d.config import load_config


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, synthetic_dataset):
    model = tiny_model()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pyth"
    stored = load_config(
        None,
        MODEL_OPTS
        + [
            "DATA.PATH_TO_DATA_DIR",
            str(synthetic_dataset),
            "DATA.NUM_FRAMES",
            "4",
            "DATA.SAMPLING_RATE",
            "2",
            "DATA.TRAIN_CROP_SIZE",
            "32",
            "DATA.TEST_CROP_SIZE",
            "32",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "2",
            "TEST.NUM_SPATIAL_CROPS",
            "3",
            "DATA_LOADER.NUM_WORKERS",
            "0",
            "TEST.BATCH_SIZE",
            "4",
            "DEVICE",
            "cpu",
        ],
    )
    torch.save(
        {
            "model": model.state_dict(),
            "ema": model.state_dict(),
            "epoch": 1,
            "cfg": stored.dump(),
            METADATA_KEY: checkpoint_metadata(stored),
        },
        path,
    )
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
