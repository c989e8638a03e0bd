"""The display matrix: how a player turns the stored frames before showing them.

Phones store frames as the sensor delivers them and write a display matrix saying how to show
them: a rotation by a multiple of 90 degrees, sometimes with a mirror. ffmpeg applies it by
default (``-noautorotate`` turns it off), choosing a transpose and flips from the matrix
(``fftools``); rs3d follows the same rules, so frame ``i`` has the size and orientation that
ffmpeg shows. A rotation by any other angle is refused rather than guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ...errors import DecodeError

Matrix = Tuple[int, ...]  # the 9 int32 of FFmpeg's display matrix (16.16 fixed point for 0, 1, 3, 4)


@dataclass(frozen=True)
class Orientation:
    """Swap rows and columns first (``transpose``), then mirror left-right and/or top-bottom."""

    transpose: bool = False
    hflip: bool = False
    vflip: bool = False

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.hflip or self.vflip)

    def apply(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[N, H, W, C]`` as shown (a new contiguous tensor unless nothing changes)."""
        if self.identity:
            return frames
        x = frames.transpose(1, 2) if self.transpose else frames
        dims = [d for d, on in ((2, self.hflip), (1, self.vflip)) if on]
        return (x.flip(dims) if dims else x).contiguous()  # flip keeps a transposed layout


UPRIGHT = Orientation()


def _c_round(x: float) -> float:
    return math.copysign(math.floor(abs(x) + 0.5), x)  # C's round(): halves away from zero


def clockwise_degrees(m: Sequence[int]) -> Optional[float]:
    """The rotation ffmpeg reads from the matrix, clockwise in [0, 360); None if degenerate."""
    a, b, c, d = (m[i] / 65536.0 for i in (0, 1, 3, 4))
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0 or s1 == 0:
        return None
    theta = _c_round(math.degrees(math.atan2(b / s1, a / s0)))
    return theta - 360 * math.floor(theta / 360 + 0.9 / 360)


def orientation_of(matrix: Optional[Matrix]) -> Orientation:
    """What ffmpeg does to frames carrying ``matrix`` (None: no matrix, shown as stored).

    Raises :class:`DecodeError` for a rotation that is not a multiple of 90 degrees (ffmpeg would
    rotate the picture inside a frame of the stored size, filling the corners).
    """
    if matrix is None:
        return UPRIGHT
    theta = clockwise_degrees(matrix)
    if theta is None:
        return UPRIGHT  # ffmpeg ignores a degenerate matrix
    m3, m0, m4 = matrix[3], matrix[0], matrix[4]
    if abs(theta - 90) < 1:
        return Orientation(transpose=True) if m3 > 0 else Orientation(transpose=True, hflip=True)
    if abs(theta - 180) < 1:
        return Orientation(hflip=m0 < 0, vflip=m4 < 0)
    if abs(theta - 270) < 1:
        return Orientation(transpose=True, hflip=m3 < 0, vflip=True)
    if abs(theta) > 1:
        raise DecodeError(
            f"display matrix rotates the picture by {(360 - theta) % 360:g} degrees "
            "counter-clockwise, not a multiple of 90; only autorotate=False (the stored "
            "frames) can read it"
        )
    return Orientation(vflip=m4 < 0)


def display_matrix(frame) -> Optional[Matrix]:
    """The display matrix a decoded PyAV frame carries (FFmpeg copies the stream's onto each frame)."""
    for sd in frame.side_data:
        if getattr(sd.type, "name", str(sd.type)).endswith("DISPLAYMATRIX"):
            return tuple(int(v) for v in np.frombuffer(bytes(sd), "<i4")[:9])
    return None
