"""3D building blocks that know nothing about configs."""

from .drop_path import DropPath, drop_path
from .se import SelfGating3d, SqueezeExcite3d

__all__ = ["DropPath", "drop_path", "SqueezeExcite3d", "SelfGating3d"]
