"""SGD (the recipe) or AdamW, with weight decay on conv and linear weights only.

The recipe (and timm/nanoGPT) never decays BN scales/shifts or biases: decaying them only shrinks
the normalisation and hurts accuracy. The split is by module type, not by tensor rank, so an
unusual parameter (a learned scalar, say) is never decayed by accident.

Fine-tuning adds learning-rate multipliers (a faster new head, layer-wise decay): each group then
carries ``lr_mult``, and the training loop sets its rate to the schedule's times ``lr_mult``.
Frozen parameters (``requires_grad`` False) are in no group, so the optimizer never touches them.

Two choices follow the released TF code when asked (docs/reference.md): ``decay_self_gating=False``
leaves the self-gating convs' kernels undecayed (TF gives them no regulariser), and
``momentum_form="keras"`` uses :class:`KerasSGD`, Keras' SGD with the rate inside the velocity.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from rs3d.engine.lamb import build_lamb
from rs3d.layers import SelfGating3d

_DECAYED = (nn.modules.conv._ConvNd, nn.Linear)
# The optimizers ``build_optimizer`` offers (SOLVER.OPTIMIZING_METHOD).
OPTIMIZERS = ("sgd", "adamw", "lamb")
# Where SGD applies the learning rate (SOLVER.MOMENTUM_FORM).
MOMENTUM_FORMS = ("pytorch", "keras")


class KerasSGD(torch.optim.Optimizer):
    """SGD as TF's Keras optimizer writes it: the rate is inside the velocity.

    ``v <- m v - lr g``; then ``w <- w + m v - lr g`` (Nesterov) or ``w <- w + v``, with
    ``g = grad + weight_decay * w`` (TF's ``l2(wd / 2)`` regulariser gives the same term).
    ``torch.optim.SGD`` keeps ``b <- m b + g`` and steps ``lr (g + m b)``: the same at a constant
    rate, but while the rate changes (the warm-up) each old gradient keeps the rate it was taken
    at here, and takes the current one there (the Keras form lags by about 8 steps in the
    released warm-up).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
            grads = [p.grad for p in params]
            if wd:
                grads = torch._foreach_add(grads, params, alpha=wd)
            vel = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                vel.append(state["velocity"])
            torch._foreach_mul_(vel, m)
            torch._foreach_add_(vel, grads, alpha=-lr)
            if group["nesterov"]:
                torch._foreach_add_(
                    params, torch._foreach_sub(torch._foreach_mul(vel, m), torch._foreach_mul(grads, lr))
                )
            else:
                torch._foreach_add_(params, vel)
        return loss


def state_mismatch(optimizer: torch.optim.Optimizer, state_dict: dict) -> Optional[str]:
    """Why ``state_dict`` (a checkpoint's optimizer state) cannot continue in ``optimizer``, or None.

    A velocity of the Keras form and torch's momentum buffer are different quantities (one holds
    the rate, the other does not): loading one as the other would silently restart the momentum."""
    keys = {k for s in state_dict.get("state", {}).values() for k in s}
    if isinstance(optimizer, KerasSGD) and "momentum_buffer" in keys:
        return (
            "the checkpoint's SGD state is torch's (SOLVER.MOMENTUM_FORM pytorch), this run's "
            "SOLVER.MOMENTUM_FORM is keras: resume with the form the run started with"
        )
    if isinstance(optimizer, torch.optim.SGD) and "velocity" in keys:
        return (
            "the checkpoint's SGD state is Keras' (SOLVER.MOMENTUM_FORM keras), this run's "
            "SOLVER.MOMENTUM_FORM is pytorch: resume with the form the run started with"
        )
    return None


def _undecayed(model: nn.Module, decay_self_gating: bool) -> set:
    """ids of weights that stay undecayed although their module is a conv or linear layer."""
    if decay_self_gating:
        return set()
    return {id(p) for m in model.modules() if isinstance(m, SelfGating3d) for p in m.parameters()}


def _is_decayed(module: nn.Module, name: str, p: torch.Tensor, undecayed: set) -> bool:
    return isinstance(module, _DECAYED) and name == "weight" and id(p) not in undecayed


def param_groups(model: nn.Module, weight_decay: float, decay_self_gating: bool = True) -> list[dict]:
    """Two groups: conv/linear ``weight`` tensors with ``weight_decay``; everything else with 0.

    ``decay_self_gating=False``: the self-gating convs' kernels go to the undecayed group (TF)."""
    decay, no_decay, seen = [], [], set()
    undecayed = _undecayed(model, decay_self_gating)
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (decay if _is_decayed(module, name, p, undecayed) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def scaled_param_groups(
    model: nn.Module, weight_decay: float, lr_mult: Callable[[str], float], decay_self_gating: bool = True
) -> list[dict]:
    """Groups by (decayed or not, ``lr_mult(parameter name)``), each with its ``lr_mult``.

    Groups come in the order their first parameter appears in ``model``; a group's parameters keep
    the model's order. Group ``name`` says what it holds, e.g. ``"decay x10"``.
    """
    groups: dict = {}
    seen = set()
    undecayed = _undecayed(model, decay_self_gating)
    for mod_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            decayed = _is_decayed(module, name, p, undecayed)
            mult = float(lr_mult(f"{mod_name}.{name}" if mod_name else name))
            key = (decayed, mult)
            if key not in groups:
                groups[key] = {
                    "params": [],
                    "weight_decay": weight_decay if decayed else 0.0,
                    "lr_mult": mult,
                    "name": f"{'decay' if decayed else 'no_decay'} x{mult:g}",
                }
            groups[key]["params"].append(p)
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 4e-5,
    method: str = "sgd",
    lr_mult: Optional[Callable[[str], float]] = None,
    momentum_form: str = "pytorch",
    decay_self_gating: bool = True,
) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over ``param_groups``, with the fused implementation where it exists.

    Fused SGD updates all tensors in one kernel: 5.4x faster than ``foreach`` for RS-50's
    parameters on this project's CPU (BENCHMARKS.md, "optim"); ``foreach`` is the fallback.
    AdamW is offered for small models trained briefly (the CPU demo), where SGD is slow to start.
    ``lr_mult``: parameter name -> learning-rate multiplier (``scaled_param_groups``); None: the two
    plain groups of ``param_groups``. ``momentum_form`` "keras": :class:`KerasSGD` (SGD only).
    ``decay_self_gating`` False: no weight decay on the self-gating kernels.
    """
    if momentum_form not in MOMENTUM_FORMS:
        raise ValueError(f"SOLVER.MOMENTUM_FORM={momentum_form!r} is not allowed; choose one of {list(MOMENTUM_FORMS)}")
    if lr_mult is None:
        groups = param_groups(model, weight_decay, decay_self_gating)
    else:
        groups = scaled_param_groups(model, weight_decay, lr_mult, decay_self_gating)
    if method == "sgd" and momentum_form == "keras":
        return KerasSGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if method == "sgd":

        def make(**impl):
            return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0, **impl)
    elif method == "adamw":

        def make(**impl):
            return torch.optim.AdamW(groups, lr=lr, **impl)
    elif method == "lamb":
        return build_lamb(groups, lr)
    else:
        raise ValueError(f"SOLVER.OPTIMIZING_METHOD={method!r} is not allowed; choose one of {list(OPTIMIZERS)}")
    try:
        return make(fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without a fused kernel
        return make(foreach=True)
