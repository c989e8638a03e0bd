"""Fine-tuning a pretrained backbone: frozen stages, fixed BN statistics, per-stage learning rates.

Stages are counted as PySlowFast names them: s1 is the stem (``conv1``, ``bn1``, ``maxpool``:
everything before res2), s2..s5 are res2..res5 (``layer1``..``layer4``); the head is the
classifier (``get_classifier()``, ``fc``). ``FREEZE_STAGES = n`` freezes s1..sn.

A frozen stage is a fixed feature extractor: its parameters leave the optimizer
(``requires_grad`` False) and the whole stage stays in eval mode, so neither its BN statistics
nor its stochastic depth change the features. ``FREEZE_BN`` keeps every BN layer in eval mode
(statistics fixed, scales and shifts still learning). Eval mode is pinned on the module itself
(``keep_in_eval``) because the training loop switches the whole model to train mode every epoch.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from rs3d.errors import ConfigError

# s1..s5 -> the top-level modules of rs3d's ResNet3D that make up the stage.
STAGES = {1: ("conv1", "bn1", "act1", "maxpool"), 2: ("layer1",), 3: ("layer2",), 4: ("layer3",), 5: ("layer4",)}
NUM_STAGES = len(STAGES)
STAGE_NAMES = {1: "stem", 2: "res2", 3: "res3", 4: "res4", 5: "res5"}


@dataclass(frozen=True)
class FinetuneOptions:
    """The resolved fine-tuning choices (all defaults: train everything at the schedule's rate)."""

    freeze_stages: int = 0
    freeze_bn: bool = False
    head_lr_mult: float = 1.0
    layer_decay: float = 1.0
    linear_probe: bool = False

    @classmethod
    def from_cfg(cls, cfg) -> "FinetuneOptions":
        """From TRAIN.FREEZE_STAGES / FREEZE_BN / LINEAR_PROBE and SOLVER.HEAD_LR_MULT / LAYER_DECAY."""
        t, s = cfg.TRAIN, cfg.SOLVER
        if not 0 <= t.FREEZE_STAGES <= NUM_STAGES:
            raise ConfigError(
                f"TRAIN.FREEZE_STAGES must be in 0..{NUM_STAGES} (1 = stem, "
                f"{NUM_STAGES} = the whole backbone); got {t.FREEZE_STAGES}"
            )
        if s.HEAD_LR_MULT < 0:
            raise ConfigError(f"SOLVER.HEAD_LR_MULT must be >= 0; got {s.HEAD_LR_MULT}")
        if not 0 < s.LAYER_DECAY <= 1:
            raise ConfigError(f"SOLVER.LAYER_DECAY must be in (0, 1]; got {s.LAYER_DECAY}")
        if t.LINEAR_PROBE:
            return cls(NUM_STAGES, True, s.HEAD_LR_MULT, s.LAYER_DECAY, linear_probe=True)
        return cls(t.FREEZE_STAGES, t.FREEZE_BN, s.HEAD_LR_MULT, s.LAYER_DECAY)

    @property
    def is_default(self) -> bool:
        return self == FinetuneOptions()

    @property
    def scales_lr(self) -> bool:
        return self.head_lr_mult != 1.0 or self.layer_decay != 1.0


def _head_prefix(model: nn.Module) -> str:
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    for name, module in model.named_modules():
        if module is head and name:
            return name
    raise ConfigError(f"{type(model).__name__} has no classifier module (get_classifier) to fine-tune")


def stage_of(model: nn.Module, name: str, head: Optional[str] = None) -> int:
    """Stage of parameter or module ``name``: 1..5 (s1 = stem .. s5), ``NUM_STAGES + 1`` for the head."""
    head = _head_prefix(model) if head is None else head
    top = name.split(".", 1)[0]
    if top == head:
        return NUM_STAGES + 1
    for stage, modules in STAGES.items():
        if top in modules:
            return stage
    raise ConfigError(
        f"{type(model).__name__}: cannot place {name!r} in a stage (s1 = stem .. s5) "
        "or the head; fine-tuning options need rs3d's ResNet3D layout"
    )


def _eval_only(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def keep_in_eval(module: nn.Module) -> None:
    """Put ``module`` (and everything in it) in eval mode and keep it there through ``.train()``."""
    module.train = types.MethodType(_eval_only, module)
    module.eval()


def is_kept_in_eval(module: nn.Module) -> bool:
    return getattr(module.__dict__.get("train"), "__func__", None) is _eval_only


def apply_freezing(model: nn.Module, opts: FinetuneOptions) -> dict:
    """Freeze stages s1..s``freeze_stages`` and (``freeze_bn``) every BN layer's statistics.

    Call it before the optimizer and the EMA are built (frozen parameters join no optimizer
    group), and after SyncBatchNorm conversion (which replaces the BN modules). Returns counts:
    ``{"frozen_params": tensors, "frozen_bn": BN layers in eval, "trainable": elements}``.
    """
    names = [name for stage in range(1, opts.freeze_stages + 1) for name in STAGES[stage]]
    frozen_modules = [m for name in names if (m := getattr(model, name, None)) is not None]
    if opts.freeze_stages and not frozen_modules:
        raise ConfigError(
            f"TRAIN.FREEZE_STAGES {opts.freeze_stages}: {type(model).__name__} has none of the stage modules {names}"
        )
    frozen_params, in_frozen = 0, set()
    for m in frozen_modules:
        for p in m.parameters():
            p.requires_grad_(False)
            frozen_params += 1
        in_frozen.update(id(x) for x in m.modules())
        keep_in_eval(m)
    frozen_bn = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if opts.freeze_bn and id(m) not in in_frozen:
                keep_in_eval(m)
            frozen_bn += int(opts.freeze_bn or id(m) in in_frozen)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"frozen_params": frozen_params, "frozen_bn": frozen_bn, "trainable": trainable}


def lr_multiplier(model: nn.Module, opts: FinetuneOptions) -> Optional[Callable[[str], float]]:
    """Parameter name -> learning-rate multiplier; None when every multiplier is 1.

    Head: ``head_lr_mult``; stage s (1..5): ``layer_decay ** (6 - s)``, so res5 gets one factor and
    the stem five.
    """
    if not opts.scales_lr:
        return None
    head = _head_prefix(model)

    def mult(name: str) -> float:
        stage = stage_of(model, name, head)
        if stage > NUM_STAGES:
            return opts.head_lr_mult
        return opts.layer_decay ** (NUM_STAGES + 1 - stage)

    return mult


def describe(opts: FinetuneOptions, counts: dict, total_params: int, from_checkpoint: bool = True) -> str:
    """One log line with the resolved choices; "fine-tuning" only when the run starts from a
    checkpoint (``from_checkpoint``), otherwise they are options of a run from scratch."""
    if opts.linear_probe:
        frozen = "linear probe: the whole backbone frozen, only the classifier learns"
    elif opts.freeze_stages:
        names = ", ".join(STAGE_NAMES[s] for s in range(1, opts.freeze_stages + 1))
        frozen = f"frozen stages: {names} (TRAIN.FREEZE_STAGES {opts.freeze_stages})"
    else:
        frozen = "no stage frozen"
    if opts.freeze_bn:
        bn = f"BN statistics fixed in every layer ({counts['frozen_bn']})"
    elif counts["frozen_bn"]:
        bn = f"BN statistics fixed in the frozen stages ({counts['frozen_bn']} layers)"
    else:
        bn = "BN statistics updated"
    lr = f"lr x{opts.head_lr_mult:g} for the classifier"
    if opts.layer_decay != 1.0:
        d = opts.layer_decay
        lr += f", layer decay {d:g} (res5 x{d:g} .. stem x{d**NUM_STAGES:.3g})"
    what = "fine-tuning" if from_checkpoint else "training from scratch (no TRAIN.CHECKPOINT_FILE_PATH)"
    return f"{what}: {frozen}; {bn}; {lr}; {counts['trainable']:,} of {total_params:,} parameters train"
