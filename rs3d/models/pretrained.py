"""A trained model as a folder other tools load: ``config.json`` + ``model.safetensors`` + ``classes.txt``.

The Hugging Face layout (as timm's ``pretrained_cfg`` and the Hub's ``config.json``): the
architecture and its constructor arguments, the class names and the preprocessing (clip and pixel
scaling) in ``config.json``, the weights in ``model.safetensors`` (no pickle, loads without running
code), the class names again one per line in ``classes.txt``. Written by ``rs3d-export`` or
:func:`save_pretrained`; read by :func:`load_pretrained_folder`, ``rs3d.load_model(FOLDER)``,
``rs3d.create_model(name, pretrained=FOLDER_OR_URL)`` and ``torch.hub.load`` (``hubconf.py``).

TorchScript and ONNX files carry the same description: :func:`export_torchscript` stores it as the
extra file ``rs3d_config.json``, :func:`export_onnx` as the model's ``rs3d_config`` metadata entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .. import file_io
from ..errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CLASSES_NAME = "classes.txt"
LIBRARY = "rs3d"
EXTRA_FILE = "rs3d_config.json"  # TorchScript extra file / ONNX metadata key (without .json)


def pretrained_config(
    model: nn.Module, class_names: Optional[Sequence[str]] = None, preprocessing: Optional[dict] = None, **extra: Any
) -> Dict[str, Any]:
    """``config.json``'s content for ``model`` (built by ``create_model``, which records its
    ``pretrained_cfg``): architecture, constructor arguments, classes, preprocessing, and ``extra``
    (the callers add ``rs3d_version``)."""
    spec = getattr(model, "pretrained_cfg", None)
    if not spec or "architecture" not in spec:
        raise CheckpointError(
            "the model has no pretrained_cfg (architecture and arguments): build it with "
            "rs3d.create_model or rs3d.build_model"
        )
    if class_names is not None and len(class_names) != spec["num_classes"]:
        raise CheckpointError(f"{len(class_names)} class names for a model of {spec['num_classes']} classes")
    return {
        "library": LIBRARY,
        "architecture": spec["architecture"],
        "num_classes": spec["num_classes"],
        "model_args": _plain(spec.get("model_args", {})),
        "class_names": list(class_names) if class_names else None,
        "preprocessing": _plain(preprocessing or {}),
        **_plain(extra),
    }


def _plain(x):
    """JSON-safe copy (tuples become lists)."""
    return json.loads(json.dumps(x))


def save_pretrained(
    model: nn.Module,
    folder: str,
    class_names: Optional[Sequence[str]] = None,
    preprocessing: Optional[dict] = None,
    **extra: Any,
) -> Dict[str, str]:
    """Write ``folder/{config.json, model.safetensors, classes.txt}``; returns the files' paths."""
    config = pretrained_config(model, class_names, preprocessing, **extra)
    os.makedirs(folder, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    files = {"config": os.path.join(folder, CONFIG_NAME), "weights": os.path.join(folder, WEIGHTS_NAME)}
    save_file(state, files["weights"], metadata={"format": "pt", "library": LIBRARY})
    file_io.atomic_write_text(files["config"], json.dumps(config, indent=2) + "\n")
    if config["class_names"]:
        files["classes"] = os.path.join(folder, CLASSES_NAME)
        file_io.atomic_write_text(files["classes"], "\n".join(config["class_names"]) + "\n")
    return files


def _fetch(location: str, name: str, cache: str) -> str:
    """``location/name`` as a local path (a URL is downloaded into ``cache``)."""
    if file_io.is_local(location):
        path = os.path.join(location, name)
        if not os.path.isfile(path):
            raise CheckpointError(f"{location}: no {name} (not a folder written by rs3d-export / save_pretrained)")
        return path
    local = os.path.join(cache, name)
    try:
        file_io.download(location.rstrip("/") + "/" + name, local)
    except OSError as e:
        raise CheckpointError(
            f"cannot download {location.rstrip('/')}/{name}: {' '.join(str(e).split())[:300]}"
        ) from None
    return local


def read_pretrained(location: str) -> tuple:
    """(config dict, state dict) of a folder or URL written by :func:`save_pretrained`."""
    with tempfile.TemporaryDirectory() as cache:
        config_path = _fetch(location, CONFIG_NAME, cache)
        try:
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{location}/{CONFIG_NAME}: not a JSON config ({e})") from None
        if not isinstance(config, dict) or config.get("library") != LIBRARY or "architecture" not in config:
            raise CheckpointError(f"{location}/{CONFIG_NAME}: not an rs3d model config (no library: rs3d)")
        weights = load_file(_fetch(location, WEIGHTS_NAME, cache))
    return config, weights


def load_pretrained_folder(location: str, create, name: Optional[str] = None, **overrides: Any) -> nn.Module:
    """The model of a folder/URL written by :func:`save_pretrained`, its weights loaded exactly, in
    eval mode, with ``pretrained_cfg`` set to the folder's config. ``create`` is
    ``rs3d.create_model``; ``name``, when given, must be the folder's architecture."""
    config, weights = read_pretrained(location)
    if name is not None and name != config["architecture"]:
        raise CheckpointError(f"{location} holds a {config['architecture']!r} model, not {name!r}")
    args = {**config.get("model_args", {}), **overrides}
    num_classes = args.pop("num_classes", config["num_classes"])
    model = create(config["architecture"], num_classes=num_classes, **args)
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{location}: weights do not fit {config['architecture']} "
            f"(missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})"
        )
    model.pretrained_cfg = dict(
        model.pretrained_cfg, **{k: v for k, v in config.items() if k != "model_args"}, source=str(location)
    )
    return model.eval()


def export_torchscript(model: nn.Module, path: str, config: dict) -> str:
    """TorchScript of ``model`` with ``config`` (:func:`pretrained_config`) as the extra file
    ``rs3d_config.json`` (read back with ``torch.jit.load(path, _extra_files={...})``)."""
    scripted = torch.jit.script(model.eval())
    torch.jit.save(scripted, path, _extra_files={EXTRA_FILE: json.dumps(config)})
    return path


def export_onnx(model: nn.Module, path: str, config: dict, example: torch.Tensor) -> str:
    """ONNX of ``model`` (traced on ``example``) with ``config`` as the metadata entry ``rs3d_config``."""
    import onnx

    torch.onnx.export(model.eval(), (example,), path, dynamo=True, input_names=["clip"], output_names=["logits"])
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = EXTRA_FILE[: -len(".json")], json.dumps(config)
    onnx.save(proto, path)
    return path
