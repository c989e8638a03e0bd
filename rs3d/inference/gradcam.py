"""Grad-CAM for 3D CNNs: where in space and time a stage's features drove a class's score.

For a stage output ``A`` ``[C, T', H', W']`` and the logit ``y_c`` of class ``c`` (Selvaraju et
al. 2017, extended over time as PySlowFast and MMAction2 do)::

    w_k = mean over (t, h, w) of d y_c / d A_k          one weight per channel
    map = ReLU(sum_k w_k A_k)                            [T', H', W']
        --trilinear--> the clip's [T, H, W], scaled to [0, 1]

The default layer (``auto``, :func:`choose_layer`) is the deepest stage whose map is at least
7x7 in space at the clip's size (res5 of a 224-pixel clip, res4 or res3 of a small one), or, if
none is, the stage with the largest map; the choice and the map's size are reported. A deeper stage
is more class-specific, but a 1x1 map can only tint whole frames. Outputs: an MP4 and/or a GIF of
the clip with the map over it, and a PNG strip of a few frames (clip above, overlay below) with a
colour bar. :func:`mass_in_boxes` measures how much of a map lies inside known object boxes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from rs3d.data import VideoRecord, to_model_input, views_of
from rs3d.data.loader import multiview_dataset
from rs3d.data.synthetic import write_video

from ..errors import ConfigError, DecodeError
from .layers import DEFAULT_LAYER, LOGITS, forward_with_layer, resolve_layer
from .model import load_model


@dataclass
class GradCamResult:
    cam: np.ndarray  # float32 [T, H, W] in [0, 1], at the clip's size
    layer_map: np.ndarray  # float32 [T', H', W'], the map at the layer's resolution (unscaled)
    class_index: int
    score: float  # probability of that class (softmax, or its sigmoid on multi-label data)
    probs: np.ndarray  # float64 [K], all classes
    layer: str


AUTO_LAYER = "auto"
MIN_MAP_SIDE = 7  # the smallest spatial map (H' and W') the automatic choice accepts


@torch.no_grad()
def stage_map_sizes(model: torch.nn.Module, clip: torch.Tensor) -> Dict[str, tuple]:
    """``{res2: (T', H', W'), ..., res5: ...}``: each stage's map size for ``clip`` (one forward)."""
    x = clip if clip.dim() == 5 else clip.unsqueeze(0)
    sizes, handles = {}, []
    for alias in ("res2", "res3", "res4", "res5"):
        module = resolve_layer(model, alias)
        handles.append(
            module.register_forward_hook(lambda _m, _i, out, a=alias: sizes.__setitem__(a, tuple(out.shape[2:])))
        )
    model.eval()
    try:
        model(x[:1].float())
    finally:
        for h in handles:
            h.remove()
    return sizes


def choose_layer(model: torch.nn.Module, clip: torch.Tensor) -> tuple:
    """(stage, reason): the deepest stage whose map is >= ``MIN_MAP_SIDE`` in height and width at
    this clip's size, else the stage with the largest map (the deepest of equals)."""
    sizes = stage_map_sizes(model, clip)
    order = [a for a in ("res5", "res4", "res3", "res2") if a in sizes]
    for a in order:
        if min(sizes[a][1:]) >= MIN_MAP_SIDE:
            return a, f"{a}: the deepest stage with a >= {MIN_MAP_SIDE}x{MIN_MAP_SIDE} map ({_size(sizes[a])})"
    best = max(order, key=lambda a: (sizes[a][1] * sizes[a][2], -order.index(a)))
    return best, (
        f"{best}: no stage has a {MIN_MAP_SIDE}x{MIN_MAP_SIDE} map at this input size; "
        f"the largest is {_size(sizes[best])}"
    )


def _size(shape) -> str:
    return f"{shape[1]}x{shape[2]} in space, {shape[0]} in time"


def grad_cam(
    model: torch.nn.Module,
    clip: torch.Tensor,
    layer: str = DEFAULT_LAYER,
    class_index: Optional[int] = None,
    activation: str = "softmax",
) -> GradCamResult:
    """Grad-CAM of one clip (model input ``[1, 3, T, H, W]`` or ``[3, T, H, W]``) on ``layer``
    (``auto``: :func:`choose_layer`).

    ``class_index`` None explains the predicted class. The reported scores are the model's
    ``activation`` ("softmax", or "sigmoid" per class for multi-label models). The model is put in
    eval mode; its parameters get no gradients (only the stage output is differentiated).
    """
    if layer == AUTO_LAYER:
        layer = choose_layer(model, clip)[0]
    if layer == LOGITS:
        raise ConfigError("Grad-CAM needs a stage with a spatial map (res2..res5 or a module name), not logits")
    module = resolve_layer(model, layer)
    x = clip if clip.dim() == 5 else clip.unsqueeze(0)
    if x.shape[0] != 1:
        raise ValueError(f"grad_cam takes one clip, got a batch of {x.shape[0]}")
    model.eval()
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().float().requires_grad_(True)  # a graph even if the weights are frozen
        logits, act = forward_with_layer(model, module, x)
        if not isinstance(act, torch.Tensor) or act.dim() != 5:
            shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
            raise ConfigError(f"layer {layer!r} gives {shape}; Grad-CAM needs a [B, C, T, H, W] map")
        k = logits.shape[1]
        c = int(logits[0].argmax()) if class_index is None else int(class_index)
        if not 0 <= c < k:
            raise ConfigError(f"class {c} is out of range: the model has {k} classes")
        (grad,) = torch.autograd.grad(logits[0, c], act)
    with torch.no_grad():
        weights = grad[0].mean(dim=(1, 2, 3), keepdim=True)  # [C, 1, 1, 1]
        layer_map = F.relu((weights * act[0].detach()).sum(0))  # [T', H', W']
        up = F.interpolate(layer_map[None, None], size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)[0, 0]
        top = up.max()
        cam = up / top if top > 0 else torch.zeros_like(up)
        out = logits.detach().double()
        probs = (out.sigmoid() if activation == "sigmoid" else out.softmax(dim=1))[0]
    return GradCamResult(
        cam.float().cpu().numpy(), layer_map.float().cpu().numpy(), c, float(probs[c]), probs.cpu().numpy(), layer
    )


def mass_in_boxes(cam: np.ndarray, boxes: Sequence[Sequence[float]]) -> float:
    """The share of a map's mass (``cam`` ``[T, H, W]``, >= 0) inside per-frame boxes
    ``(x0, y0, x1, y1)`` in the map's pixels (one box per frame); 0 for an empty map."""
    cam = np.asarray(cam, dtype=np.float64)
    if len(boxes) != cam.shape[0]:
        raise ValueError(f"{len(boxes)} boxes for {cam.shape[0]} frames")
    total = cam.sum()
    if total <= 0:
        return 0.0
    inside = 0.0
    for t, (x0, y0, x1, y1) in enumerate(boxes):
        r0, r1 = max(0, int(np.floor(y0))), min(cam.shape[1], int(np.ceil(y1)))
        c0, c1 = max(0, int(np.floor(x0))), min(cam.shape[2], int(np.ceil(x1)))
        inside += cam[t, r0:r1, c0:c1].sum()
    return float(inside / total)


# ----------------------------------------------------------------------------- pictures
def overlay(frames: np.ndarray, cam: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """uint8 frames ``[T, H, W, 3]`` blended with the colour-mapped ``cam`` ``[T, H, W]`` in [0, 1]."""
    from matplotlib import colormaps

    heat = colormaps[cmap](np.clip(cam, 0, 1))[..., :3] * 255.0
    out = (1 - alpha) * frames.astype(np.float64) + alpha * heat
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def enlarge(frames: np.ndarray, min_side: int = 224) -> np.ndarray:
    """Frames repeated pixel by pixel to at least ``min_side`` (even sizes, for the video encoder)."""
    h, w = frames.shape[1:3]
    f = max(1, -(-min_side // min(h, w)))
    out = frames.repeat(f, axis=1).repeat(f, axis=2)
    ph, pw = out.shape[1] % 2, out.shape[2] % 2
    if ph or pw:
        out = np.pad(out, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return out


def write_mp4(path: str, frames: np.ndarray, fps: int = 8) -> None:
    write_video(path, frames, fps, "libx264", {"crf": "18", "preset": "veryfast"})


def write_gif(path: str, frames: np.ndarray, fps: int = 8) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)


def plot_strip(
    path: str, frames: np.ndarray, overlaid: np.ndarray, title: str, max_frames: int = 8, cmap: str = "jet"
) -> None:
    """PNG: up to ``max_frames`` evenly spaced frames, the clip above and the overlay below, with a
    colour bar of the map's scale (0 = no evidence, 1 = the clip's strongest)."""
    from matplotlib import cm, colors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = frames.shape[0]
    picks = sorted(set(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int).tolist()))
    fig = Figure(figsize=(1.6 * len(picks) + 0.4, 3.8))
    FigureCanvasAgg(fig)
    for j, i in enumerate(picks):
        for row, images in enumerate((frames, overlaid)):
            ax = fig.add_subplot(2, len(picks), row * len(picks) + j + 1)
            ax.imshow(images[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {i}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    bar = fig.add_axes((0.935, 0.08, 0.015, 0.38))
    fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=cmap), cax=bar)
    bar.set_ylabel("Grad-CAM (relative)", fontsize=7)
    bar.tick_params(labelsize=6)
    fig.savefig(path, dpi=100)


def write_gradcam(
    result: GradCamResult,
    frames: np.ndarray,
    stem: str,
    class_names=None,
    fps: int = 8,
    mp4: bool = True,
    gif: bool = False,
    min_side: int = 224,
    layer_reason: str = "",
) -> Dict[str, str]:
    """Write ``stem.gradcam.{mp4,gif,png,json}`` for a clip's uint8 ``frames`` ``[T, H, W, 3]``."""
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    name = class_names[result.class_index] if class_names else str(result.class_index)
    over = overlay(frames, result.cam)
    files = {"png": f"{stem}.gradcam.png", "json": f"{stem}.gradcam.json"}
    big = enlarge(over, min_side)
    if mp4:
        files["mp4"] = f"{stem}.gradcam.mp4"
        write_mp4(files["mp4"], big, fps)
    if gif:
        files["gif"] = f"{stem}.gradcam.gif"
        write_gif(files["gif"], big, fps)
    plot_strip(files["png"], frames, over, f"Grad-CAM on {result.layer}: {name} ({result.score:.3f})")
    order = np.argsort(-result.probs, kind="stable")[:5]
    info = {
        "class": result.class_index,
        "name": name,
        "score": result.score,
        "layer": result.layer,
        "layer_map_shape": list(result.layer_map.shape),
        "layer_choice": layer_reason,
        "top": [
            {"class": int(c), "name": class_names[c] if class_names else str(int(c)), "score": float(result.probs[c])}
            for c in order
        ],
        "files": files,
    }
    with open(files["json"], "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return files


# ----------------------------------------------------------------------------- from a config
def resolve_class(spec: Union[None, int, str], class_names: Optional[Sequence[str]], num_classes: int) -> Optional[int]:
    """``None`` (predicted), an index, or a class name -> index; ConfigError for an unknown one."""
    if spec is None or spec == "":
        return None
    text = str(spec)
    if text.lstrip("-").isdigit():
        c = int(text)
    elif class_names and text in class_names:
        c = list(class_names).index(text)
    else:
        hint = f" (e.g. {', '.join(class_names[:3])})" if class_names else " (no class names known: give an index)"
        raise ConfigError(f"class {text!r} is not a class of this model{hint}")
    if not 0 <= c < num_classes:
        raise ConfigError(f"class {c} is out of range: MODEL.NUM_CLASSES is {num_classes}")
    return c


def center_clip(cfg, video: str):
    """(model input [1, 3, T, S, S], uint8 frames [T, S, S, 3]) of the test's centre clip and crop."""
    one = cfg.clone()
    one.defrost()
    one.TEST.NUM_ENSEMBLE_VIEWS, one.TEST.NUM_SPATIAL_CROPS = 1, 1
    item = multiview_dataset(one, [VideoRecord(str(video), -1)])[0]
    if item["error"]:
        raise DecodeError(f"{video}: {item['error']}")
    views = views_of(item)  # [1, 3, T, S, S] uint8
    return to_model_input(views, cfg.DATA.MEAN, cfg.DATA.STD), views[0].permute(1, 2, 3, 0).numpy()


def gradcam_videos(
    cfg,
    videos: Sequence[str],
    *,
    layer: str = AUTO_LAYER,
    class_spec=None,
    out_dir: str = "",
    fps: int = 8,
    mp4: bool = True,
    gif: bool = False,
) -> List[dict]:
    """Grad-CAM of the centre clip of each video with ``cfg``'s model and weights; one record each
    (``{video, class, name, score, layer, layer_choice, files, error}``), a video that cannot be
    read listed, not raised. ``layer`` "auto": :func:`choose_layer` at the test crop size."""
    loaded = load_model(cfg)
    if layer != AUTO_LAYER:
        resolve_layer(loaded.model, layer)  # an unknown layer fails before any video is read
    names = loaded.class_names
    c = resolve_class(class_spec, names, cfg.MODEL.NUM_CLASSES)
    out_dir = out_dir or os.path.join(cfg.OUTPUT_DIR, "gradcam")
    records = []
    for video in videos:
        try:
            x, frames = center_clip(cfg, video)
        except DecodeError as e:
            records.append({"video": video, "error": str(e)})
            continue
        x = x.to(loaded.device)
        chosen, reason = choose_layer(loaded.model, x) if layer == AUTO_LAYER else (layer, f"{layer}: as asked")
        result = grad_cam(loaded.model, x, chosen, c, activation=loaded.activation)
        stem = os.path.join(out_dir, os.path.splitext(os.path.basename(video))[0])
        files = write_gradcam(result, frames, stem, names, fps=fps, mp4=mp4, gif=gif, layer_reason=reason)
        records.append(
            {
                "video": video,
                "class": result.class_index,
                "name": names[result.class_index] if names else str(result.class_index),
                "score": result.score,
                "layer": chosen,
                "layer_choice": reason,
                "files": files,
                "error": "",
            }
        )
    return records
