"""Command line -> validated, frozen config.

Every way a config can be wrong (unknown key, wrong type, bad choice, missing data) raises
``ConfigError`` with one line that names the key or file, before any work starts; the tools print
it as ``error: ...`` and exit with status 2. fvcore's own merge is not used for values because it
rejects ``SOLVER.BASE_LR 1`` (int for float) and reports mistakes as assertion tracebacks.
"""
from __future__ import annotations

import argparse
import ast
import logging
import os
from typing import Iterable, Optional, Sequence

import yaml
from fvcore.common.config import CfgNode

from ..data.decode import BACKENDS
from ..data.temporal import VIEW_POSITIONS
from ..data.transforms import JITTER_MODES
from ..errors import ConfigError  # noqa: F401  (re-exported)
from ..io import atomic_write_text
from ..io import join as io_join
from ..models import list_models
from ..models.resnet3d import DROP_PATH_MODES, INITS, STEM_TYPES
from .defaults import NONE_DEFAULT_TYPES, REMOVED_KEYS, get_cfg

logger = logging.getLogger(__name__)

# Keys whose value must be one of a few strings that the training and test code define. The
# config may not import the engine (docs/architecture.md), so these are written here and
# tests/config/test_load.py checks them against the engine's constants.
ENGINE_CHOICES = {
    "SOLVER.OPTIMIZING_METHOD": ("sgd", "adamw"),                # rs3d.engine.optim.OPTIMIZERS
    "TRAIN.AMP_DTYPE": ("bfloat16", "float16", "float32"),       # rs3d.engine.precision.AMP_DTYPES
    "TEST.ENSEMBLE_METHOD": ("mean", "sum", "max"),              # rs3d.engine.metrics.ENSEMBLE_METHODS
    "SOLVER.RUN_LENGTH": ("epochs", "examples"),                 # rs3d.engine.schedule.RUN_LENGTHS
    "SOLVER.MOMENTUM_FORM": ("pytorch", "keras"),                # rs3d.engine.optim.MOMENTUM_FORMS
    "TRAIN.EMA_FORM": ("pytorch", "tf"),                         # rs3d.engine.ema.EMA_FORMS
}


def choices() -> dict:
    """Key -> the values it may take, from the modules that act on them (a key whose default is
    None may also be None)."""
    return {
        "MODEL.DROP_PATH_MODE": DROP_PATH_MODES,
        "MODEL.STEM_TYPE": STEM_TYPES,
        "DATA.DECODING_BACKEND": BACKENDS,
        "DATA.TRAIN_JITTER_MODE": JITTER_MODES,
        "MODEL.INIT": INITS,
        "TEST.VIEW_POSITIONS": VIEW_POSITIONS,
        # No constant in rs3d.models.convert yet.
        "TRAIN.CHECKPOINT_INFLATE_MODE": ("center", "mean"),
        **ENGINE_CHOICES,
    }


# Keys that must be > 0 (or >= 0) when set.
POSITIVE = ("TRAIN.BATCH_SIZE", "SOLVER.MAX_EPOCH", "SOLVER.REFERENCE_BATCH_SIZE", "DATA.NUM_FRAMES",
            "DATA.SAMPLING_RATE", "DATA.TRAIN_CROP_SIZE", "DATA.TEST_CROP_SIZE", "TEST.BATCH_SIZE",
            "TEST.NUM_ENSEMBLE_VIEWS", "TEST.NUM_SPATIAL_CROPS", "TRAIN.CHECKPOINT_PERIOD",
            "TRAIN.CHECKPOINT_KEEP", "LOG_PERIOD", "DIST_TIMEOUT_S", "TRAIN.MICRO_BATCH_SIZE",
            "TRAIN.CLIP_GRAD_NORM", "MODEL.WIDTH_MULTIPLIER", "DATA.TRAIN_CLIPS_PER_VIDEO")
NON_NEGATIVE = ("TRAIN.EVAL_PERIOD", "TRAIN.CHECKPOINT_PERIOD_ITERS",
                "SOLVER.BASE_LR", "SOLVER.WEIGHT_DECAY", "SOLVER.WARMUP_EPOCHS",
                "MODEL.DROPOUT_RATE", "MODEL.DROP_PATH_RATE", "MODEL.SE_RATIO", "DATA_LOADER.NUM_WORKERS",
                "TRAIN.LABEL_SMOOTHING")


