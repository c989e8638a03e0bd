"""The model a config describes, with the weights the test would use, in eval mode.

The same resolution as ``tools/test_net.py`` and ``tools/predict.py``: ``TEST.CHECKPOINT_FILE_PATH``
or the newest checkpoint under ``OUTPUT_DIR``, EMA weights unless ``TEST.USE_EMA`` is False, so an
embedding or a Grad-CAM comes from the very model whose accuracy was reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LoadedModel:
    model: torch.nn.Module
    checkpoint: str
    weights: str          # "ema", "model" or a foreign format name
    device: torch.device
    amp_dtype: torch.dtype


def inference_device(cfg, device: str = "") -> torch.device:
    """``device``, else ``cfg.DEVICE``, else cuda when available, else cpu."""
    return torch.device(device or cfg.DEVICE or ("cuda" if torch.cuda.is_available() else "cpu"))


def load_model(cfg, device=None) -> LoadedModel:
    """Build ``cfg``'s model, load its test weights, move it to ``device`` and set eval mode."""
    from rs3d.engine.evaluate import AMP_DTYPES, load_weights, resolve_checkpoint
    from rs3d.models import build_model

    dev = device if isinstance(device, torch.device) else inference_device(cfg, device or "")
    model = build_model(cfg)
    path = resolve_checkpoint(cfg.TEST.CHECKPOINT_FILE_PATH, cfg.OUTPUT_DIR)
    weights = load_weights(model, path, cfg.TEST.USE_EMA, inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
                           inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE)
    model.to(dev).eval()
    # Autocast follows the training precision on a GPU (as the test does); on a CPU it only slows.
    amp = AMP_DTYPES[cfg.TRAIN.AMP_DTYPE] if dev.type == "cuda" else torch.float32
    return LoadedModel(model, path, weights, dev, amp)
