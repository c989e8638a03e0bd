"""Exponential moving average of a model's parameters AND buffers (BN statistics).

The released recipe evaluates the EMA model, BN moving statistics included, with the dynamic
decay ``min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by the random init.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(step: int, max_decay: float) -> float:
    """Decay used by the update after optimizer step ``step`` (0 = the first step)."""
    return min(max_decay, (1.0 + step) / (10.0 + step))


class ModelEma(nn.Module):
    """A frozen copy of ``model`` kept as the running average; call ``update`` after each step."""

    def __init__(self, model: nn.Module, decay: float = 0.9999):
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """ema <- d * ema + (1 - d) * model for floating tensors; integer buffers are copied."""
        d = ema_decay(step, self.decay)
        ema_t, new_t = [], []
        src = dict(model.state_dict(keep_vars=True))
        for name, e in self.module.state_dict(keep_vars=True).items():
            s = src[name].detach()
            if e.dtype.is_floating_point:
                ema_t.append(e.data if isinstance(e, nn.Parameter) else e)
                new_t.append(s)
            else:
                e.copy_(s)
        if ema_t:
            torch._foreach_lerp_(ema_t, new_t, 1.0 - d)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
