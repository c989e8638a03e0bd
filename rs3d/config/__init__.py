"""Configuration: defaults (every key) and loading with validation."""

from .defaults import get_cfg
from .load import ConfigError, check_data_dir, load_config, missing_data, save_config, validate

__all__ = ["get_cfg", "load_config", "save_config", "validate", "check_data_dir", "missing_data", "ConfigError"]
