"""A grid of config values (or a list of configs) -> named sweep points, all checked before training.

``--grid depth=26,50 frames=8,16 MODEL.WIDTH_MULTIPLIER=0.25,0.5`` is the cartesian product of its
axes, the first axis varying slowest. An axis is any config key or one of the short names below.
Every point's config is loaded and validated here (unknown key, value of the wrong type, a model
that does not exist), so a mistake stops the sweep before its first point trains.

Points are named like the paper's figures, ``depth-frames-res`` (e.g. ``50-32-224``), followed by
the other axes that vary (``50-32-224_w0.5``); the name is also the point's folder.

Seeds: ``--seeds N`` (:func:`with_seeds`) or a grid axis ``RNG_SEED=0,1,2`` trains every point once
per seed (``50-32-224_seed1``); the points of one setting share a ``seed_group`` (the name without
the seed) so the report gives the mean, standard deviation and range of top-1 over seeds.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..config import check_data_dir, get_cfg, load_config
from ..errors import ConfigError
from ..models import build_model
from .rules import apply_rules, config_depth, config_width, scale_resolution

# Short axis names -> what they set.
ALIASES = {
    "depth": "MODEL.ARCH with the depth in its name replaced (MODEL.DEPTH where the config has one)",
    "width": "MODEL.WIDTH_MULTIPLIER",
    "frames": "DATA.NUM_FRAMES",
    "stride": "DATA.SAMPLING_RATE",
    "res": "DATA.TRAIN_CROP_SIZE, with DATA.TEST_CROP_SIZE and the jitter scales kept in proportion",
    "train_res": "DATA.TRAIN_CROP_SIZE",
    "test_res": "DATA.TEST_CROP_SIZE",
}
_ALIAS_KEY = {
    "width": "MODEL.WIDTH_MULTIPLIER",
    "frames": "DATA.NUM_FRAMES",
    "stride": "DATA.SAMPLING_RATE",
    "train_res": "DATA.TRAIN_CROP_SIZE",
    "test_res": "DATA.TEST_CROP_SIZE",
}
# Axes the ``depth-frames-res`` label already shows; the others go into the point name.
_IN_LABEL = {"depth", "frames", "res", "train_res", "MODEL.DEPTH", "DATA.NUM_FRAMES", "DATA.TRAIN_CROP_SIZE"}
_NAME_PREFIX = {
    "width": "w",
    "stride": "s",
    "test_res": "t",
    "MODEL.WIDTH_MULTIPLIER": "w",
    "DATA.SAMPLING_RATE": "s",
    "DATA.TEST_CROP_SIZE": "t",
    "RNG_SEED": "seed",
}
SEED_KEY = "RNG_SEED"
_PER_POINT_KEYS = ("OUTPUT_DIR",)  # set by the sweep for every point


@dataclass(frozen=True)
class Axis:
    """One grid axis: a config key or short name, and its values as written on the command line."""

    name: str
    values: Tuple[str, ...]


@dataclass
class Point:
    """One training run of a sweep: a config file plus ``KEY VALUE`` overrides (OUTPUT_DIR excluded)."""

    name: str  # folder name under the sweep's output folder
    label: str  # depth-frames-res, as in the paper's figures
    cfg_file: str
    opts: List[str]
    axes: Dict[str, str] = field(default_factory=dict)  # grid axis -> value, as written
    rules: Dict[str, str] = field(default_factory=dict)  # keys a scaling rule set
    info: Dict[str, object] = field(default_factory=dict)  # arch, depth, width, frames, ... (for tables)

    def load(self, output_dir: Optional[str] = None):
        """The point's validated config (with OUTPUT_DIR set when given)."""
        extra = ["OUTPUT_DIR", output_dir] if output_dir else []
        return load_config(self.cfg_file, list(self.opts) + extra)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Point":
        return cls(**d)


