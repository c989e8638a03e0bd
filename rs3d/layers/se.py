"""Channel attention used by 3D ResNet-RS: Squeeze-Excitation and S3D-G self-gating."""

import torch
from torch import nn


class SqueezeExcite3d(nn.Module):
    """Mean over (T, H, W) -> 1x1x1 conv -> ReLU -> 1x1x1 conv -> sigmoid -> rescale channels.

    Attribute names (``fc1``, ``fc2``) follow timm's ``SEModule`` so 2D weights map one to one.
    """

    def __init__(self, channels: int, reduced_channels: int):
        super().__init__()
        self.fc1 = nn.Conv3d(channels, reduced_channels, kernel_size=1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(reduced_channels, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3, 4), keepdim=True)
        s = self.fc2(self.act(self.fc1(s)))
        return x * torch.sigmoid(s)


class SelfGating3d(nn.Module):
    """S3D-G feature gating: global average pool -> 1x1x1 conv (with bias) -> sigmoid -> rescale.

    Unlike SE there is no bottleneck: one full-rank linear map of the pooled channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv3d(channels, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean((2, 3, 4), keepdim=True)))
