"""What a checkpoint says about the model in it, so that the file alone is enough to use it.

Training writes, beside the weights, the run's resolved config (``cfg``, YAML) and under
``rs3d_model`` the description :func:`checkpoint_metadata` assembles: the architecture and its
constructor arguments, the class names, the clip the model was trained and tested on (frames,
sampling, crop sizes, pixel scaling), single- or multi-label scoring, the rs3d version, and a slot
for the training data's fingerprint. Plain containers only: the file still loads with
``torch.load(weights_only=True)``.

:func:`read_description` gives a file's description for the tools; a file written before it (or
by another library) gives what it has and :func:`missing_parts` names the rest.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Dict, List, Optional

import yaml

from .. import __version__
from ..data import class_names_for
from ..models import model_overrides
from .files import load_checkpoint

logger = logging.getLogger(__name__)

METADATA_KEY = "rs3d_model"
FORMAT_VERSION = 1
# What a complete description holds (a checkpoint without one of them gets a warning naming it).
PARTS = ("config", "class names", "architecture", "clip", "rs3d version")
# How model input is made from decoded RGB uint8 pixels (every rs3d reader gives RGB).
PIXEL_SCALING = "(pixel / 255 - mean) / std, RGB, channels first [B, 3, T, H, W]"


def clip_spec(cfg) -> Dict[str, Any]:
    """The clip a model was trained and tested on: what preprocessing must reproduce."""
    d = cfg.DATA
    return {
        "num_frames": d.NUM_FRAMES,
        "sampling": d.SAMPLING,
        "sampling_rate": d.SAMPLING_RATE,
        "target_fps": d.TARGET_FPS,
        "train_crop_size": d.TRAIN_CROP_SIZE,
        "test_crop_size": d.TEST_CROP_SIZE,
        "mean": list(d.MEAN),
        "std": list(d.STD),
        "pixel_scaling": PIXEL_SCALING,
        "autorotate": d.AUTOROTATE,
        "test_views": [cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS],
        "test_view_positions": cfg.TEST.VIEW_POSITIONS,
    }


def architecture_spec(cfg) -> Dict[str, Any]:
    """``rs3d.create_model(name, num_classes=..., **kwargs)`` rebuilds the model."""
    return {"name": cfg.MODEL.ARCH, "num_classes": cfg.MODEL.NUM_CLASSES, "kwargs": model_overrides(cfg)}


def checkpoint_metadata(cfg, class_names: Optional[List[str]] = None) -> Dict[str, Any]:
    """The self-description a training run writes into every checkpoint (one place: add a part here).

    ``class_names`` default to the data folder's ``classes.txt`` (or the Kinetics-400 list)."""
    if class_names is None:
        class_names = class_names_for(cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES)
    return {
        "format": FORMAT_VERSION,
        "rs3d_version": __version__,
        "architecture": architecture_spec(cfg),
        "class_names": list(class_names) if class_names else None,
        "multi_label": bool(cfg.DATA.MULTI_LABEL),
        "activation": "sigmoid" if cfg.DATA.MULTI_LABEL else "softmax",
        "ensemble_method": cfg.TEST.ENSEMBLE_METHOD,
        "clip": clip_spec(cfg),
        # The training data's fingerprint (the dataset manifest), when the run knows it.
        "data_manifest": None,
    }


def missing_parts(ckpt: dict) -> List[str]:
    """The parts of :data:`PARTS` a loaded checkpoint does not carry."""
    meta = ckpt.get(METADATA_KEY) if isinstance(ckpt.get(METADATA_KEY), dict) else {}
    have = {
        "config": isinstance(ckpt.get("cfg"), str),
        "class names": bool(meta.get("class_names")),
        "architecture": "architecture" in meta,
        "clip": "clip" in meta,
        "rs3d version": "rs3d_version" in meta,
    }
    return [p for p in PARTS if not have[p]]


@functools.lru_cache(maxsize=8)
def _description(path: str, stamp) -> dict:
    ckpt = load_checkpoint(path)
    meta = ckpt.get(METADATA_KEY) if isinstance(ckpt.get(METADATA_KEY), dict) else {}
    config = ckpt.get("cfg") if isinstance(ckpt.get("cfg"), str) else None
    return {"config": config, "metadata": dict(meta), "missing": missing_parts(ckpt), "rs3d": "model" in ckpt}


def read_description(path: str) -> dict:
    """``{"config": YAML or None, "metadata": dict, "missing": [part, ...], "rs3d": bool}`` of a
    checkpoint file (read once per file and modification time; the weights are not kept)."""
    stamp = os.stat(path).st_mtime_ns if os.path.isfile(path) else None
    return _description(path, stamp)


def stored_config(path: str) -> Optional[dict]:
    """The run's config stored in ``path`` as a mapping, or None (an older or foreign file)."""
    text = read_description(path)["config"]
    if not text:
        return None
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else None


def warn_missing(path: str) -> List[str]:
    """Log one warning naming what ``path`` lacks of a complete description; returns the list."""
    desc = read_description(path)
    if desc["missing"] and desc["rs3d"]:
        logger.warning(
            "%s does not describe itself fully (written by an older rs3d): no %s; "
            "give the run's config with --cfg (and classes.txt in DATA.PATH_TO_DATA_DIR) "
            "if the results look wrong",
            path,
            ", ".join(desc["missing"]),
        )
    return desc["missing"]
