"""rs3d: 3D ResNet-RS for video classification.

``import rs3d; model = rs3d.create_model("resnet3d_rs50", num_classes=400)``;
``rs3d.load_model("exported/")`` for a model written by ``rs3d-export`` / ``rs3d.save_pretrained``.
"""

from typing import Optional, Sequence

from .models import ResNet3D, build_model, create_model, list_models
from .models import pretrained as _pretrained

__version__ = "0.1.0"
__all__ = ["ResNet3D", "create_model", "list_models", "build_model", "load_model", "save_pretrained", "__version__"]


def save_pretrained(
    model, folder: str, class_names: Optional[Sequence[str]] = None, preprocessing: Optional[dict] = None, **extra
) -> dict:
    """Write ``model`` (from ``create_model``/``load_model``) as ``folder/config.json``,
    ``model.safetensors`` and ``classes.txt``; ``preprocessing``: the clip and pixel scaling it
    expects (``rs3d-export`` fills it from the checkpoint). Returns the files' paths."""
    return _pretrained.save_pretrained(model, folder, class_names, preprocessing, rs3d_version=__version__, **extra)


def load_model(folder: str, **overrides):
    """The model of a folder or URL written by ``rs3d-export`` / :func:`save_pretrained`, in eval
    mode; ``model.pretrained_cfg`` holds its config (class names, preprocessing)."""
    return _pretrained.load_pretrained_folder(folder, create_model, **overrides)
