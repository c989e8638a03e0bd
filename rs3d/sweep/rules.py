"""The paper's scaling rules, as options a sweep may switch on (``--rules NAME,NAME``).

Each rule reads a point's config (after its grid values) and returns the config values the paper
would use at that scale. A key the user set explicitly (a grid axis or a ``KEY VALUE`` override)
always wins over a rule. The rules come from the paper's ImageNet experiments; no per-scale video
values are published (the released 3D RS-50 uses dropout 0.5 and stochastic depth 0.1), so they are
off unless asked for.

    dropout-per-width     MODEL.DROPOUT_RATE from the width multiplier, paper Table 10:
                          0.25 -> 0.0, 0.5 -> 0.1, 1.0 -> 0.25, 1.5 -> 0.6, 2.0 -> 0.75.
    drop-path-per-depth   MODEL.DROP_PATH_RATE from the depth, paper Table 8: 0.0 up to depth 152,
                          0.1 from depth 200; and none at width 0.25 (appendix F).
    slow-resolution       strategy #2, "increase resolution more slowly than previously recommended":
                          the crop sizes grow with depth as the resolutions of Table 8 do (50: 160,
                          101: 160, 152: 192, 200/270/350: 256, 420: 320), relative to the config's
                          own resolution, which is taken as the depth-50 one (other depths use the
                          nearest listed depth below; 26 uses 50's).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, List, Sequence

from ..errors import ConfigError

# Paper Table 10: dropout rate per filter (width) multiplier, 350-epoch models.
DROPOUT_PER_WIDTH = {0.25: 0.0, 0.5: 0.1, 1.0: 0.25, 1.5: 0.6, 2.0: 0.75}
# Paper Table 8: stochastic depth 0.0 for ResNet-RS-50..152, 0.1 for 200..420.
DROP_PATH_DEEP_FROM, DROP_PATH_DEEP, DROP_PATH_SHALLOW = 200, 0.1, 0.0
# Paper Table 8: the smallest training resolution used at each depth.
RESOLUTION_PER_DEPTH = {50: 160, 101: 160, 152: 192, 200: 256, 270: 256, 350: 256, 420: 320}


def config_depth(cfg) -> int:
    """The backbone depth a config builds: MODEL.DEPTH where the config has it, else the arch name's."""
    depth = cfg.MODEL.get("DEPTH")
    if isinstance(depth, int) and depth > 0:
        return depth
    digits = "".join(c if c.isdigit() else " " for c in cfg.MODEL.ARCH).split()
    if not digits:
        raise ConfigError(f"MODEL.ARCH {cfg.MODEL.ARCH!r} names no depth")
    return int(digits[-1])


def config_width(cfg) -> float:
    """MODEL.WIDTH_MULTIPLIER, or 1.0 where the config keeps the registry entry's width."""
    width = cfg.MODEL.WIDTH_MULTIPLIER
    return float(width) if width is not None and width > 0 else 1.0


def scale_resolution(cfg, train_res: int) -> Dict[str, object]:
    """The spatial keys for training crop ``train_res``: test crop and jitter scales keep their ratios.

    The K400 recipe trains at 224 and tests at 256 (short-side jitter in [256, 320] for the baseline);
    at 112 the same recipe is 112 / 128 / [128, 160].
    """
    ratio = train_res / cfg.DATA.TRAIN_CROP_SIZE
    out: Dict[str, object] = {
        "DATA.TRAIN_CROP_SIZE": int(train_res),
        "DATA.TEST_CROP_SIZE": max(1, int(round(cfg.DATA.TEST_CROP_SIZE * ratio))),
    }
    if cfg.DATA.TRAIN_JITTER_MODE == "short_side":
        out["DATA.TRAIN_JITTER_SCALES"] = [
            max(int(train_res), int(round(s * ratio))) for s in cfg.DATA.TRAIN_JITTER_SCALES
        ]
    return out


def _dropout_per_width(cfg) -> Dict[str, object]:
    width = config_width(cfg)
    for w, rate in DROPOUT_PER_WIDTH.items():
        if math.isclose(w, width):
            return {"MODEL.DROPOUT_RATE": rate}
    raise ConfigError(
        f"rule dropout-per-width: paper Table 10 has no dropout rate for width {width}; "
        f"it lists {', '.join(str(w) for w in DROPOUT_PER_WIDTH)}"
    )


def _drop_path_per_depth(cfg) -> Dict[str, object]:
    if math.isclose(config_width(cfg), 0.25):
        return {"MODEL.DROP_PATH_RATE": 0.0}
    deep = config_depth(cfg) >= DROP_PATH_DEEP_FROM
    return {"MODEL.DROP_PATH_RATE": DROP_PATH_DEEP if deep else DROP_PATH_SHALLOW}


def _slow_resolution(cfg) -> Dict[str, object]:
    depth = config_depth(cfg)
    listed = [d for d in sorted(RESOLUTION_PER_DEPTH) if d <= depth] or [min(RESOLUTION_PER_DEPTH)]
    ratio = RESOLUTION_PER_DEPTH[listed[-1]] / RESOLUTION_PER_DEPTH[50]
    train = max(8, int(round(cfg.DATA.TRAIN_CROP_SIZE * ratio / 8)) * 8)
    return scale_resolution(cfg, train)


RULES: Dict[str, Callable[[object], Dict[str, object]]] = {
    "dropout-per-width": _dropout_per_width,
    "drop-path-per-depth": _drop_path_per_depth,
    "slow-resolution": _slow_resolution,
}


def parse_rules(specs: Iterable[str]) -> List[str]:
    """``["dropout-per-width,slow-resolution"]`` -> names, each checked; unknown names are an error."""
    names: List[str] = []
    for spec in specs:
        for name in (s.strip() for s in spec.split(",")):
            if not name:
                continue
            if name not in RULES:
                raise ConfigError(f"--rules: unknown rule {name!r}; choose from {', '.join(RULES)}")
            if name not in names:
                names.append(name)
    return names


def apply_rules(names: Sequence[str], cfg, explicit: Iterable[str]) -> Dict[str, object]:
    """Values the rules ``names`` give for ``cfg``, leaving out every key in ``explicit``."""
    explicit = set(explicit)
    out: Dict[str, object] = {}
    for name in names:
        for key, value in RULES[name](cfg).items():
            if key not in explicit:
                out[key] = value
    return out
