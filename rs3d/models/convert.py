"""Bring weights from elsewhere into rs3d models.

- PyTorchVideo (``pytorchvideo.models.hub.slow_r50`` state dicts, keys ``blocks.N...``) and PySlowFast
  (``SLOW_8x8_R50`` checkpoints, keys ``s1.pathway0_stem...`` under ``model_state``) -> ``slow_r50``.
- 2D ImageNet ResNets (timm ``resnetrs*`` / ``resnet*``) -> the matching 3D model by inflation:
  "center" puts the 2D kernel at the temporal centre (a clip of identical frames then gives the 2D
  network's output exactly); "mean" spreads it evenly over the temporal taps (I3D).
- rs3d's own checkpoints (``model`` / ``ema`` entries).

A classifier of another class count (fine-tuning on a new label set) is left at the model's own
initialisation and everything else is loaded; ``load_pretrained_report`` says what was loaded.

Every file is read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""
from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from .. import io
from ..errors import CheckpointError  # noqa: F401  (re-exported)
from ..io.integrity import check_torch_file

logger = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]

_BLOCK_PARTS_PTV = {"conv_a": "conv1", "norm_a": "bn1", "conv_b": "conv2", "norm_b": "bn2",
                    "conv_c": "conv3", "norm_c": "bn3"}
_BLOCK_PARTS_PYSF = {"a": "conv1", "a_bn": "bn1", "b": "conv2", "b_bn": "bn2", "c": "conv3", "c_bn": "bn3"}



def read_weights_file(path: str) -> object:
    """``torch.load`` with ``weights_only=True`` and a clear error for unsafe or broken files.

    ``path`` may be a URL or an object-store path (read through ``rs3d.io``)."""
    try:
        with io.open(path, "rb") as f:
            check_torch_file(f, path)  # zip CRCs (torch.load does not check them); not a torch file at all
            return torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        if not io.is_local(path):  # a download or an object store that failed
            raise CheckpointError(f"{path}: {e}") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain containers "
            f"(loading it would run code; re-save it as a plain state dict). Detail: {first}") from None
    except Exception as e:  # truncated zip, not a torch file, ...
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def strip_wrapper_prefixes(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Drop DDP's ``module.`` and torch.compile's ``_orig_mod.`` prefixes."""
    out = {}
    for k, v in sd.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def convert_pytorchvideo_resnet(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """PyTorchVideo ``create_resnet`` keys (``blocks.0.conv`` ...) -> rs3d ``ResNet3D`` keys."""
    out: StateDict = {}
    for key, value in strip_wrapper_prefixes(sd).items():
        if key.startswith("blocks.0."):
            rest = key[len("blocks.0."):]
            new = rest.replace("conv.", "conv1.", 1) if rest.startswith("conv.") else rest.replace("norm.", "bn1.", 1)
        elif m := re.match(r"blocks\.([1-4])\.res_blocks\.(\d+)\.(.*)", key):
            stage, block, rest = m.groups()
            prefix = f"layer{stage}.{block}."
            if rest.startswith("branch1_conv."):
                new = prefix + "downsample.0." + rest[len("branch1_conv."):]
            elif rest.startswith("branch1_norm."):
                new = prefix + "downsample.1." + rest[len("branch1_norm."):]
            elif rest.startswith("branch2."):
                part, _, param = rest[len("branch2."):].partition(".")
                if part not in _BLOCK_PARTS_PTV:
                    raise CheckpointError(f"PyTorchVideo key {key!r} has no rs3d counterpart")
                new = prefix + _BLOCK_PARTS_PTV[part] + "." + param
            else:
                raise CheckpointError(f"PyTorchVideo key {key!r} has no rs3d counterpart")
        elif key.startswith("blocks.5.proj."):
            new = "fc." + key[len("blocks.5.proj."):]
        else:
            raise CheckpointError(f"PyTorchVideo key {key!r} has no rs3d counterpart")
        out[new] = value
    return out


def convert_pyslowfast_resnet(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """PySlowFast single-pathway ResNet keys (``s1.pathway0_stem.conv`` ...) -> rs3d keys."""
    out: StateDict = {}
    for key, value in strip_wrapper_prefixes(sd).items():
        if m := re.match(r"s1\.pathway0_stem\.(conv|bn)\.(.*)", key):
            part, param = m.groups()
            new = ("conv1." if part == "conv" else "bn1.") + param
        elif m := re.match(r"s([2-5])\.pathway0_res(\d+)\.(.*)", key):
            stage, block, rest = m.groups()
            prefix = f"layer{int(stage) - 1}.{block}."
            if rest.startswith("branch1."):
                new = prefix + "downsample.0." + rest[len("branch1."):]
            elif rest.startswith("branch1_bn."):
                new = prefix + "downsample.1." + rest[len("branch1_bn."):]
            elif rest.startswith("branch2."):
                part, _, param = rest[len("branch2."):].partition(".")
                if part not in _BLOCK_PARTS_PYSF:
                    raise CheckpointError(f"PySlowFast key {key!r} has no rs3d counterpart")
                new = prefix + _BLOCK_PARTS_PYSF[part] + "." + param
            else:
                raise CheckpointError(f"PySlowFast key {key!r} has no rs3d counterpart")
        elif key.startswith("head.projection."):
            new = "fc." + key[len("head.projection."):]
        else:
            raise CheckpointError(f"PySlowFast key {key!r} has no rs3d counterpart")
        out[new] = value
    return out


def inflate_kernel(weight2d: torch.Tensor, temporal_size: int, mode: str = "center") -> torch.Tensor:
    """[O, I, kh, kw] -> [O, I, kt, kh, kw]: "center" (zeros except the middle tap) or "mean" (w / kt each)."""
    if mode not in ("center", "mean"):
        raise ValueError(f"inflate_mode={mode!r} is not allowed; choose one of ['center', 'mean']")
    if mode == "mean":
        return weight2d.unsqueeze(2).repeat(1, 1, temporal_size, 1, 1) / temporal_size
    out = weight2d.new_zeros(weight2d.shape[:2] + (temporal_size,) + weight2d.shape[2:])
    out[:, :, temporal_size // 2] = weight2d
    return out


def inflate_state_dict(sd2d: Mapping[str, torch.Tensor], model: nn.Module, mode: str = "center",
                       skip_classifier: bool = False) -> StateDict:
    """Turn a 2D ResNet state dict with the same key names (timm / torchvision) into ``model``'s 3D one.

    Raises a ``CheckpointError`` naming the keys that are missing or do not match in shape.
    """
    sd2d = strip_wrapper_prefixes(sd2d)
    target = model.state_dict()
    out: StateDict = {}
    missing, mismatched = [], []
    for key, ref in target.items():
        if skip_classifier and key.startswith("fc."):
            continue
        if key not in sd2d:
            if key.endswith("num_batches_tracked"):
                continue
            missing.append(key)
            continue
        src = sd2d[key]
        if ref.dim() == 5 and src.dim() == 4:
            if src.shape != ref.shape[:2] + ref.shape[3:]:
                mismatched.append(f"{key} {tuple(src.shape)} vs {tuple(ref.shape)}")
                continue
            src = inflate_kernel(src, ref.shape[2], mode)
        elif src.shape != ref.shape:
            mismatched.append(f"{key} {tuple(src.shape)} vs {tuple(ref.shape)}")
            continue
        out[key] = src.to(ref.dtype)
    if missing or mismatched:
        raise CheckpointError(
            f"2D checkpoint does not match the 3D model: {len(missing)} missing key(s) "
            f"{missing[:5]}, {len(mismatched)} shape mismatch(es) {mismatched[:5]}")
    return out


@dataclass(frozen=True)
class PretrainedLoad:
    """What ``load_pretrained_report`` put into the model."""
    path: str
    fmt: str                    # "rs3d", "pytorchvideo", "pyslowfast" or "2d"
    loaded: int                 # tensors copied from the file (parameters and buffers)
    total: int                  # tensors in the model's state dict
    head: Optional[Tuple[int, int]] = None  # (file's classes, model's) when the classifier was left new
    weights: str = ""           # "ema" or "model" for an rs3d checkpoint

    def describe(self) -> str:
        src = f"{self.fmt}{', ' + self.weights + ' weights' if self.weights else ''}"
        text = f"{self.path} ({src}): {self.loaded} of {self.total} tensors loaded"
        if self.head is not None:
            text += (f"; new classifier for {self.head[1]} classes (the file's has {self.head[0]}), "
                     "at its fresh initialisation")
        return text


def _unwrap_which(obj: object, prefer_ema: bool) -> Tuple[StateDict, str, str]:
    """Find the state dict inside a checkpoint: (state dict, format, "ema"/"model" for an rs3d
    checkpoint else "")."""
    if not isinstance(obj, Mapping):
        raise CheckpointError("checkpoint is not a dict of tensors")
    if "model" in obj and isinstance(obj["model"], Mapping):  # rs3d (and many trainers)
        use_ema = prefer_ema and isinstance(obj.get("ema"), Mapping)
        which = "ema" if use_ema else "model"
        return strip_wrapper_prefixes(obj[which]), "rs3d", which
    if "model_state" in obj:  # PySlowFast
        return strip_wrapper_prefixes(obj["model_state"]), "pyslowfast", ""
    for wrapper in ("state_dict", "model_state_dict"):
        if wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
            break
    sd = strip_wrapper_prefixes(obj)
    if any(k.startswith("blocks.0.") for k in sd):
        return sd, "pytorchvideo", ""
    if any(k.startswith("s1.pathway0_stem.") for k in sd):
        return sd, "pyslowfast", ""
    conv = sd.get("conv1.weight", sd.get("conv1.0.weight"))
    if conv is not None and conv.dim() == 4:
        return sd, "2d", ""
    return sd, "rs3d", ""


def load_pretrained(model: nn.Module, path: str, inflate: bool = False, inflate_mode: str = "center",
                    prefer_ema: bool = True, strict: bool = True) -> str:
    """Load rs3d / PyTorchVideo / PySlowFast / (with ``inflate``) 2D timm weights into ``model``.

    A classifier whose shape differs (another label set) is left at its initialisation with a
    warning, so a checkpoint can initialise fine-tuning. Returns the detected format.
    """
    return load_pretrained_report(model, path, inflate, inflate_mode, prefer_ema, strict).fmt


def load_pretrained_report(model: nn.Module, path: str, inflate: bool = False, inflate_mode: str = "center",
                           prefer_ema: bool = True, strict: bool = True) -> PretrainedLoad:
    """``load_pretrained``, returning what was loaded (format, tensor count, a new classifier)."""
    sd, fmt, weights = _unwrap_which(read_weights_file(path), prefer_ema)
    if fmt == "pytorchvideo":
        sd = convert_pytorchvideo_resnet(sd)
    elif fmt == "pyslowfast":
        sd = convert_pyslowfast_resnet(sd)
    elif fmt == "2d":
        if not inflate:
            raise CheckpointError(f"{path}: holds 2D weights; set TRAIN.CHECKPOINT_INFLATE True (inflate=True) "
                                  f"to inflate them into the 3D model")
    target = model.state_dict()
    fc_w = sd.get("fc.weight")
    skip_fc = fc_w is not None and "fc.weight" in target and fc_w.shape[0] != target["fc.weight"].shape[0]
    if fmt == "2d":
        sd = inflate_state_dict(sd, model, inflate_mode, skip_classifier=skip_fc)
    if skip_fc:
        logger.warning("%s: classifier has %d classes, the model %d: keeping the model's new classifier",
                       path, fc_w.shape[0], target["fc.weight"].shape[0])
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    try:
        result = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{path} ({fmt}): does not match the model: {str(e).splitlines()[-1].strip()}") from None
    missing = [k for k in result.missing_keys if not (skip_fc and k.startswith("fc."))]
    if strict and (missing or result.unexpected_keys):
        raise CheckpointError(f"{path} ({fmt}): does not match the model: missing {missing[:5]}"
                              f"{'...' if len(missing) > 5 else ''}, unexpected {result.unexpected_keys[:5]}")
    unexpected = set(result.unexpected_keys)
    loaded = sum(1 for k in sd if k in target and k not in unexpected)
    head = (int(fc_w.shape[0]), int(target["fc.weight"].shape[0])) if skip_fc else None
    return PretrainedLoad(path=path, fmt=fmt, loaded=loaded, total=len(target), head=head, weights=weights)
