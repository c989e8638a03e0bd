"""3D ResNet-RS model zoo."""

from .resnet3d import BLOCKS_PER_DEPTH, Bottleneck3D, ResNet3D, avg_shortcut, conv_shortcut, stage_drop_path_rates
from .zoo import build_model, create_model, list_models, model_args, model_overrides, model_source

__all__ = [
    "ResNet3D",
    "Bottleneck3D",
    "BLOCKS_PER_DEPTH",
    "stage_drop_path_rates",
    "conv_shortcut",
    "avg_shortcut",
    "create_model",
    "list_models",
    "model_args",
    "model_overrides",
    "build_model",
    "model_source",
]
