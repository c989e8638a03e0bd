"""Exponential moving average of a model's parameters AND buffers (BN statistics).

The released recipe evaluates the EMA model, BN moving statistics included, with the dynamic
decay ``min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by the random init.

Two forms (TRAIN.EMA_FORM):

- "pytorch" (timm): the average starts as a copy of the model, and the update after optimizer
  step ``t`` (0 = the first) uses ``t``: first decay 1/10.
- "tf" (the Model Garden's ``ExponentialMovingAverage``): the average starts at zero, with no
  bias correction, and uses the optimizer's count *after* the update: first decay 2/11, so the
  average after step 1 is 9/11 of the weights. The zero start fades as the product of the decays
  (6% of it is left after 10 steps, 1e-11 after 100).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

EMA_FORMS = ("pytorch", "tf")


def ema_decay(step: int, max_decay: float) -> float:
    """Decay ``min(max_decay, (1 + step) / (10 + step))``; which count ``step`` is depends on the form."""
    return min(max_decay, (1.0 + step) / (10.0 + step))


class ModelEma(nn.Module):
    """A frozen copy of ``model`` kept as the running average; call ``update`` after each step."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, form: str = "pytorch"):
        super().__init__()
        if form not in EMA_FORMS:
            raise ValueError(f"TRAIN.EMA_FORM={form!r} is not allowed; choose one of {list(EMA_FORMS)}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        if form == "tf":
            with torch.no_grad():
                for t in self.module.state_dict(keep_vars=True).values():
                    if t.dtype.is_floating_point:
                        t.zero_()
        self.decay = decay
        self.form = form

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """ema <- d * ema + (1 - d) * model for floating tensors; integer buffers are copied.

        ``step``: optimizer steps done before the one just taken (0 after the first)."""
        d = ema_decay(step + 1 if self.form == "tf" else step, self.decay)
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
