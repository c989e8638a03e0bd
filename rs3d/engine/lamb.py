"""LAMB (layer-wise adaptive moments, You et al. 2020) from timm, as ResNet strikes back trains.

timm's ``timm.optim.Lamb`` is a maintained implementation and the one the ResNet strikes back
procedures were run with; rs3d does not reimplement it. timm is an optional dependency (``pip install
timm``, or rs3d's ``[lamb]`` extra): without it ``SOLVER.OPTIMIZING_METHOD lamb`` stops at start-up
with one line saying so. timm's defaults are kept (betas 0.9/0.999, eps 1e-6, the global gradient
norm clipped at 1.0 inside the step); the weight decay of each group is rs3d's (conv and linear
weights only, ``rs3d.engine.optim.param_groups``), and the trust ratio applies where it is set.
"""

from __future__ import annotations

import torch

from rs3d.errors import ConfigError


def build_lamb(groups: list, lr: float) -> torch.optim.Optimizer:
    """timm's Lamb over rs3d's parameter groups; ConfigError when timm is not installed."""
    try:
        from timm.optim import Lamb
    except ImportError:
        raise ConfigError(
            "SOLVER.OPTIMIZING_METHOD lamb needs timm: pip install timm (or pip install 'rs3d[lamb]')"
        ) from None
    return Lamb(groups, lr=lr)
