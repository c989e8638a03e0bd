"""Mixed precision: the autocast dtypes TRAIN.AMP_DTYPE names, and the autocast context."""

from __future__ import annotations

import torch

# TRAIN.AMP_DTYPE -> the dtype forward passes run in; "float16" also turns the gradient scaler on.
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def autocast(device: torch.device, dtype: torch.dtype):
    """``torch.autocast`` to ``dtype`` on ``device``; disabled (plain float32) for float32."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def inference_amp_dtype(amp_dtype: str, device: torch.device) -> torch.dtype:
    """The autocast dtype for using a trained model: the training precision (``TRAIN.AMP_DTYPE``)
    on a GPU, float32 elsewhere (on a CPU reduced precision only slows the forward pass)."""
    return AMP_DTYPES[amp_dtype] if device.type == "cuda" else torch.float32
