"""The output of one named layer of a model, for embeddings and Grad-CAM.

A layer is named by a stage alias (``stem``, ``res2`` .. ``res5``, as ``forward_stages`` names
them), ``logits`` (the model's output), or any module name of ``model.named_modules()``
(``layer3.1``, ``layer4.2.conv2``). The output is read with a forward hook, and the forward
pass stops right after that layer, so an early layer costs only the layers before it.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError

# Stage aliases -> the ResNet3D attribute that computes them (``rs3d.models.resnet3d``).
STAGES = {"stem": "maxpool", "res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}
LOGITS = "logits"
DEFAULT_LAYER = "res5"


class _Stop(Exception):
    """Raised by the hook to end the forward pass once the layer has run."""


def resolve_layer(model: nn.Module, name: str) -> Optional[nn.Module]:
    """The module behind ``name`` (None for ``logits``); :class:`ConfigError` if there is none."""
    if name == LOGITS:
        return None
    modules = dict(model.named_modules())
    target = STAGES.get(name, name)
    if target and target in modules:
        return modules[target]
    raise ConfigError(
        f"layer {name!r} is not a layer of {type(model).__name__}; use one of "
        f"{', '.join([*STAGES, LOGITS])} or a module name such as layer3.1"
    )


def pool(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, ...]`` -> ``[B, C]``: the mean over every axis after the channels (as the model's
    global average pool)."""
    return x.flatten(2).mean(2) if x.dim() > 2 else x


class LayerTap:
    """``tap(x)`` -> the output of layer ``name`` for input ``x`` (unpooled, as the layer gives it);
    the forward pass ends at the layer. An unknown name fails here, before any video is read."""

    def __init__(self, model: nn.Module, name: str = DEFAULT_LAYER):
        self.model, self.name = model, name
        self.module = resolve_layer(model, name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.module is None:
            return self.model(x)
        box = {}

        def hook(_module, _inputs, output):
            box["out"] = output
            raise _Stop

        handle = self.module.register_forward_hook(hook)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if "out" not in box:
            raise ConfigError(f"layer {self.name!r} does not run in {type(self.model).__name__}.forward")
        out = box["out"]
        if not isinstance(out, torch.Tensor):
            raise ConfigError(f"layer {self.name!r} gives a {type(out).__name__}, not a tensor")
        return out


def forward_with_layer(model: nn.Module, module: nn.Module, x: torch.Tensor):
    """``(logits, output of module)`` of one full forward pass (what Grad-CAM differentiates)."""
    box = {}

    def hook(_module, _inputs, output):
        box["out"] = output

    handle = module.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, box["out"]
