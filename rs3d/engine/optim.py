"""SGD with weight decay on conv and linear weights only.

The recipe (and timm/nanoGPT) never decays BN scales/shifts or biases: decaying them only shrinks
the normalisation and hurts accuracy. The split is by module type, not by tensor rank, so an
unusual parameter (a learned scalar, say) is never decayed by accident.
"""
from __future__ import annotations

import torch
from torch import nn

_DECAYED = (nn.modules.conv._ConvNd, nn.Linear)


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


def build_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, nesterov: bool = True,
                    weight_decay: float = 4e-5) -> torch.optim.SGD:
    """SGD (Nesterov) over ``param_groups``; ``foreach`` updates all tensors in a few kernels."""
    return torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=momentum,
                           nesterov=nesterov and momentum > 0, foreach=True)
