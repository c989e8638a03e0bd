"""Training loss: cross-entropy with label smoothing (0.1 in the recipe), or for multi-label data
(``DATA.MULTI_LABEL``) a sigmoid + binary cross-entropy per class."""
import torch
from torch import nn
from torch.nn import functional as F


class MultiLabelBCE(nn.Module):
    """Mean over classes and clips of the binary cross-entropy of ``sigmoid(logits)``.

    Targets are multi-hot ``[B, K]`` (any dtype). Label smoothing follows timm's binary
    cross-entropy: a positive becomes ``1 - s + s/K``, a negative ``s/K``, so ``s`` means the same
    share of probability mass as in the single-label loss.
    """

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape != logits.shape:
            raise ValueError(f"multi-label targets must be [B, K] like the logits {tuple(logits.shape)}, "
                             f"got {tuple(target.shape)}")
        t = target.to(logits.dtype)
        if self.label_smoothing:
            off = self.label_smoothing / logits.shape[1]
            t = t * (1.0 - self.label_smoothing) + off
        return F.binary_cross_entropy_with_logits(logits, t)


def build_loss(label_smoothing: float = 0.0, multi_label: bool = False) -> nn.Module:
    if multi_label:
        return MultiLabelBCE(label_smoothing)
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
