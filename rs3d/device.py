"""The one default-device rule: the device asked for, else CUDA when a GPU is visible, else the CPU.

Training (``rs3d.engine.distributed``), the data loader's decision to resize test frames on the
device, and every tool that uses a trained model pick the device through this function.
"""

from __future__ import annotations

from typing import Optional

import torch


def default_device_name(requested: Optional[str] = "") -> str:
    """``requested`` (e.g. ``cfg.DEVICE`` or a ``--device`` flag) if set, else "cuda" or "cpu"."""
    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def default_device(requested: Optional[str] = "") -> torch.device:
    """:func:`default_device_name` as a ``torch.device``."""
    return torch.device(default_device_name(requested))
