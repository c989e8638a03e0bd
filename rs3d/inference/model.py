"""The model a config describes, with the weights the test would use, in eval mode.

The one place a trained model is loaded for use: the test (``rs3d-test``), ``rs3d-predict``,
features, timelines and Grad-CAM all call :func:`load_model`. ``TEST.CHECKPOINT_FILE_PATH`` or the
newest checkpoint under ``OUTPUT_DIR``, EMA weights unless ``TEST.USE_EMA`` is False
(``rs3d.checkpoint.load_weights``), so an embedding or a Grad-CAM comes from the very model whose
accuracy was reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checkpoint import load_weights, resolve_checkpoint
from ..device import default_device
from ..engine.precision import inference_amp_dtype
from ..models import build_model


@dataclass
class LoadedModel:
    model: torch.nn.Module
    checkpoint: str
    weights: str          # "ema", "model" or a foreign format name
    device: torch.device
    amp_dtype: torch.dtype


def inference_device(cfg, device: str = "") -> torch.device:
    """``device``, else ``cfg.DEVICE``, else cuda when available, else cpu."""
    return default_device(device or cfg.DEVICE)


def load_model(cfg, device=None) -> LoadedModel:
    """Build ``cfg``'s model, load its test weights, move it to ``device`` and set eval mode."""
    dev = device if isinstance(device, torch.device) else inference_device(cfg, device or "")
    model = build_model(cfg)
    path = resolve_checkpoint(cfg.TEST.CHECKPOINT_FILE_PATH, cfg.OUTPUT_DIR)
    weights = load_weights(model, path, cfg.TEST.USE_EMA, inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
                           inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE)
    model.to(dev).eval()
    return LoadedModel(model, path, weights, dev, inference_amp_dtype(cfg.TRAIN.AMP_DTYPE, dev))
