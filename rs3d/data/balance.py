"""Class-balanced training order (``DATA_LOADER.CLASS_BALANCED``) for skewed datasets.

Each epoch draws as many samples as the list holds, with replacement, each video with probability
proportional to ``1 / (videos of its class)``: every class is drawn equally often in expectation,
a rare class's videos repeat, a common class's are subsampled. The draw is a pure function of
``(seed, epoch)`` -- the same on every rank, which then takes its share, and the same after a
restart -- so DDP sharding and mid-epoch resume work as with the shuffled order
(:class:`rs3d.data.loader.TrainSampler`).
"""

from __future__ import annotations

from typing import List, Sequence

import torch


def class_balanced_weights(labels: Sequence[int]) -> torch.Tensor:
    """Per-sample weights ``1 / count(label)`` (float64, summing to the number of classes)."""
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    if labels_t.numel() == 0:
        raise ValueError("no labels to balance")
    counts = torch.bincount(labels_t)
    return 1.0 / counts[labels_t].double()


def balanced_order(weights: torch.Tensor, seed: int, epoch: int) -> List[int]:
    """``len(weights)`` indices drawn with replacement in proportion to ``weights``, seeded by
    ``seed + epoch`` (as the shuffled order is)."""
    g = torch.Generator().manual_seed(seed + epoch)
    return torch.multinomial(weights, len(weights), replacement=True, generator=g).tolist()
