"""Training loss: softmax cross-entropy (the recipe, label smoothing 0.1) or sigmoid + binary
cross-entropy per class (``TRAIN.LOSS bce``, ResNet strikes back's choice for single-label data;
always for multi-label data, ``DATA.MULTI_LABEL``).

Targets are class indices ``[B]``, or float rows ``[B, K]`` (MixUp/CutMix's soft targets,
``rs3d.engine.mixup``, which are label-smoothed before mixing; or multi-hot rows). Smoothing
therefore applies to class indices only: a soft target is already what the clip should predict.
Binary cross-entropy smooths as timm does (``1 - s + s/K`` on the class, ``s/K`` elsewhere) and,
with ``target_threshold``, turns a target above the threshold into 1 and the rest into 0 (timm's
``target_threshold``: both classes of a mixed pair count as present).
"""

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from rs3d.engine.mixup import one_hot_targets

# The losses ``build_loss`` offers for single-label data (TRAIN.LOSS).
LOSSES = ("ce", "bce")


class SoftTargetCrossEntropy(nn.Module):
    """Softmax cross-entropy of class indices (with label smoothing) or of soft target rows."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == 1:
            return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        return -(target.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(1).mean()


class SingleLabelBCE(nn.Module):
    """Mean over clips and classes of the binary cross-entropy of ``sigmoid(logits)`` against one-hot
    rows of the class indices (smoothed as timm does), or against soft target rows as given; with
    ``target_threshold``, targets binarised first."""

    def __init__(self, label_smoothing: float = 0.0, target_threshold: Optional[float] = None):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.target_threshold = target_threshold

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == 1:
            t = one_hot_targets(target, logits.shape[1], self.label_smoothing, logits.dtype)
        else:
            t = target.to(logits.dtype)
        if self.target_threshold is not None:
            t = (t > self.target_threshold).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, t)


class MultiLabelBCE(nn.Module):
    """Mean over classes and clips of the binary cross-entropy of ``sigmoid(logits)``.

    Targets are multi-hot ``[B, K]`` (any dtype; mixed rows from MixUp/CutMix too). Label smoothing
    follows timm's binary cross-entropy: a positive becomes ``1 - s + s/K``, a negative ``s/K``, so
    ``s`` means the same share of probability mass as in the single-label loss. With
    ``target_threshold``, the smoothed targets are binarised.
    """

    def __init__(self, label_smoothing: float = 0.0, target_threshold: Optional[float] = None):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.target_threshold = target_threshold

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape != logits.shape:
            raise ValueError(
                f"multi-label targets must be [B, K] like the logits {tuple(logits.shape)}, got {tuple(target.shape)}"
            )
        t = target.to(logits.dtype)
        if self.label_smoothing:
            off = self.label_smoothing / logits.shape[1]
            t = t * (1.0 - self.label_smoothing) + off
        if self.target_threshold is not None:
            t = (t > self.target_threshold).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, t)


def build_loss(
    label_smoothing: float = 0.0, multi_label: bool = False, loss: str = "ce", target_threshold: Optional[float] = None
) -> nn.Module:
    if multi_label:
        return MultiLabelBCE(label_smoothing, target_threshold)
    if loss == "bce":
        return SingleLabelBCE(label_smoothing, target_threshold)
    if loss == "ce":
        return SoftTargetCrossEntropy(label_smoothing)
    raise ValueError(f"TRAIN.LOSS={loss!r} is not allowed; choose one of {list(LOSSES)}")
