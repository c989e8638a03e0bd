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
import math
import os
from typing import Iterable, Optional, Sequence

import yaml
from fvcore.common.config import CfgNode

from ..data.decode import BACKENDS
from ..data.temporal import VIEW_POSITIONS
from ..data.transforms import JITTER_MODES
from ..errors import ConfigError  # noqa: F401  (re-exported)
from ..file_io import atomic_write_text
from ..file_io import join as io_join
from ..models import list_models
from ..models.resnet3d import DROP_PATH_MODES, INITS, STEM_TYPES
from .defaults import NONE_DEFAULT_TYPES, REMOVED_KEYS, get_cfg

logger = logging.getLogger(__name__)

# Keys whose value must be one of a few strings that the training and test code define. The
# config may not import the engine (docs/architecture.md), so these are written here and
# tests/config/test_load.py checks them against the engine's constants.
ENGINE_CHOICES = {
    "SOLVER.OPTIMIZING_METHOD": ("sgd", "adamw", "lamb"),  # rs3d.engine.optim.OPTIMIZERS
    "TRAIN.LOSS": ("ce", "bce"),  # rs3d.engine.losses.LOSSES
    "TRAIN.AMP_DTYPE": ("bfloat16", "float16", "float32"),  # rs3d.engine.precision.AMP_DTYPES
    "TEST.ENSEMBLE_METHOD": ("mean", "sum", "max"),  # rs3d.engine.metrics.ENSEMBLE_METHODS
    "SOLVER.RUN_LENGTH": ("epochs", "examples"),  # rs3d.engine.schedule.RUN_LENGTHS
    "SOLVER.MOMENTUM_FORM": ("pytorch", "keras"),  # rs3d.engine.optim.MOMENTUM_FORMS
    "TRAIN.EMA_FORM": ("pytorch", "tf"),  # rs3d.engine.ema.EMA_FORMS
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


# The interval each number must lie in ("[" / "]" closed, "(" / ")" open; None also allowed where
# the key defaults to None). tests/config/test_load.py checks every numeric key has a range here or
# a reason in ANY_NUMBER, so a new key cannot skip validation.
RANGES = {
    "DIST_TIMEOUT_S": "(0, inf)",
    "LOG_PERIOD": "(0, inf)",
    "MODEL.NUM_CLASSES": "[1, inf)",
    "MODEL.DROPOUT_RATE": "[0, 1)",
    "MODEL.DROP_PATH_RATE": "[0, 1)",
    "MODEL.SE_RATIO": "[0, inf)",
    "MODEL.WIDTH_MULTIPLIER": "(0, inf)",
    "BN.EPSILON": "(0, inf)",
    "BN.MOMENTUM": "[0, 1]",
    "DATA.NUM_FRAMES": "(0, inf)",
    "DATA.SAMPLING_RATE": "(0, inf)",
    "DATA.TRAIN_CROP_SIZE": "(0, inf)",
    "DATA.TEST_CROP_SIZE": "(0, inf)",
    "DATA.TARGET_FPS": "(0, inf)",
    "DATA.FRAME_FOLDER_FPS": "(0, inf)",
    "DATA.STD": "(0, inf)",
    "DATA.MAX_RETRIES": "[0, inf)",
    "DATA.DECODE_TIMEOUT_S": "[0, inf)",
    "DATA.DECODE_THREADS": "[0, inf)",
    "DATA.TRAIN_CLIPS_PER_VIDEO": "(0, inf)",
    "DATA.TRAIN_JITTER_AREA": "(0, 1]",
    "DATA.TRAIN_JITTER_ASPECT": "(0, inf)",
    "DATA.TRAIN_JITTER_SCALES": "(0, inf)",
    "DATA_LOADER.NUM_WORKERS": "[0, inf)",
    "DATA_LOADER.PREFETCH_FACTOR": "[1, inf)",
    "SOLVER.BASE_LR": "[0, inf)",
    "SOLVER.REFERENCE_BATCH_SIZE": "(0, inf)",
    "SOLVER.COSINE_END_LR": "[0, inf)",
    "SOLVER.WARMUP_EPOCHS": "[0, inf)",
    "SOLVER.WARMUP_START_LR": "[0, inf)",
    "SOLVER.MAX_EPOCH": "(0, inf)",
    "SOLVER.MOMENTUM": "[0, 1)",
    "SOLVER.WEIGHT_DECAY": "[0, inf)",
    "SOLVER.HEAD_LR_MULT": "[0, inf)",
    "SOLVER.LAYER_DECAY": "(0, 1]",
    "TRAIN.BATCH_SIZE": "(0, inf)",
    "TRAIN.MICRO_BATCH_SIZE": "(0, inf)",
    "TRAIN.LABEL_SMOOTHING": "[0, 1)",
    "TRAIN.EMA_DECAY": "[0, 1)",
    "TRAIN.CLIP_GRAD_NORM": "(0, inf)",
    "TRAIN.EVAL_PERIOD": "[0, inf)",
    "TRAIN.CHECKPOINT_PERIOD": "(0, inf)",
    "TRAIN.CHECKPOINT_PERIOD_ITERS": "[0, inf)",
    "TRAIN.CHECKPOINT_KEEP": "(0, inf)",
    "TRAIN.FREEZE_STAGES": "[0, 5]",
    "TEST.BATCH_SIZE": "(0, inf)",
    "TEST.NUM_ENSEMBLE_VIEWS": "(0, inf)",
    "TEST.NUM_SPATIAL_CROPS": "(0, inf)",
    "AUG.RAND_AUGMENT_NUM_OPS": "[0, inf)",
    "AUG.RAND_AUGMENT_MAGNITUDE": "[0, inf)",
    "MIXUP.ALPHA": "[0, inf)",
    "MIXUP.CUTMIX_ALPHA": "[0, inf)",
    "MIXUP.PROB": "[0, 1]",
    "MIXUP.SWITCH_PROB": "[0, 1]",
    "TRAIN.BCE_TARGET_THRESHOLD": "[0, 1]",
}
# Numeric keys any finite value of which works, and why.
ANY_NUMBER = {
    "RNG_SEED": "any integer seeds the generators",
    "DATA.MEAN": "subtracted from pixels in [0, 1]; any shift is valid",
}
# Keys holding a fixed number of values.
LENGTHS = {
    "DATA.MEAN": 3,
    "DATA.STD": 3,
    "DATA.TRAIN_JITTER_AREA": 2,
    "DATA.TRAIN_JITTER_ASPECT": 2,
    "DATA.TRAIN_JITTER_SCALES": 2,
}
# [low, high] pairs: low <= high (a random draw between them).
ORDERED_PAIRS = ("DATA.TRAIN_JITTER_AREA", "DATA.TRAIN_JITTER_ASPECT", "DATA.TRAIN_JITTER_SCALES")


def _interval(spec: str):
    """ "[0, 1)" -> (0.0, 1.0, low closed, high closed)."""
    low, high = (float(v) for v in spec[1:-1].split(","))
    return low, high, spec[0] == "[", spec[-1] == "]"


def _outside(v, spec: str) -> bool:
    low, high, low_closed, high_closed = _interval(spec)
    return v < low or (v == low and not low_closed) or v > high or (v == high and not high_closed)


def _range_words(spec: str) -> str:
    low, high, low_closed, high_closed = _interval(spec)
    lo = f"{'>=' if low_closed else '>'} {low:g}"
    if high == float("inf"):
        return f"be {lo}"
    if low_closed and not high_closed:
        return f"be in [{low:g}, {high:g})"
    return f"be in {spec}"


def load_config(
    args_or_path=None,
    opts: Optional[Sequence[str]] = None,
    *,
    splits: Optional[Iterable[str]] = None,
    base: Optional[dict] = None,
    base_name: str = "stored config",
) -> CfgNode:
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
            logger.warning(
                "%s: keys this rs3d version does not know were ignored: %s",
                base_name,
                ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""),
            )
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
    data = _load_with_base(path, ())
    data.pop("_BASE_", None)
    return data


