"""Bring weights from elsewhere into rs3d models.

- PyTorchVideo (``pytorchvideo.models.hub.slow_r50`` state dicts and its model-zoo files, keys
  ``blocks.N...``, bare or under ``model_state``; PySlowFast's ``PTVResNet``, the same keys under
  ``model.``) and PySlowFast (``SLOW_8x8_R50`` checkpoints, keys ``s1.pathway0_stem...`` under
  ``model_state``) -> ``slow_r50``. The keys decide the format, never the wrapper.
- 2D ImageNet ResNets (timm ``resnetrs*`` / ``resnet*``) -> the matching 3D model by inflation:
  "center" puts the 2D kernel at the temporal centre (a clip of identical frames then gives the 2D
  network's output exactly); "mean" spreads it evenly over the temporal taps (I3D).
- rs3d's own checkpoints (``model`` / ``ema`` entries).

A classifier of another class count (fine-tuning on a new label set) is left at the model's own
initialisation and everything else is loaded; ``load_pretrained_report`` says what was loaded.
Weights that do not fit the model (another width, depth or class count) are refused with the
config keys they would fit (``fit_hint``).

Every file is read with ``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from .. import file_io
from ..errors import CheckpointError  # noqa: F401  (re-exported)
from ..file_io.integrity import check_torch_file
from .resnet3d import BLOCKS_PER_DEPTH
from .zoo import create_model, list_models, model_args

logger = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]

_BLOCK_PARTS_PTV = {
    "conv_a": "conv1",
    "norm_a": "bn1",
    "conv_b": "conv2",
    "norm_b": "bn2",
    "conv_c": "conv3",
    "norm_c": "bn3",
}
_BLOCK_PARTS_PYSF = {"a": "conv1", "a_bn": "bn1", "b": "conv2", "b_bn": "bn2", "c": "conv3", "c_bn": "bn3"}


@dataclass(frozen=True)
class _ResNetNaming:
    """How a source names a single-pathway ResNet's parameters; what tells PyTorchVideo's keys
    from PySlowFast's (the mapping to rs3d's is the same: :func:`_rs3d_key`)."""

    source: str
    stem: str  # regex: (part, parameter)
    stem_parts: Mapping[str, str]  # part -> rs3d's
    block: str  # regex: (stage, block, rest)
    stage_offset: int  # rs3d's layer number - the source's stage number
    shortcut: Tuple[str, str]  # the shortcut's conv and norm, as prefixes of rest
    parts: Mapping[str, str]  # branch2 part -> rs3d's
    head: str  # prefix of the classifier's parameters


_PTV_NAMING = _ResNetNaming(
    "PyTorchVideo",
    r"blocks\.0\.(conv|norm)\.(.*)",
    {"conv": "conv1", "norm": "bn1"},
    r"blocks\.([1-4])\.res_blocks\.(\d+)\.(.*)",
    0,
    ("branch1_conv.", "branch1_norm."),
    _BLOCK_PARTS_PTV,
    "blocks.5.proj.",
)
_PYSF_NAMING = _ResNetNaming(
    "PySlowFast",
    r"s1\.pathway0_stem\.(conv|bn)\.(.*)",
    {"conv": "conv1", "bn": "bn1"},
    r"s([2-5])\.pathway0_res(\d+)\.(.*)",
    -1,
    ("branch1.", "branch1_bn."),
    _BLOCK_PARTS_PYSF,
    "head.projection.",
)


def read_weights_file(path: str) -> object:
    """``torch.load`` with ``weights_only=True`` and a clear error for unsafe or broken files.

    ``path`` may be a URL or an object-store path (read through ``rs3d.file_io``)."""
    try:
        with file_io.open(path, "rb") as f:
            check_torch_file(f, path)  # zip CRCs (torch.load does not check them); not a torch file at all
            return torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        if not file_io.is_local(path):  # a download or an object store that failed
            raise CheckpointError(f"{path}: {e}") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain containers "
            f"(loading it would run code; re-save it as a plain state dict). Detail: {first}"
        ) from None
    except Exception as e:  # truncated zip, not a torch file, ...
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def strip_wrapper_prefixes(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Drop DDP's ``module.`` and torch.compile's ``_orig_mod.`` prefixes."""
    out = {}
    for k, v in sd.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def _rs3d_key(naming: _ResNetNaming, key: str) -> str:
    """The rs3d ``ResNet3D`` key of the source's parameter ``key``; CheckpointError when it has none."""
    if m := re.match(naming.stem, key):
        part, param = m.groups()
        return naming.stem_parts[part] + "." + param
    if m := re.match(naming.block, key):
        stage, block, rest = m.groups()
        prefix = f"layer{int(stage) + naming.stage_offset}.{block}."
        conv, norm = naming.shortcut
        if rest.startswith(conv):
            return prefix + "downsample.0." + rest[len(conv) :]
        if rest.startswith(norm):
            return prefix + "downsample.1." + rest[len(norm) :]
        if rest.startswith("branch2."):
            part, _, param = rest[len("branch2.") :].partition(".")
            if part in naming.parts:
                return prefix + naming.parts[part] + "." + param
    elif key.startswith(naming.head):
        return "fc." + key[len(naming.head) :]
    raise CheckpointError(f"{naming.source} key {key!r} has no rs3d counterpart")


