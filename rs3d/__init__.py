"""rs3d: 3D ResNet-RS for video classification.

``import rs3d; model = rs3d.create_model("resnet3d_rs50", num_classes=400)``
"""
from .models import ResNet3D, build_model, create_model, list_models

__version__ = "0.1.0"
__all__ = ["ResNet3D", "create_model", "list_models", "build_model", "__version__"]
