"""SGD (the recipe) or AdamW, with weight decay on conv and linear weights only.

The recipe (and timm/nanoGPT) never decays BN scales/shifts or biases: decaying them only shrinks
the normalisation and hurts accuracy. The split is by module type, not by tensor rank, so an
unusual parameter (a learned scalar, say) is never decayed by accident.

Fine-tuning adds learning-rate multipliers (a faster new head, layer-wise decay): each group then
carries ``lr_mult``, and the training loop sets its rate to the schedule's times ``lr_mult``.
Frozen parameters (``requires_grad`` False) are in no group, so the optimizer never touches them.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

_DECAYED = (nn.modules.conv._ConvNd, nn.Linear)
# The optimizers ``build_optimizer`` offers (SOLVER.OPTIMIZING_METHOD).
OPTIMIZERS = ("sgd", "adamw")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: conv/linear ``weight`` tensors with ``weight_decay``; everything else with 0."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (decay if isinstance(module, _DECAYED) and name == "weight" else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def scaled_param_groups(model: nn.Module, weight_decay: float,
                        lr_mult: Callable[[str], float]) -> list[dict]:
    """Groups by (decayed or not, ``lr_mult(parameter name)``), each with its ``lr_mult``.

    Groups come in the order their first parameter appears in ``model``; a group's parameters keep
    the model's order. Group ``name`` says what it holds, e.g. ``"decay x10"``.
    """
    groups: dict = {}
    seen = set()
    for mod_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            decayed = isinstance(module, _DECAYED) and name == "weight"
            mult = float(lr_mult(f"{mod_name}.{name}" if mod_name else name))
            key = (decayed, mult)
            if key not in groups:
                groups[key] = {"params": [], "weight_decay": weight_decay if decayed else 0.0,
                               "lr_mult": mult, "name": f"{'decay' if decayed else 'no_decay'} x{mult:g}"}
            groups[key]["params"].append(p)
    return list(groups.values())


def build_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, nesterov: bool = True,
                    weight_decay: float = 4e-5, method: str = "sgd",
                    lr_mult: Optional[Callable[[str], float]] = None) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over ``param_groups``, with the fused implementation where it exists.

    Fused SGD updates all tensors in one kernel: 5.4x faster than ``foreach`` for RS-50's
    parameters on this project's CPU (BENCHMARKS.md, "optim"); ``foreach`` is the fallback.
    AdamW is offered for small models trained briefly (the CPU demo), where SGD is slow to start.
    ``lr_mult``: parameter name -> learning-rate multiplier (``scaled_param_groups``); None: the two
    plain groups of ``param_groups``.
    """
    if lr_mult is None:
        groups = param_groups(model, weight_decay)
    else:
        groups = scaled_param_groups(model, weight_decay, lr_mult)
    if method == "sgd":
        make = lambda **impl: torch.optim.SGD(groups, lr=lr, momentum=momentum,  # noqa: E731
                                              nesterov=nesterov and momentum > 0, **impl)
    elif method == "adamw":
        make = lambda **impl: torch.optim.AdamW(groups, lr=lr, **impl)  # noqa: E731
    else:
        raise ValueError(f"SOLVER.OPTIMIZING_METHOD={method!r} is not allowed; choose one of {list(OPTIMIZERS)}")
    try:
        return make(fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without a fused kernel
        return make(foreach=True)