def convert_pytorchvideo_resnet(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """PyTorchVideo ``create_resnet`` keys (``blocks.0.conv`` ...) -> rs3d ``ResNet3D`` keys."""
    return {_rs3d_key(_PTV_NAMING, k): v for k, v in strip_wrapper_prefixes(sd).items()}


def convert_pyslowfast_resnet(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """PySlowFast single-pathway ResNet keys (``s1.pathway0_stem.conv`` ...) -> rs3d keys."""
    return {_rs3d_key(_PYSF_NAMING, k): v for k, v in strip_wrapper_prefixes(sd).items()}


def inflate_kernel(weight2d: torch.Tensor, temporal_size: int, mode: str = "center") -> torch.Tensor:
    """[O, I, kh, kw] -> [O, I, kt, kh, kw]: "center" (zeros except the middle tap) or "mean" (w / kt each)."""
    if mode not in ("center", "mean"):
        raise ValueError(f"inflate_mode={mode!r} is not allowed; choose one of ['center', 'mean']")
    if mode == "mean":
        return weight2d.unsqueeze(2).repeat(1, 1, temporal_size, 1, 1) / temporal_size
    out = weight2d.new_zeros(weight2d.shape[:2] + (temporal_size,) + weight2d.shape[2:])
    out[:, :, temporal_size // 2] = weight2d
    return out


def inflate_state_dict(
    sd2d: Mapping[str, torch.Tensor], model: nn.Module, mode: str = "center", skip_classifier: bool = False
) -> StateDict:
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
            f"{missing[:5]}, {len(mismatched)} shape mismatch(es) {mismatched[:5]}"
        )
    return out


@dataclass(frozen=True)
class PretrainedLoad:
    """What ``load_pretrained_report`` put into the model."""

    path: str
    fmt: str  # "rs3d", "pytorchvideo", "pyslowfast" or "2d"
    loaded: int  # tensors copied from the file (parameters and buffers)
    total: int  # tensors in the model's state dict
    head: Optional[Tuple[int, int]] = None  # (file's classes, model's) when the classifier was left new
    weights: str = ""  # "ema" or "model" for an rs3d checkpoint

    def describe(self) -> str:
        src = f"{self.fmt}{', ' + self.weights + ' weights' if self.weights else ''}"
        text = f"{self.path} ({src}): {self.loaded} of {self.total} tensors loaded"
        if self.head is not None:
            text += (
                f"; new classifier for {self.head[1]} classes (the file's has {self.head[0]}), "
                "at its fresh initialisation"
            )
        return text


def _format_of(sd: Mapping[str, torch.Tensor]) -> str:
    """Which network the keys belong to: "pytorchvideo", "pyslowfast", "2d" or "rs3d"."""
    if any(k.startswith("blocks.0.") for k in sd):
        return "pytorchvideo"
    if any(k.startswith("s1.pathway0_stem.") for k in sd):
        return "pyslowfast"
    conv = sd.get("conv1.weight", sd.get("conv1.0.weight"))
    if conv is not None and conv.dim() == 4:
        return "2d"
    return "rs3d"


def _strip_ptv_module(sd: StateDict) -> StateDict:
    """PySlowFast's PyTorchVideo models (``PTVResNet``) hold the network as ``self.model``: their
    keys are ``model.blocks.N...``; the PyTorchVideo keys are what is under ``model.``."""
    if sd and all(k.startswith("model.") for k in sd) and any(k.startswith("model.blocks.0.") for k in sd):
        return {k[len("model.") :]: v for k, v in sd.items()}
    return sd


def _unwrap_which(obj: object, prefer_ema: bool) -> Tuple[StateDict, str, str]:
    """Find the state dict inside a checkpoint: (state dict, format, "ema"/"model" for an rs3d
    checkpoint else "").

    The wrapper (rs3d's ``model``/``ema``, PySlowFast's and PyTorchVideo's ``model_state``,
    ``state_dict``, ``model_state_dict``) only says where the weights are; the keys say whose
    network they are: PyTorchVideo's model zoo saves ``{"model_state": <PyTorchVideo keys>}``."""
    if not isinstance(obj, Mapping):
        raise CheckpointError("checkpoint is not a dict of tensors")
    if "model" in obj and isinstance(obj["model"], Mapping):  # rs3d (and many trainers)
        use_ema = prefer_ema and isinstance(obj.get("ema"), Mapping)
        which = "ema" if use_ema else "model"
        sd = _strip_ptv_module(strip_wrapper_prefixes(obj[which]))
        fmt = _format_of(sd)
        return sd, fmt, which if fmt == "rs3d" else ""
    for wrapper in ("model_state", "state_dict", "model_state_dict"):
        if wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
            break
    sd = _strip_ptv_module(strip_wrapper_prefixes(obj))
    return sd, _format_of(sd), ""


def _blocks_per_stage(sd: Mapping[str, torch.Tensor]) -> Tuple[int, ...]:
    blocks: Dict[int, set] = {}
    for k in sd:
        if m := re.match(r"layer(\d)\.(\d+)\.", k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return tuple(len(blocks[i]) for i in sorted(blocks))


def _fits(sd: Mapping[str, torch.Tensor], model: nn.Module) -> bool:
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    mine = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    return set(target) == set(mine) and all(tuple(mine[k].shape) == tuple(v.shape) for k, v in target.items())


def configs_that_fit(sd: Mapping[str, torch.Tensor]) -> List[str]:
    """``MODEL.ARCH a MODEL.WIDTH_MULTIPLIER w MODEL.NUM_CLASSES c`` for every registered model
    these rs3d-keyed weights fit exactly (models built on the meta device: no memory, no time)."""
    fc = sd.get("fc.weight")
    if fc is None or fc.dim() != 2:
        return []
    classes, features = int(fc.shape[0]), int(fc.shape[1])
    stages = _blocks_per_stage(sd)
    fits = []
    for name in list_models():
        if BLOCKS_PER_DEPTH.get(model_args(name)["depth"]) != stages:
            continue
        with torch.device("meta"):
            width = features / create_model(name, num_classes=classes).fc.in_features
            if _fits(sd, create_model(name, num_classes=classes, width_multiplier=width)):
                fits.append(f"MODEL.ARCH {name} MODEL.WIDTH_MULTIPLIER {width:g} MODEL.NUM_CLASSES {classes}")
    return fits


def fit_hint(sd: Mapping[str, torch.Tensor]) -> str:
    """What to set so the model fits these weights (one clause of an error message)."""
    fits = configs_that_fit(sd)
    if fits:
        return "the file fits " + " or ".join(fits)
    fc = sd.get("fc.weight")
    stages = _blocks_per_stage(sd)
    depth = [d for d, b in BLOCKS_PER_DEPTH.items() if b == stages]
    facts = [f"blocks per stage {list(stages)}" + (f" (depth {depth[0]})" if depth else "")] if stages else []
    if fc is not None and fc.dim() == 2:
        facts.append(f"{fc.shape[1]} features into {fc.shape[0]} classes (MODEL.NUM_CLASSES {fc.shape[0]})")
    return "no registered MODEL.ARCH fits it" + (f"; the file has {', '.join(facts)}" if facts else "")


def _mismatches(sd: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> List[str]:
    return [
        f"{k} {tuple(v.shape)} in the file, {tuple(target[k].shape)} in the model"
        for k, v in sd.items()
        if k in target and tuple(v.shape) != tuple(target[k].shape)
    ]


def load_pretrained(
    model: nn.Module,
    path: str,
    inflate: bool = False,
    inflate_mode: str = "center",
    prefer_ema: bool = True,
    strict: bool = True,
) -> str:
    """Load rs3d / PyTorchVideo / PySlowFast / (with ``inflate``) 2D timm weights into ``model``.

    A classifier whose shape differs (another label set) is left at its initialisation with a
    warning, so a checkpoint can initialise fine-tuning. Returns the detected format.
    """
    return load_pretrained_report(model, path, inflate, inflate_mode, prefer_ema, strict).fmt


def load_pretrained_report(
    model: nn.Module,
    path: str,
    inflate: bool = False,
    inflate_mode: str = "center",
    prefer_ema: bool = True,
    strict: bool = True,
) -> PretrainedLoad:
    """``load_pretrained``, returning what was loaded (format, tensor count, a new classifier)."""
    sd, fmt, weights = _unwrap_which(read_weights_file(path), prefer_ema)
    if fmt == "pytorchvideo":
        sd = convert_pytorchvideo_resnet(sd)
    elif fmt == "pyslowfast":
        sd = convert_pyslowfast_resnet(sd)
    elif fmt == "2d":
        if not inflate:
            raise CheckpointError(
                f"{path}: holds 2D weights; set TRAIN.CHECKPOINT_INFLATE True (inflate=True) "
                f"to inflate them into the 3D model"
            )
    target = model.state_dict()
    whole = sd  # with its classifier: what the file fits is said from all of it
    fc_w = sd.get("fc.weight")
    skip_fc = fc_w is not None and "fc.weight" in target and fc_w.shape[0] != target["fc.weight"].shape[0]
    if fmt == "2d":
        sd = inflate_state_dict(sd, model, inflate_mode, skip_classifier=skip_fc)
    if skip_fc:
        logger.warning(
            "%s: classifier has %d classes, the model %d: keeping the model's new classifier",
            path,
            fc_w.shape[0],
            target["fc.weight"].shape[0],
        )
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    mismatched = _mismatches(sd, target)
    if mismatched:
        raise CheckpointError(
            f"{path} ({fmt}): does not match the model: {len(mismatched)} shape mismatch(es), "
            f"e.g. {mismatched[0]}; {fit_hint(whole)}"
        )
    result = model.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if not (skip_fc and k.startswith("fc."))]
    if strict and (missing or result.unexpected_keys):
        raise CheckpointError(
            f"{path} ({fmt}): does not match the model: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {result.unexpected_keys[:5]}; "
            f"{fit_hint(whole)}"
        )
    unexpected = set(result.unexpected_keys)
    loaded = sum(1 for k in sd if k in target and k not in unexpected)
    head = (int(fc_w.shape[0]), int(target["fc.weight"].shape[0])) if skip_fc else None
    return PretrainedLoad(path=path, fmt=fmt, loaded=loaded, total=len(target), head=head, weights=weights)