def _load_with_base(path: str, chain: tuple) -> dict:
    """The mapping of ``path`` merged over its ``_BASE_`` file(s) (fvcore's rules: a relative base is
    relative to the file naming it; later bases and the file itself win). ``chain``: the files
    that include this one, so a cycle is named in one line instead of recursing until Python stops."""
    real = os.path.realpath(os.path.expanduser(path))
    if real in chain:
        cycle = " -> ".join([*chain[chain.index(real) :], real])
        raise ConfigError(f"{chain[0]}: _BASE_ files include each other: {cycle}")
    if not os.path.isfile(real):
        raise ConfigError(f"{chain[-1] if chain else path}: _BASE_ file not found: {path}")
    try:
        with open(real) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of KEY: value, got {type(data).__name__}")
    bases = data.pop("_BASE_", None)
    if bases is None:
        return data
    merged: dict = {}
    for base in bases if isinstance(bases, list) else [bases]:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: _BASE_ must name a file (or a list of files); got {base!r}")
        base = os.path.expanduser(base)
        if not os.path.isabs(base):
            base = os.path.join(os.path.dirname(path), base)
        _merge_into(_load_with_base(base, (*chain, real)), merged, path)
    _merge_into(data, merged, path)
    return merged


def _merge_into(a: dict, b: dict, where: str, prefix: str = "") -> None:
    """Values of ``a`` written over ``b``, section by section."""
    for k, v in a.items():
        if isinstance(v, dict) and k in b:
            if not isinstance(b[k], dict):
                raise ConfigError(f"{where}: {prefix}{k} is a section here but a value in its _BASE_")
            _merge_into(v, b[k], where, f"{prefix}{k}.")
        else:
            b[k] = v


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
            if not math.isfinite(value):
                raise ConfigError(f"{where}: {key} must be a finite number; got {value!r}")
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
            raise ConfigError(
                f"{key} must be one of {', '.join(repr(c) for c in allowed)}{_unset_hint(key)}; got {v!r}"
            )
    for key, n in LENGTHS.items():
        v = _get(cfg, key)
        if len(v) != n:
            raise ConfigError(f"{key} must hold {n} values; got {list(v)!r}")
    for key, spec in RANGES.items():
        v = _get(cfg, key)
        for x in v if isinstance(v, (list, tuple)) else [v]:
            if x is not None and _outside(x, spec):
                shown = list(v) if isinstance(v, (list, tuple)) else v
                raise ConfigError(f"{key} must {_range_words(spec)}{_unset_hint(key)}; got {shown!r}")
    for key in ORDERED_PAIRS:
        low, high = _get(cfg, key)
        if low > high:
            raise ConfigError(f"{key} is [low, high] of a random draw: low must be <= high; got {[low, high]!r}")
    if cfg.MIXUP.ENABLE and cfg.MIXUP.ALPHA == 0 and cfg.MIXUP.CUTMIX_ALPHA == 0:
        raise ConfigError("MIXUP.ENABLE is set but MIXUP.ALPHA and MIXUP.CUTMIX_ALPHA are both 0")
    if cfg.TRAIN.BCE_TARGET_THRESHOLD is not None and cfg.TRAIN.LOSS != "bce" and not cfg.DATA.MULTI_LABEL:
        raise ConfigError("TRAIN.BCE_TARGET_THRESHOLD is set but TRAIN.LOSS is not 'bce'")
    if cfg.SOLVER.MOMENTUM_FORM == "keras" and cfg.SOLVER.OPTIMIZING_METHOD != "sgd":
        raise ConfigError(
            f"SOLVER.MOMENTUM_FORM keras is a form of SGD; SOLVER.OPTIMIZING_METHOD is "
            f"{cfg.SOLVER.OPTIMIZING_METHOD!r} (set MOMENTUM_FORM pytorch)"
        )
    if cfg.MODEL.ARCH not in list_models():
        raise ConfigError(
            f"MODEL.ARCH {cfg.MODEL.ARCH!r} is not a registered model; choose from {', '.join(list_models())}"
        )


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
    where the backend allows, and ``output_dir`` may be an object store (see ``rs3d.file_io``)."""
    return atomic_write_text(io_join(output_dir, "config.yaml"), cfg.dump())
