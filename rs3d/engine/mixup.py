"""MixUp / CutMix of training clips, with soft targets (``MIXUP.*``; ResNet strikes back uses both).

A batch is mixed with itself reversed (clip ``i`` with clip ``B-1-i``), as timm's and PySlowFast's
"batch" mode do: one lambda and, for CutMix, one spatial box for the batch, the same on every frame
of every clip (a box that moved from frame to frame would cut through the motion). CutMix's lambda
is then the share of pixels actually kept once the box is clipped to the frame, so the targets say
what the clip shows. The targets of a mixed pair are ``lam * a + (1 - lam) * b`` of the clips'
targets: label-smoothed one-hot rows for single-label data (they sum to one), multi-hot rows for
multi-label data. Labels arrive already flipped with the clip (``DATA.FLIP_LABEL_MAP``), so a
mirrored clip mixes in its mirrored class.

Every draw comes from a ``numpy.random.Generator`` the training loop derives from (RNG_SEED, epoch,
step, micro-batch, rank): a resumed run mixes exactly as the uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch


@dataclass(frozen=True)
class MixDraw:
    """What one batch gets: ``kind`` "mixup", "cutmix" or "none"; ``lam`` the weight of the batch
    itself; ``box`` (top, bottom, left, right) of the pasted region for CutMix."""

    kind: str
    lam: float
    box: Optional[Tuple[int, int, int, int]] = None


def one_hot_targets(
    labels: torch.Tensor, num_classes: int, smoothing: float = 0.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Class indices ``[B]`` -> float rows ``[B, K]``: ``1 - s + s/K`` on the class, ``s/K`` elsewhere
    (the label smoothing of cross-entropy, written out; rows sum to one)."""
    off = smoothing / num_classes
    t = torch.full((labels.shape[0], num_classes), off, dtype=dtype, device=labels.device)
    return t.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """A box covering about ``1 - lam`` of the frame, centred anywhere, clipped to the frame."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    return (
        int(np.clip(cy - ch // 2, 0, height)),
        int(np.clip(cy + ch // 2, 0, height)),
        int(np.clip(cx - cw // 2, 0, width)),
        int(np.clip(cx + cw // 2, 0, width)),
    )


class ClipMix:
    """``mix(x, labels, rng)`` -> ``(mixed clips, soft targets [B, K])``.

    ``x``: float clips ``[B, C, T, H, W]`` (mixed in place); ``labels``: class indices ``[B]`` or
    multi-hot ``[B, K]``. ``smoothing`` applies to class indices (multi-label targets are smoothed
    by their loss).
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        smoothing: float = 0.0,
    ):
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("MixUp/CutMix needs MIXUP.ALPHA or MIXUP.CUTMIX_ALPHA > 0")
        self.num_classes = int(num_classes)
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob, self.smoothing = float(prob), float(switch_prob), float(smoothing)

    def draw(self, height: int, width: int, rng: np.random.Generator) -> MixDraw:
        """The batch's draw (always the same number of draws from ``rng``, whatever is chosen)."""
        u_apply, u_switch = rng.random(), rng.random()
        lam_mixup = rng.beta(self.mixup_alpha, self.mixup_alpha) if self.mixup_alpha > 0 else 1.0
        lam_cutmix = rng.beta(self.cutmix_alpha, self.cutmix_alpha) if self.cutmix_alpha > 0 else 1.0
        box = cutmix_box(height, width, float(lam_cutmix), rng)
        if u_apply >= self.prob:
            return MixDraw("none", 1.0)
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or u_switch < self.switch_prob)
        if not use_cutmix:
            return MixDraw("mixup", float(lam_mixup))
        top, bottom, left, right = box
        kept = 1.0 - (bottom - top) * (right - left) / float(height * width)
        return MixDraw("cutmix", kept, box)

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.dim() == 1:
            return one_hot_targets(labels, self.num_classes, self.smoothing)
        return labels.float()

    def apply(self, x: torch.Tensor, labels: torch.Tensor, d: MixDraw) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix ``x`` (in place) and the targets of ``labels`` as ``d`` says."""
        t = self.targets(labels)
        if d.kind == "none":
            return x, t
        if d.kind == "mixup":
            partner = x.flip(0).mul_(1.0 - d.lam)  # a copy, taken before x is scaled in place
            x.mul_(d.lam).add_(partner)
        else:
            top, bottom, left, right = d.box
            x[..., top:bottom, left:right] = x.flip(0)[..., top:bottom, left:right]
        return x, t.mul(d.lam).add_(t.flip(0), alpha=1.0 - d.lam)

    def __call__(
        self, x: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.apply(x, labels, self.draw(x.shape[-2], x.shape[-1], rng))


def batch_rng(seed: int, epoch: int, iteration: int, micro: int, rank: int) -> np.random.Generator:
    """The generator of one micro-batch's mix: a pure function of where it is in the run."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, epoch, iteration, micro, rank, 0x6D6978])


def build_mix(cfg) -> Optional[ClipMix]:
    """``ClipMix`` from ``MIXUP.*`` (None when off); label smoothing from TRAIN.LABEL_SMOOTHING."""
    m = cfg.MIXUP
    if not m.ENABLE:
        return None
    smoothing = 0.0 if cfg.DATA.MULTI_LABEL else cfg.TRAIN.LABEL_SMOOTHING
    return ClipMix(cfg.MODEL.NUM_CLASSES, m.ALPHA, m.CUTMIX_ALPHA, m.PROB, m.SWITCH_PROB, smoothing)