# ----------------------------------------------------------------------------- parsing
def split_values(text: str) -> List[str]:
    """``"1,2,[3,4]"`` -> ``["1", "2", "[3,4]"]``: commas inside brackets stay with their value."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _is_config_key(key: str) -> bool:
    node = get_cfg()
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            return False
        node = node[part]
    return not hasattr(node, "keys")


def parse_axis(text: str) -> Axis:
    """``"KEY=V1,V2"`` -> Axis; the key must be a config key or a short name (``ALIASES``)."""
    key, sep, rhs = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,... (e.g. MODEL.WIDTH_MULTIPLIER=0.25,0.5)")
    values = split_values(rhs)
    if not rhs.strip() or any(v == "" for v in values):
        raise ConfigError(f"--grid {text!r}: an empty value; expected KEY=V1,V2,...")
    if key in _PER_POINT_KEYS:
        raise ConfigError(f"--grid {key}: the sweep sets {key} for every point (use --out)")
    if key not in ALIASES and not _is_config_key(key):
        raise ConfigError(f"--grid: unknown config key {key} (short names: {', '.join(ALIASES)})")
    if len(set(values)) != len(values):
        raise ConfigError(f"--grid {key}: a value is listed twice in {rhs!r}")
    return Axis(key, tuple(values))


def _int_value(axis: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--grid {axis}={value}: expects an integer") from None


def _axis_opts(axis: str, value: str, base) -> Dict[str, object]:
    """The config keys one axis value sets (``res`` and ``depth`` set more than one key's worth)."""
    if axis == "depth":
        depth = _int_value(axis, value)
        if "DEPTH" in base.MODEL:
            return {"MODEL.DEPTH": depth}
        arch = base.MODEL.ARCH
        m = re.search(r"\d+(?=\D*$)", arch)
        if m is None:
            raise ConfigError(
                f"--grid depth: MODEL.ARCH {arch!r} has no depth in its name; use --grid MODEL.ARCH=NAME,NAME"
            )
        return {"MODEL.ARCH": arch[: m.start()] + str(depth) + arch[m.end() :]}
    if axis == "res":
        return scale_resolution(base, _int_value(axis, value))
    return {_ALIAS_KEY.get(axis, axis): value}


def _flat(values: Dict[str, object]) -> List[str]:
    out: List[str] = []
    for k, v in values.items():
        out += [k, v if isinstance(v, str) else repr(v) if isinstance(v, (list, tuple)) else str(v)]
    return out


def _load(cfg_file: str, opts: Sequence[str], where: str):
    try:
        return load_config(cfg_file, list(opts))
    except ConfigError as e:
        msg = str(e).replace("command line: ", "").replace(" (command line)", "")
        raise ConfigError(f"{where}: {msg}") from None


def _check_overrides(overrides: Sequence[str]) -> None:
    for key in overrides[0::2]:
        if key in _PER_POINT_KEYS:
            raise ConfigError(f"{key}: the sweep sets it for every point (use --out)")


def point_info(cfg) -> Dict[str, object]:
    """What tables and plots show of a point's config."""
    return dict(
        arch=cfg.MODEL.ARCH,
        depth=config_depth(cfg),
        width=config_width(cfg),
        frames=cfg.DATA.NUM_FRAMES,
        sampling=cfg.DATA.SAMPLING_RATE,
        train_res=cfg.DATA.TRAIN_CROP_SIZE,
        test_res=cfg.DATA.TEST_CROP_SIZE,
        batch=cfg.TRAIN.BATCH_SIZE,
        epochs=cfg.SOLVER.MAX_EPOCH,
        num_classes=cfg.MODEL.NUM_CLASSES,
    )


def label_of(info: Dict[str, object]) -> str:
    return f"{info['depth']}-{info['frames']}-{info['train_res']}"


def _token(axis: str, value: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9.+-]+", "-", value).strip("-") or "x"
    prefix = _NAME_PREFIX.get(axis)
    if prefix is None:
        prefix = axis.split(".")[-1].lower() + "="
    return prefix + clean


def _check_unique(points: Sequence[Point], what: str) -> None:
    seen: Dict[str, Point] = {}
    for p in points:
        if p.name in seen:
            raise ConfigError(
                f"{what}: two points have the same name {p.name!r} "
                f"({seen[p.name].axes or seen[p.name].cfg_file} and {p.axes or p.cfg_file})"
            )
        seen[p.name] = p


# ----------------------------------------------------------------------------- expansion
def _with_rules(cfg_file: str, cfg, opts: Sequence[str], rules: Sequence[str], explicit: set, where: str):
    """``(cfg, opts, applied)`` after the scaling ``rules`` (values in ``explicit`` keys win):
    the config reloaded with the rules' overrides added to a copy of ``opts``; ``applied``:
    ``{key: value as an override}``. A rule that cannot apply is one ConfigError naming ``where``."""
    try:
        ruled = apply_rules(rules, cfg, explicit)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    opts = list(opts) + _flat(ruled)
    if ruled:
        cfg = _load(cfg_file, opts, f"{where} with --rules {','.join(rules)}")
    return cfg, opts, {k: _flat({k: v})[1] for k, v in ruled.items()}


def expand_grid(
    cfg_file: str, axes: Sequence[Axis], overrides: Sequence[str] = (), rules: Sequence[str] = ()
) -> List[Point]:
    """The points of the grid ``axes`` over ``cfg_file`` + ``overrides``, each config validated."""
    overrides = list(overrides)
    _check_overrides(overrides)
    base = load_config(cfg_file, overrides)
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ConfigError(f"--grid: an axis is given twice ({', '.join(names)})")
    varying = [a.name for a in axes if len(a.values) > 1 and a.name not in _IN_LABEL]
    points: List[Point] = []
    for combo in itertools.product(*[a.values for a in axes]):
        assigned = dict(zip(names, combo))
        where = "--grid " + " ".join(f"{k}={v}" for k, v in assigned.items())
        axis_values: Dict[str, object] = {}
        for axis, value in assigned.items():
            axis_values.update(_axis_opts(axis, value, base))
        opts = overrides + _flat(axis_values)
        cfg = _load(cfg_file, opts, where)
        cfg, opts, ruled = _with_rules(cfg_file, cfg, opts, rules, set(overrides[0::2]) | set(axis_values), where)
        info = point_info(cfg)
        label = label_of(info)
        name = "_".join([label] + [_token(a, assigned[a]) for a in varying])
        if SEED_KEY in assigned:
            info.update(
                seed=int(cfg.RNG_SEED),
                seed_group="_".join([label] + [_token(a, assigned[a]) for a in varying if a != SEED_KEY]),
            )
        points.append(
            Point(
                name=name,
                label=label,
                cfg_file=cfg_file,
                opts=opts,
                axes=assigned,
                rules=ruled,
                info=info,
            )
        )
    _check_unique(points, "--grid")
    return points


def points_from_configs(
    cfg_files: Sequence[str], overrides: Sequence[str] = (), rules: Sequence[str] = ()
) -> List[Point]:
    """One point per config file (e.g. the additive study ``configs/ablation/*.yaml``), in order."""
    overrides = list(overrides)
    _check_overrides(overrides)
    stems = [Path(f).stem for f in cfg_files]
    points: List[Point] = []
    for f, stem in zip(cfg_files, stems):
        cfg, opts, ruled = _with_rules(f, load_config(f, overrides), overrides, rules, set(overrides[0::2]), f)
        info = point_info(cfg)
        name = stem if stems.count(stem) == 1 else f"{Path(f).parent.name}_{stem}"
        points.append(
            Point(
                name=name,
                label=label_of(info),
                cfg_file=f,
                opts=opts,
                rules=ruled,
                info=info,
            )
        )
    _check_unique(points, "--configs")
    return points


def with_seeds(points: Sequence[Point], seeds: int) -> List[Point]:
    """Every point trained ``seeds`` times, with RNG_SEED = its config's seed (overrides included)
    + 0 .. seeds-1, so the first run is the point as configured; the runs of a point share its name as
    ``seed_group``. Only the training's randomness changes: the data set is the same files."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: expected a number of seeds >= 1")
    out: List[Point] = []
    for p in points:
        if SEED_KEY in p.axes:
            raise ConfigError(f"--seeds: the grid already has a {SEED_KEY} axis; give the seeds one way")
        base = int(p.load().RNG_SEED)
        for seed in range(base, base + seeds):
            out.append(
                Point(
                    name=f"{p.name}_seed{seed}",
                    label=p.label,
                    cfg_file=p.cfg_file,
                    opts=list(p.opts) + [SEED_KEY, str(seed)],
                    axes={**p.axes, SEED_KEY: str(seed)},
                    rules=dict(p.rules),
                    info={**p.info, "seed": seed, "seed_group": p.name},
                )
            )
    _check_unique(out, "--seeds")
    return out


# ----------------------------------------------------------------------------- checks
def check_models(points: Iterable[Point]) -> None:
    """Build every point's model on the meta device (no memory, no time): a bad width or depth
    stops the sweep here instead of failing one point after others have trained."""
    for p in points:
        cfg = p.load()
        try:
            with torch.device("meta"):
                build_model(cfg)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"point {p.name}: the model cannot be built: {e}") from None


def check_data(points: Iterable[Point]) -> None:
    """Every point's dataset folder holds the CSVs its training and test read."""
    for p in points:
        cfg = p.load()
        splits = ["train", cfg.TEST.SPLIT] + (["val"] if cfg.TRAIN.EVAL_PERIOD > 0 else [])
        try:
            check_data_dir(cfg, splits)
        except ConfigError as e:
            raise ConfigError(f"point {p.name}: {e}") from None
