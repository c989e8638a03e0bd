"""The config a tool uses a trained model with: the checkpoint's own, unless ``--cfg`` is given.

Every tool that uses a trained model (``rs3d-test``, ``rs3d-predict``, ``rs3d-timeline``,
``rs3d-extract-features``, ``rs3d-visualize gradcam``) loads its config here, so
``rs3d-predict TEST.CHECKPOINT_FILE_PATH model.pyth -- video.mp4`` works from any folder:

- no ``--cfg``: the run's resolved config stored in the checkpoint is the base (but for the
  machine's keys, ``DEVICE`` and ``OUTPUT_DIR``), the command's overrides apply on top (a
  checkpoint without one: the defaults, with a warning);
- ``--cfg``: that file is the base, as before, but a model it describes differently from the
  checkpoint (architecture, classes, width, single- or multi-label, ...) is refused in one line
  naming the keys, instead of a ``size mismatch`` from deep inside PyTorch.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

from .. import file_io
from ..config import load_config
from ..errors import ConfigError
from .metadata import read_description, stored_config

logger = logging.getLogger(__name__)

CHECKPOINT_KEY = "TEST.CHECKPOINT_FILE_PATH"
# Keys of the stored config that belong to the machine and folder it was trained in, not to the
# model: left at their defaults here (a GPU run's DEVICE "cuda" on a laptop, another machine's
# OUTPUT_DIR), unless the command sets them.
MACHINE_KEYS = ("DEVICE", "OUTPUT_DIR")
# Config keys that decide the shapes of a model's weights, or how its outputs are scored (a
# multi-label model read with a softmax gives other numbers without a word).
MODEL_KEYS = (
    "MODEL.ARCH",
    "MODEL.NUM_CLASSES",
    "MODEL.WIDTH_MULTIPLIER",
    "MODEL.SE_RATIO",
    "MODEL.STEM_TYPE",
    "DATA.MULTI_LABEL",
)


def checkpoint_in(opts: Sequence[str]) -> str:
    """The last ``TEST.CHECKPOINT_FILE_PATH`` value among ``KEY VALUE`` overrides, or ""."""
    pairs = list(zip(opts[0::2], opts[1::2]))
    found = [v for k, v in pairs if k == CHECKPOINT_KEY]
    return found[-1] if found else ""


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _model_keys(cfg) -> dict:
    return {k: _get(cfg, k) for k in MODEL_KEYS}


def check_fits(cfg, stored, path: str, cfg_file: str) -> None:
    """ConfigError naming every key of :data:`MODEL_KEYS` where ``cfg`` (from ``cfg_file``) and the
    checkpoint's stored config disagree."""
    ours, theirs = _model_keys(cfg), _model_keys(stored)
    diff = [k for k in MODEL_KEYS if ours[k] != theirs[k]]
    if diff:
        shown = ", ".join(f"{k} {ours[k]!r} (checkpoint: {theirs[k]!r})" for k in diff)
        raise ConfigError(
            f"--cfg {cfg_file} describes another model than {path}: {shown}; drop --cfg "
            "(the checkpoint carries its own config) or fix these keys"
        )


def load_model_config(cfg_file: str, opts: Sequence[str], *, splits=None, checkpoint: Optional[str] = None):
    """The validated, frozen config for using the checkpoint named by ``checkpoint`` or by
    ``TEST.CHECKPOINT_FILE_PATH`` in ``opts`` (see the module doc). Without a checkpoint given,
    plain :func:`rs3d.config.load_config` (the newest checkpoint under OUTPUT_DIR is found later)."""
    opts = list(opts or [])
    if checkpoint:
        opts += [CHECKPOINT_KEY, checkpoint]
    path = checkpoint_in(opts)
    if not path or file_io.is_url(path) or not file_io.isfile(path):  # a URL or a missing file fails when loaded
        return load_config(cfg_file or None, opts, splits=splits)
    stored = stored_config(path)
    if cfg_file:
        cfg = load_config(cfg_file, opts, splits=splits)
        if stored is not None:
            check_fits(cfg, load_config(None, [], base=stored, base_name=f"{path} (stored config)"), path, cfg_file)
        return cfg
    if stored is None:
        if read_description(path)["rs3d"]:
            logger.warning(
                "%s holds no config; using the defaults and the overrides (give --cfg with the "
                "run's config if the model does not fit)",
                path,
            )
        return load_config(None, opts, splits=splits)
    base = {k: v for k, v in stored.items() if k not in MACHINE_KEYS}
    return load_config(None, opts, splits=splits, base=base, base_name=f"{path} (stored config)")
