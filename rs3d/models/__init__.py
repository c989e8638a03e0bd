"""3D ResNet-RS model zoo."""
from .resnet3d import BLOCKS_PER_DEPTH, Bottleneck3D, ResNet3D, stage_drop_path_rates
from .zoo import build_model, create_model, list_models, model_source

__all__ = ["ResNet3D", "Bottleneck3D", "BLOCKS_PER_DEPTH", "stage_drop_path_rates",
           "create_model", "list_models", "build_model", "model_source"]