def load_config(args_or_path=None, opts: Optional[Sequence[str]] = None, *,
                splits: Optional[Iterable[str]] = None, base: Optional[dict] = None,
                base_name: str = "stored config") -> CfgNode:
    """Defaults <- ``base`` <- YAML file (with ``_BASE_``) <- ``KEY VALUE`` overrides, validated and frozen.

    ``args_or_path``: a YAML path, a namespace with ``cfg_file`` and ``opts`` (what
    ``rs3d.cli.args.parse_command`` gives), or None (defaults only).
    ``splits``: CSV names (e.g. ``("train", "val")``) that must exist under
    ``DATA.PATH_TO_DATA_DIR``; None skips the data check (used to inspect configs without data).
    ``base``: a resolved config as a mapping (a checkpoint's own, ``base_name`` in messages); keys
    this version no longer knows are skipped with a warning, not refused.
    """
    if isinstance(args_or_path, argparse.Namespace):
        path = args_or_path.cfg_file
        opts = list(getattr(args_or_path, "opts", []) or []) + list(opts or [])
    else:
        path = os.fspath(args_or_path) if args_or_path else ""
        opts = list(opts or [])
    cfg = get_cfg()
    if base:
        skipped = _merge_known(cfg, base, where=base_name)
        if skipped:
            logger.warning("%s: keys this rs3d version does not know were ignored: %s", base_name,
                           ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""))
    if path:
        _merge_dict(cfg, _read_yaml(path), where=path)
    _merge_opts(cfg, opts)
    validate(cfg)
    if splits is not None:
        check_data_dir(cfg, splits)
    cfg.freeze()
    return cfg


def _read_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        data = CfgNode.load_yaml_with_base(path, allow_unsafe=False)
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: _BASE_ file not found: {e.filename}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of KEY: value, got {type(data).__name__}")
    data.pop("_BASE_", None)
    return data


def _unknown(key: str, where: str) -> ConfigError:
    if key in REMOVED_KEYS:
        return ConfigError(f"{where}: config key {key} was removed: {REMOVED_KEYS[key]}; delete it")
    return ConfigError(f"{where}: unknown config key {key}")


def _merge_dict(cfg: CfgNode, data: dict, where: str, prefix: str = "") -> None:
    for k, v in data.items():
        full = prefix + str(k)
        if k not in cfg:
            raise _unknown(full, where)
        if isinstance(cfg[k], CfgNode):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: {full} is a section; expected a mapping, got {v!r}")
            _merge_dict(cfg[k], v, where, full + ".")
        else:
            cfg[k] = _coerce(cfg[k], v, full, where)


def _merge_known(cfg: CfgNode, data: dict, where: str, prefix: str = "") -> list:
    """Like :func:`_merge_dict`, but keys ``cfg`` does not have are skipped; returns their names."""
    skipped = []
    for k, v in data.items():
        full = prefix + str(k)
        if k not in cfg:
            skipped.append(full)
        elif isinstance(cfg[k], CfgNode):
            if isinstance(v, dict):
                skipped += _merge_known(cfg[k], v, where, full + ".")
            else:
                skipped.append(full)
        else:
            cfg[k] = _coerce(cfg[k], v, full, where)
    return skipped


def _merge_opts(cfg: CfgNode, opts: Sequence[str]) -> None:
    if len(opts) % 2:
        raise ConfigError(f"overrides must be KEY VALUE pairs; {opts[-1]!r} has no value")
    for key, raw in zip(opts[0::2], opts[1::2]):
        node, parts = cfg, key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, CfgNode) or part not in node:
                raise _unknown(key, "command line")
            if i < len(parts) - 1:
                node = node[part]
        if isinstance(node[parts[-1]], CfgNode):
            raise ConfigError(f"{key} is a section, not a key (command line)")
        node[parts[-1]] = _coerce(node[parts[-1]], _decode(raw), key, "command line")


def _decode(raw: str):
    """'0.1' -> 0.1, '[1, 2]' -> [1, 2], 'True' -> True, 'None' / 'null' -> None, 'abc' -> 'abc'
    (as yacs/fvcore do, plus YAML's null)."""
    if not isinstance(raw, str):
        return raw
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if raw.lower() == "null":
            return None
        return raw


def _coerce(default, value, key: str, where: str):
    """``value`` converted to the type of ``default``, or a ConfigError naming ``key``.

    A key of ``NONE_DEFAULT_TYPES`` takes None (unset) or a value of its declared type."""
    if key in NONE_DEFAULT_TYPES:
        if value is None:
            return None
        want = NONE_DEFAULT_TYPES[key]
        try:
            return _coerce_like(want(), value, key, where)
        except ConfigError:
            raise ConfigError(f"{where}: {key} expects {want.__name__} or null, got {value!r}") from None
    return _coerce_like(default, value, key, where)


