"""Requested indices -> the distinct frames to decode, and those frames back in the requested order."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

IndexFn = Callable[[int], np.ndarray]


def expand(frames: torch.Tensor, uniq: np.ndarray, inverse: np.ndarray, indices: np.ndarray) -> torch.Tensor:
    """Distinct decoded frames -> the requested order (no copy when they already are in it)."""
    if len(uniq) == len(indices) and np.array_equal(uniq, indices):
        return frames
    return frames[torch.from_numpy(inverse.reshape(-1))]


def wanted(index_fn: IndexFn, length: int):
    """``(indices, sorted distinct indices, inverse)`` for a video of ``length`` frames."""
    indices = np.asarray(index_fn(length), dtype=np.int64)
    uniq, inverse = np.unique(indices, return_inverse=True)
    return indices, uniq, inverse
