"""Training loss: cross-entropy with label smoothing (0.1 in the recipe)."""
from torch import nn


def build_loss(label_smoothing: float = 0.0) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
