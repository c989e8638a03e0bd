"""Named model variants (timm-style registry) and the one place a config becomes a model.

Which source each entry follows:

- ``resnet3d_rs{26,50,101,152,200,270,300,350,400,420}``: the authors' released 3D config (TF Model
  Garden ``resnet_3d`` R3D-RS): ResNet-D stem [5,3,3]/[1,3,3]/[1,3,3] with temporal stride 2, max
  pool, 1x1x1 conv shortcut, temporal kernels 1,1,3,3, SE 0.25, self-gating in the last block of each
  stage (before SE), stage-wise stochastic depth 0.1, dropout 0.5. Depth 26 has no released config
  ([2,2,2,2] as timm).
- ``resnet3d_rs50_paper``: the paper's appendix E ResNet-D inflated as in appendix H: stem temporal
  kernels [5,1,1], stem max pool replaced by a stride-2 3x3 conv (as timm's ``resnetrs50`` and TF's
  ``replace_stem_max_pool``), average-pool shortcut, SE 0.25, no self-gating. Inflating timm's 2D
  ``resnetrs50`` gives exactly this model.
- ``r3d50``: the R3D-50 baseline of the released code (stem v0 [5,7,7] stride 2 + max pool, temporal
  kernels (3,3,3) (3,1,3,1) (3,1,3,1,3,1) (1,3,1), no SE, no stochastic depth).
- ``slow_r50``: PyTorchVideo's SlowOnly R50 (stem [1,7,7], kernels 1,1,3,3 per stage, no temporal
  downsampling); loads PyTorchVideo and PySlowFast weights.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from torch import nn

from ..errors import ConfigError
from .pretrained import load_pretrained_folder
from .resnet3d import BLOCKS_PER_DEPTH, ResNet3D

_REGISTRY: Dict[str, Dict[str, Any]] = {}
_SOURCES: Dict[str, str] = {}

# The released R3D-RS recipe (REFERENCE.md, "Released 3D code").
_RS_RELEASED = dict(
    temporal_kernels=(1, 1, 3, 3),
    temporal_strides=(1, 1, 1, 1),
    stem_type="deep",
    stem_width=32,
    stem_temporal_kernel=5,
    stem_temporal_stride=2,
    stem_pool="max",
    stem_pool_temporal_stride=1,
    shortcut="conv",
    se_ratio=0.25,
    self_gating="last_before_se",
    drop_path_rate=0.1,
    drop_path_mode="stage",
    dropout_rate=0.5,
)
_RS_PAPER = dict(_RS_RELEASED, stem_pool="conv", shortcut="avg", self_gating="none")
_R3D_BASELINE = dict(
    temporal_kernels=((3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1), (1, 3, 1)),
    temporal_strides=(1, 1, 1, 1),
    stem_type="plain",
    stem_temporal_kernel=5,
    stem_temporal_stride=2,
    stem_pool="max",
    stem_pool_temporal_stride=1,
    shortcut="conv",
    se_ratio=0.0,
    self_gating="none",
    drop_path_rate=0.0,
    dropout_rate=0.5,
)
_SLOW_R50 = dict(
    depth=50,
    temporal_kernels=(1, 1, 3, 3),
    temporal_strides=(1, 1, 1, 1),
    stem_type="plain",
    stem_temporal_kernel=1,
    stem_temporal_stride=1,
    stem_pool="max",
    stem_pool_temporal_stride=1,
    shortcut="conv",
    se_ratio=0.0,
    self_gating="none",
    drop_path_rate=0.0,
    dropout_rate=0.5,
)


# Arguments a registered name decides: "resnet3d_rs101" must not build a 50-layer network. Every
# other argument (width, regularisers, stem, SE, ...) is a default of the entry and may be overridden.
FIXED_BY_NAME = ("depth",)


def register(name: str, defaults: Dict[str, Any], source: str) -> None:
    """Add ``name``: ``ResNet3D(**defaults)``, ``source`` says which code or paper it follows."""
    missing = [k for k in FIXED_BY_NAME if k not in defaults]
    if missing:
        raise ValueError(f"register({name!r}): the entry must set {missing}")
    _REGISTRY[name] = dict(defaults)
    _SOURCES[name] = source


for _depth in BLOCKS_PER_DEPTH:
    register(f"resnet3d_rs{_depth}", dict(_RS_RELEASED, depth=_depth), "released R3D-RS (TF Model Garden)")
register("resnet3d_rs50_paper", dict(_RS_PAPER, depth=50), "paper appendix E/H (timm resnetrs50 inflated)")
register("r3d50", dict(_R3D_BASELINE, depth=50), "released R3D-50 baseline (TF Model Garden)")
register("slow_r50", _SLOW_R50, "PyTorchVideo slow_r50 / PySlowFast SLOW_8x8_R50")


def list_models() -> List[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def model_source(name: str) -> str:
    return _SOURCES[_checked_name(name)]


def model_args(name: str) -> Dict[str, Any]:
    """A copy of the ``ResNet3D`` arguments that ``name`` stands for (before any override)."""
    return dict(_REGISTRY[_checked_name(name)])


def _checked_name(name: str) -> str:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model name {name!r}; available: {', '.join(list_models())}")
    return name


def create_model(
    name: str, num_classes: Optional[int] = None, pretrained: Optional[str] = None, **overrides: Any
) -> nn.Module:
    """Build a registered model; keyword arguments override the entry's ``ResNet3D`` arguments.

    Args:
        name: one of :func:`list_models`.
        num_classes: classifier outputs (0: no classifier, ``forward`` returns pooled features);
            default 400, or the pretrained folder's.
        pretrained: a folder or URL written by ``rs3d-export`` / ``rs3d.save_pretrained``
            (``config.json`` + ``model.safetensors``); its architecture must be ``name``; the
            model comes in eval mode with the folder's weights and ``pretrained_cfg``.
        **overrides: any ``ResNet3D`` argument except those in ``FIXED_BY_NAME`` (``depth``: the
            name states it, so pick the name of the depth you want).

    Example: ``create_model("resnet3d_rs101", num_classes=400, width_multiplier=1.5, drop_path_rate=0.2)``.
    The model's ``pretrained_cfg`` records the name, classes and arguments (what export writes).

    Raises:
        ConfigError (a ValueError): an unknown name, or an override of an argument the name fixes.
    """
    if pretrained:
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        return load_pretrained_folder(pretrained, create_model, name=_checked_name(name), **overrides)
    num_classes = 400 if num_classes is None else num_classes
    args = model_args(name)
    fixed = [k for k in FIXED_BY_NAME if k in overrides and overrides[k] != args[k]]
    if fixed:
        given = ", ".join(f"{k}={overrides[k]!r}" for k in fixed)
        wanted = {**args, **{k: overrides[k] for k in fixed}}
        others = [n for n in list_models() if _REGISTRY[n] == wanted]
        raise ConfigError(
            f"create_model({name!r}, {given}): the name fixes "
            + ", ".join(f"{k}={args[k]!r}" for k in fixed)
            + "; "
            + (f"use {others[0]!r}" if others else f"choose another name from {list_models()}")
        )
    model = ResNet3D(**{**args, **overrides, "num_classes": num_classes})
    model.pretrained_cfg = {"architecture": name, "num_classes": num_classes, "model_args": dict(overrides)}
    return model


def model_overrides(cfg) -> Dict[str, Any]:
    """The ``create_model`` keyword arguments a config sets besides the name and the classes
    (MODEL.*, BN.*); what a checkpoint stores as its architecture's constructor arguments."""
    overrides: Dict[str, Any] = dict(
        dropout_rate=cfg.MODEL.DROPOUT_RATE,
        drop_path_rate=cfg.MODEL.DROP_PATH_RATE,
        drop_path_mode=cfg.MODEL.DROP_PATH_MODE,
        bn_eps=cfg.BN.EPSILON,
        bn_momentum=cfg.BN.MOMENTUM,
        init=cfg.MODEL.INIT,
    )
    if cfg.MODEL.STEM_TYPE:
        overrides["stem_type"] = cfg.MODEL.STEM_TYPE
    if cfg.MODEL.SE_RATIO is not None and cfg.MODEL.SE_RATIO >= 0:  # unset: None (or the old -1)
        overrides["se_ratio"] = cfg.MODEL.SE_RATIO
    if cfg.MODEL.WIDTH_MULTIPLIER is not None and cfg.MODEL.WIDTH_MULTIPLIER > 0:
        overrides["width_multiplier"] = cfg.MODEL.WIDTH_MULTIPLIER
    return overrides


def build_model(cfg) -> nn.Module:
    """The model a config describes (MODEL.*, BN.*); the only model code that reads a config."""
    return create_model(cfg.MODEL.ARCH, num_classes=cfg.MODEL.NUM_CLASSES, **model_overrides(cfg))
