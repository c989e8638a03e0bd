"""Configuration: defaults (every key) and loading with validation."""
from .defaults import get_cfg

__all__ = ["get_cfg"]
