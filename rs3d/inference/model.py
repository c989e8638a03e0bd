"""The model a config describes, with the weights the test would use, in eval mode.

The one place a trained model is loaded for use: the test (``rs3d-test``), ``rs3d-predict``,
features, timelines and Grad-CAM all call :func:`load_model`. ``TEST.CHECKPOINT_FILE_PATH`` or the
newest checkpoint under ``OUTPUT_DIR``, EMA weights unless ``TEST.USE_EMA`` is False
(``rs3d.checkpoint.load_weights``), so an embedding or a Grad-CAM comes from the very model whose
accuracy was reported. The class names and the scoring rule (softmax, or a sigmoid per class on
multi-label data) come with it, so every tool names and scores classes as the test does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from .. import file_io
from ..checkpoint import load_weights, read_description, resolve_checkpoint
from ..checkpoint.metadata import stored_config, warn_missing
from ..data import class_names_for
from ..device import default_device
from ..engine.precision import inference_amp_dtype
from ..models import build_model


@dataclass
class LoadedModel:
    model: torch.nn.Module
    checkpoint: str
    weights: str  # "ema", "model" or a foreign format name
    device: torch.device
    amp_dtype: torch.dtype
    class_names: Optional[list] = None
    multi_label: bool = False  # scores are per-class sigmoids (DATA.MULTI_LABEL), else a softmax
    metadata: dict = field(default_factory=dict)  # the checkpoint's self-description (may be empty)

    @property
    def activation(self) -> str:
        return "sigmoid" if self.multi_label else "softmax"

    def name(self, c: int) -> str:
        return self.class_names[c] if self.class_names else str(c)


def inference_device(cfg, device: str = "") -> torch.device:
    """``device``, else ``cfg.DEVICE``, else cuda when available, else cpu."""
    return default_device(device or cfg.DEVICE)


def model_class_names(cfg, path: str) -> Optional[list]:
    """``classes.txt`` of a data folder given for this use (one other than the run's), else the
    names the checkpoint stores, else the run's data folder's ``classes.txt`` (or Kinetics-400)."""
    stored, trained_dir = None, None
    if path and file_io.is_local(path):
        stored = read_description(path)["metadata"].get("class_names")
        trained_dir = ((stored_config(path) or {}).get("DATA") or {}).get("PATH_TO_DATA_DIR")
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    if stored and len(stored) == cfg.MODEL.NUM_CLASSES and (not data_dir or data_dir == trained_dir):
        return list(stored)
    names = class_names_for(data_dir, cfg.MODEL.NUM_CLASSES)
    if names is None and stored and len(stored) == cfg.MODEL.NUM_CLASSES:
        return list(stored)
    return names


def load_model(cfg, device=None) -> LoadedModel:
    """Build ``cfg``'s model, load its test weights, move it to ``device`` and set eval mode."""
    dev = device if isinstance(device, torch.device) else inference_device(cfg, device or "")
    model = build_model(cfg)
    path = resolve_checkpoint(cfg.TEST.CHECKPOINT_FILE_PATH, cfg.OUTPUT_DIR)
    weights = load_weights(
        model,
        path,
        cfg.TEST.USE_EMA,
        inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
        inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE,
    )
    model.to(dev).eval()
    meta = {}
    if file_io.is_local(path) and weights in ("ema", "model"):  # an rs3d checkpoint: say what it lacks
        warn_missing(path)
        meta = read_description(path)["metadata"]
    return LoadedModel(
        model,
        path,
        weights,
        dev,
        inference_amp_dtype(cfg.TRAIN.AMP_DTYPE, dev),
        class_names=model_class_names(cfg, path),
        multi_label=bool(cfg.DATA.MULTI_LABEL),
        metadata=meta,
    )