def _coerce_like(default, value, key: str, where: str):
    want = type(default)
    bad = ConfigError(f"{where}: {key} expects {want.__name__} (like {default!r}), got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise bad
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise bad
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise bad
        if default and len(value) == len(default):
            return [_coerce_like(d, v, key, where) for d, v in zip(default, value)]
        if default:
            return [_coerce_like(default[0], v, key, where) for v in value]
        return list(value)
    raise bad


def _get(cfg: CfgNode, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _unset_hint(key: str) -> str:
    return ", or null to leave it unset" if key in NONE_DEFAULT_TYPES else ""


def validate(cfg: CfgNode) -> None:
    """Values that have the right type but cannot work."""
    for key, allowed in choices().items():
        v = _get(cfg, key)
        if v not in allowed and not (v is None and key in NONE_DEFAULT_TYPES):
            raise ConfigError(f"{key} must be one of {', '.join(repr(c) for c in allowed)}"
                              f"{_unset_hint(key)}; got {v!r}")
    for key in POSITIVE:
        v = _get(cfg, key)
        if v is not None and v <= 0:
            raise ConfigError(f"{key} must be > 0{_unset_hint(key)}; got {v!r}")
    for key in NON_NEGATIVE:
        v = _get(cfg, key)
        if v is not None and v < 0:
            raise ConfigError(f"{key} must be >= 0{_unset_hint(key)}; got {v!r}")
    if not 0 <= cfg.TRAIN.EMA_DECAY < 1:
        raise ConfigError(f"TRAIN.EMA_DECAY must be in [0, 1); got {cfg.TRAIN.EMA_DECAY!r}")
    if cfg.SOLVER.MOMENTUM_FORM == "keras" and cfg.SOLVER.OPTIMIZING_METHOD != "sgd":
        raise ConfigError(f"SOLVER.MOMENTUM_FORM keras is a form of SGD; SOLVER.OPTIMIZING_METHOD is "
                          f"{cfg.SOLVER.OPTIMIZING_METHOD!r} (set MOMENTUM_FORM pytorch)")
    if not 0 <= cfg.BN.MOMENTUM <= 1:
        raise ConfigError(f"BN.MOMENTUM must be in [0, 1] (PyTorch convention: 1.0 = TF's 0.0); "
                          f"got {cfg.BN.MOMENTUM!r}")
    if len(cfg.DATA.MEAN) != 3 or len(cfg.DATA.STD) != 3 or min(cfg.DATA.STD) <= 0:
        raise ConfigError("DATA.MEAN and DATA.STD must hold 3 values each, STD > 0")
    if cfg.MODEL.NUM_CLASSES < 1:
        raise ConfigError(f"MODEL.NUM_CLASSES must be >= 1; got {cfg.MODEL.NUM_CLASSES}")
    if cfg.MODEL.ARCH not in list_models():
        raise ConfigError(f"MODEL.ARCH {cfg.MODEL.ARCH!r} is not a registered model; "
                          f"choose from {', '.join(list_models())}")


def missing_data(cfg: CfgNode, splits: Iterable[str]) -> list:
    """Every reason DATA.PATH_TO_DATA_DIR cannot serve ``splits`` (empty: it can), all at once."""
    d = cfg.DATA.PATH_TO_DATA_DIR
    if not d:
        return ["DATA.PATH_TO_DATA_DIR is not set (the folder with train.csv, val.csv, test.csv)"]
    if not os.path.isdir(d):
        return [f"DATA.PATH_TO_DATA_DIR {d} does not exist or is not a directory"]
    missing = [f"{split}.csv" for split in splits if not os.path.isfile(os.path.join(d, f"{split}.csv"))]
    return [f"DATA.PATH_TO_DATA_DIR {d} has no {' or '.join(missing)}"] if missing else []


def check_data_dir(cfg: CfgNode, splits: Iterable[str]) -> None:
    """DATA.PATH_TO_DATA_DIR exists and holds ``{split}.csv`` for every split asked for."""
    problems = missing_data(cfg, splits)
    if problems:
        raise ConfigError("; ".join(problems))


def save_config(cfg: CfgNode, output_dir: str) -> str:
    """Write the merged config to ``output_dir/config.yaml`` (callers do it on rank 0 only); atomic
    where the backend allows, and ``output_dir`` may be an object store (see ``rs3d.io``)."""
    return atomic_write_text(io_join(output_dir, "config.yaml"), cfg.dump())
