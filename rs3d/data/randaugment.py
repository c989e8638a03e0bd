"""RandAugment for clips: one draw of ops and magnitudes per clip, applied alike to every frame.

Built on torchvision's v2 ``RandAugment``, which takes a uint8 tensor ``[..., 3, H, W]`` as a batch of
images and draws its ops, magnitudes and signs once per call: a clip ``[T, 3, H, W]`` therefore gets
the same N ops with the same strengths on every frame, as Du et al. apply each augmentation to all
frames of a clip. AutoContrast and Equalize use each frame's own histogram (torchvision's per-image
rule), so frames that were equal stay equal.

Magnitude scale. The ResNet-RS paper's settings (2 ops; magnitude 10 at 160 px, 15 at 224-320 px,
20 above; appendix F) are on the scale of the TensorFlow RandAugment it used, where level 10 is each
op's nominal maximum (rotation 30 degrees, shear 0.3, solarize threshold 0) and higher levels go past
it (level 15: 45 degrees). torchvision's default reads a magnitude as one of 31 steps between 0 and
those maxima (15 -> 15 degrees), which would make the paper's setting half as strong. Here level L
is L/10 of torchvision's maximum for every op, extrapolated linearly above 10, with three bounds the
ops need: colour/contrast/brightness/sharpness factors stay in [0, 2], posterize keeps at least 1 bit,
the solarize threshold stays >= 0. Geometric ops use nearest-neighbour sampling and fill uncovered
pixels with grey 128, as the TensorFlow implementation does.

Randomness: torchvision draws from torch's global generator; :meth:`ClipRandAugment.__call__` runs
it under a forked generator seeded from the caller's ``numpy.random.Generator``, so a clip's draw is a
function of the dataset's (seed, epoch, index) key, whatever the worker count, and a resumed run
replays it.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from torchvision.transforms import v2

MAX_LEVEL = 10  # the TensorFlow / timm RandAugment level of each op's nominal maximum
FILL = 128  # TensorFlow RandAugment's fill for uncovered pixels
_ENHANCE = ("Brightness", "Color", "Contrast", "Sharpness")

Space = Dict[str, Tuple[Callable[[int, int, int], Optional[torch.Tensor]], bool]]


def _on_level_scale(name: str, fn) -> Callable[[int, int, int], Optional[torch.Tensor]]:
    """torchvision's magnitudes of op ``name`` re-read so that bin ``L`` is level ``L`` (L/10 of the
    maximum), for as many bins as asked, extrapolated past level 10 and bounded where the op must."""

    def levels(num_bins: int, height: int, width: int) -> Optional[torch.Tensor]:
        ref = fn(MAX_LEVEL + 1, height, width)
        if ref is None:
            return None
        ref = ref.double()
        values = ref[0] + (ref[-1] - ref[0]) / MAX_LEVEL * torch.arange(num_bins, dtype=torch.float64)
        if name in _ENHANCE:
            values = values.clamp(max=1.0)  # factor 1 +- v stays in [0, 2]
        elif name == "Posterize":
            return values.round().clamp(min=1).int()
        elif name == "Solarize":
            values = values.clamp(min=0.0)
        return values.float()

    return levels


class _LevelRandAugment(v2.RandAugment):
    """torchvision's RandAugment with the magnitude read on the TensorFlow level scale."""

    _AUGMENTATION_SPACE: Space = {
        name: (_on_level_scale(name, fn), signed) for name, (fn, signed) in v2.RandAugment._AUGMENTATION_SPACE.items()
    }


class ClipRandAugment:
    """``num_ops`` ops at ``magnitude`` (TensorFlow level scale, module docstring) for uint8 clips.

    ``clip(x, rng)``: ``x`` uint8 ``[3, T, H, W]`` (the datasets' layout) -> the same layout, one draw
    for all ``T`` frames, seeded from ``rng``.
    """

    def __init__(self, num_ops: int = 2, magnitude: int = 15):
        if num_ops < 1:
            raise ValueError(f"RandAugment needs num_ops >= 1, got {num_ops}")
        if magnitude < 0:
            raise ValueError(f"RandAugment magnitude must be >= 0, got {magnitude}")
        self.num_ops, self.magnitude = int(num_ops), int(magnitude)
        self.transform = _LevelRandAugment(
            num_ops=self.num_ops,
            magnitude=self.magnitude,
            num_magnitude_bins=max(self.magnitude, MAX_LEVEL) + 1,
            interpolation=v2.InterpolationMode.NEAREST,
            fill=FILL,
        )

    def __repr__(self) -> str:
        return f"ClipRandAugment(num_ops={self.num_ops}, magnitude={self.magnitude})"

    def frames(self, frames: torch.Tensor, seed: int) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]`` -> the same, every frame through the one draw of ``seed``."""
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"RandAugment takes uint8 frames [T, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(frames)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        seed = int(rng.integers(0, 2**63 - 1))
        return self.frames(clip.permute(1, 0, 2, 3), seed).permute(1, 0, 2, 3).contiguous()
