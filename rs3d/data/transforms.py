"""One spatial transform for a whole clip, on uint8 frames, with torch ops.

Every function takes frames ``[T, H, W, 3]`` (as decoded) or ``[T, 3, H, W]`` and returns uint8, so
the float conversion and normalisation (:func:`to_model_input`) can run on the GPU after a 4x smaller
host-to-device copy. Random parameters are drawn from a caller's ``numpy.random.Generator`` and
applied by separate pure functions, so the geometry can be tested by hand and a training run can
be replayed exactly.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

Box = Tuple[int, int, int, int]  # top, left, height, width in the source frame
# DATA.TRAIN_JITTER_MODE: how a training crop is chosen (see rs3d/config/defaults.py).
JITTER_MODES = ("area", "tf_area", "short_side")


def to_tchw(frames: torch.Tensor) -> torch.Tensor:
    """``[T, H, W, 3]`` decoder output -> ``[T, 3, H, W]`` (a view, no copy)."""
    return frames.permute(0, 3, 1, 2) if frames.shape[-1] == 3 and frames.shape[1] != 3 else frames


def resize(frames: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of ``[T, 3, H, W]`` uint8 frames to ``size=(h, w)``."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    if frames.device.type == "cpu":
        # torch has a vectorised uint8 path for channels-last input on CPU.
        x = frames.contiguous(memory_format=torch.channels_last)
        return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    x = F.interpolate(frames.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def resize_tf(frames: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """TF's ``tf.cast(tf.image.resize(frames, size), tf.uint8)``: bilinear with half-pixel centres,
    no antialias, computed in float32, cast by truncation (the released training crops)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    x = F.interpolate(frames.float(), size=size, mode="bilinear", antialias=False, align_corners=False)
    return x.clamp_(0, 255).to(torch.uint8)  # float -> uint8 truncates, as tf.cast does


def resize_nhwc_into(frames: torch.Tensor, out: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Resize ``[N, H, W, 3]`` frames into ``out`` ``[N, h, w, 3]``, ``chunk`` frames at a time.

    The caller chooses where ``out`` lives (shared memory in a loader worker, the GPU in a test);
    chunking bounds the temporaries (a GPU resizes in float32, 4x the bytes of the frames).
    """
    h, w = out.shape[1:3]
    for i in range(0, frames.shape[0], chunk):
        out[i : i + chunk].copy_(resize(to_tchw(frames[i : i + chunk]), (h, w)).permute(0, 2, 3, 1))
    return out


def short_side_size(height: int, width: int, short: int) -> Tuple[int, int]:
    """(h, w) with the short side equal to ``short`` and the aspect ratio kept (rounded)."""
    if height <= width:
        return short, max(short, int(round(width * short / height)))
    return max(short, int(round(height * short / width))), short


# ----------------------------------------------------------------------------- training
def sample_area_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    area: Sequence[float] = (0.08, 1.0),
    aspect: Sequence[float] = (0.5, 2.0),
    attempts: int = 10,
) -> Box:
    """Random resized crop box (Inception-style): area fraction in ``area``, log-uniform aspect.

    Falls back to the largest centred box whose aspect is inside ``aspect`` after ``attempts``.
    """
    total = height * width
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(attempts):
        target = total * rng.uniform(area[0], area[1])
        ratio = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    ratio = width / height
    if ratio < aspect[0]:
        w, h = width, int(round(width / aspect[0]))
    elif ratio > aspect[1]:
        h, w = height, int(round(height * aspect[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def sample_tf_area_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    area: Sequence[float] = (0.08, 1.0),
    aspect: Sequence[float] = (0.5, 2.0),
    min_covered: float = 0.1,
    attempts: int = 100,
) -> Box:
    """The crop of TF's ``sample_distorted_bounding_box`` as the released code calls it
    (``preprocess_ops_3d.random_crop_resize``: whole-frame box, ``min_object_covered`` 0.1, 100 attempts).

    Each attempt draws an aspect (width / height) uniform in ``aspect``, then a height uniform among
    the integers whose box of that aspect has an area in ``area`` (width = height x aspect rounded),
    and a corner uniform in ``[0, H - h)`` x ``[0, W - w)``; it is kept when it covers at least
    ``min_covered`` of the frame. The area is therefore not uniform (heights are), and no crop is
    smaller than ``max(area[0], min_covered)``. After ``attempts`` failures: the whole frame.
    TF's float32 arithmetic and round-half-even are kept; only the random generator differs.
    """
    f32 = np.float32
    min_area = f32(f32(area[0]) * f32(width) * f32(height))
    max_area = f32(f32(area[1]) * f32(width) * f32(height))
    lo, hi = f32(aspect[0]), f32(aspect[1])
    for _ in range(attempts):
        ratio = f32(f32(rng.random()) * (hi - lo) + lo)
        box = _tf_crop_for_aspect(height, width, min_area, max_area, ratio, rng)
        if box is not None and box[2] * box[3] >= 1 and f32(box[2] * box[3]) / f32(height * width) >= f32(min_covered):
            return box
    return 0, 0, height, width


def _tf_crop_for_aspect(height: int, width: int, min_area, max_area, ratio, rng: np.random.Generator):
    """One attempt of TF's crop generator for aspect ``ratio``; None when it cannot fit."""
    f32 = np.float32

    def rint(v) -> int:  # lrintf: round half to even, in float32
        return int(np.rint(f32(v)))

    h = rint(np.sqrt(f32(min_area / ratio)))
    h_max = rint(np.sqrt(f32(max_area / ratio)))
    if rint(f32(h_max) * ratio) > width:  # the widest box must fit: the largest h with round(h r) <= W
        h_max = int((width + 0.5 - 1e-7) / float(ratio))
        if rint(f32(h_max) * ratio) > width:
            h_max -= 1
    h_max = min(h_max, height)
    h = min(h, h_max)
    if h < h_max:
        h += int(rng.integers(0, h_max - h + 1))
    w = rint(f32(h) * ratio)
    if f32(w * h) < min_area:  # rounding left the box a little too small: one row more
        h += 1
        w = rint(f32(h) * ratio)
    if f32(w * h) > max_area:  # or too large: one row less
        h -= 1
        w = rint(f32(h) * ratio)
    if not (min_area <= f32(w * h) <= max_area) or w > width or h > height or w <= 0 or h <= 0:
        return None
    top = int(rng.integers(0, height - h)) if h < height else 0
    left = int(rng.integers(0, width - w)) if w < width else 0
    return top, left, h, w


def sample_short_side_box(height: int, width: int, rng: np.random.Generator, scales: Sequence[int], crop: int) -> Box:
    """PySlowFast jitter: short side uniform in ``scales`` (inclusive), then a random ``crop``.

    Returned as the box in the source frame that maps onto the crop, so only the crop is resized.
    """
    short = int(rng.integers(int(scales[0]), int(scales[1]) + 1))
    rh, rw = short_side_size(height, width, short)
    top_r = int(rng.integers(0, max(rh - crop, 0) + 1))
    left_r = int(rng.integers(0, max(rw - crop, 0) + 1))
    sy, sx = height / rh, width / rw
    h = min(height, max(1, int(round(min(crop, rh) * sy))))
    w = min(width, max(1, int(round(min(crop, rw) * sx))))
    top = min(int(round(top_r * sy)), height - h)
    left = min(int(round(left_r * sx)), width - w)
    return top, left, h, w


def crop_resize_flip(frames: torch.Tensor, box: Box, size: int, flip: bool, tf_resize: bool = False) -> torch.Tensor:
    """Crop ``box`` from every frame, resize to ``size x size``, optionally flip: -> ``[3, T, S, S]``.

    ``tf_resize``: :func:`resize_tf` (TF's bilinear without antialias, truncated) instead of :func:`resize`."""
    x = to_tchw(frames)
    top, left, h, w = box
    x = (resize_tf if tf_resize else resize)(x[:, :, top : top + h, left : left + w], (size, size))
    if flip:
        x = x.flip(-1)
    return x.permute(1, 0, 2, 3).contiguous()


def clip_of_crops(crops: torch.Tensor, flip: bool) -> torch.Tensor:
    """Frames already cut to ``S x S`` (``[T, S, S, 3]``, e.g. by FFmpeg) -> ``[3, T, S, S]``, optionally flipped."""
    x = crops.permute(3, 0, 1, 2)
    return (x.flip(-1) if flip else x).contiguous()


# ----------------------------------------------------------------------------- evaluation
def crop_offsets(long_side: int, crop: int, num_crops: int) -> List[int]:
    """Offsets of ``num_crops`` crops along the long side, evenly spaced from 0 to ``long - crop``.

    1 crop -> the centre, ``(long - crop) // 2``; 3 crops -> start, centre, end.
    """
    room = max(long_side - crop, 0)
    if num_crops == 1:
        return [room // 2]
    offsets = [int(round(room * i / (num_crops - 1))) for i in range(num_crops)]
    if num_crops % 2 == 1:
        offsets[num_crops // 2] = room // 2
    return offsets


def short_side_size_tf(height: int, width: int, short: int) -> Tuple[int, int]:
    """TF's ``resize_smallest``: the long side floored, ``max(short, long * short // short_side)``."""
    return max(short, height * short // width), max(short, width * short // height)


def crop_offsets_tf(long_side: int, crop: int, num_crops: int) -> List[int]:
    """TF's ``crop_image`` offsets along the long side: 3 crops at 0, ``round(long / 2 - crop // 2)``
    (half to even) and ``long - crop``; 1 crop at ``(long - crop) // 2``."""
    room = max(long_side - crop, 0)
    if num_crops == 1:
        return [room // 2]
    if num_crops == 3:
        centre = float(np.round(np.float32(long_side) / np.float32(2) - np.float32(crop // 2)))
        return [0, int(centre), room]
    raise ValueError(
        f"TEST.VIEW_POSITIONS tf places 1 or 3 crops (as TF's crop_image), not {num_crops}: "
        "set TEST.NUM_SPATIAL_CROPS 1 or 3, or TEST.VIEW_POSITIONS pytorch"
    )


def resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """``[T, H, W, 3]`` or ``[T, 3, H, W]`` -> ``[T, 3, h, w]`` with ``min(h, w) == size``."""
    x = to_tchw(frames)
    return resize(x, short_side_size(x.shape[-2], x.shape[-1], size))


def spatial_crops(frames: torch.Tensor, size: int, num_crops: int) -> torch.Tensor:
    """Square crops along the long side of already resized ``[T, 3, h, w]`` frames.

    -> ``[num_crops, 3, T, size, size]``, crop 0 = left (landscape) or top (portrait).
    """
    h, w = frames.shape[-2:]
    out = []
    for off in crop_offsets(max(h, w), size, num_crops):
        if h > w:
            crop = frames[:, :, off : off + size, :size]
        else:
            crop = frames[:, :, :size, off : off + size]
        out.append(crop.permute(1, 0, 2, 3))
    return torch.stack(out)


def short_side_crops(frames: torch.Tensor, size: int, num_crops: int) -> torch.Tensor:
    """Resize the short side to ``size``, then :func:`spatial_crops`: -> ``[K, 3, T, S, S]``.

    A frame too elongated to resize whole (:func:`cut_before_resize`) has each crop's window
    resized on its own (:func:`resize_crop_windows`), so memory stays that of ``K`` crops."""
    x = to_tchw(frames)
    if cut_before_resize(x.shape[-2], x.shape[-1], size):
        strip = resize_crop_windows(x.permute(0, 2, 3, 1), size, num_crops)  # [T, S, K*S, 3] or [T, K*S, S, 3]
        return spatial_crops(to_tchw(strip), size, num_crops).contiguous()
    return spatial_crops(resize_short_side(x, size), size, num_crops).contiguous()


# A frame whose long side, once the short side is S, would exceed WHOLE_FRAME_MAX_ASPECT x S is not
# resized whole before the views are cut: a 100000x16 video at S = 256 would need 1.6 million
# columns per frame. Up to this aspect ratio (any real camera's) the whole frame is resized, as
# before; beyond it each view's own window is, so the resized pixels per frame stay
# max(WHOLE_FRAME_MAX_ASPECT, K) x S^2 whatever the aspect ratio.
WHOLE_FRAME_MAX_ASPECT = 4


def cut_before_resize(height: int, width: int, size: int) -> bool:
    """Whether a ``height x width`` frame is too elongated to resize whole to short side ``size``."""
    return max(short_side_size(height, width, size)) > WHOLE_FRAME_MAX_ASPECT * size


def resize_crop_windows(frames: torch.Tensor, size: int, num_crops: int, chunk: int = 16) -> torch.Tensor:
    """The ``num_crops`` views of :func:`crop_offsets`, each resampled from its own source window.

    ``[N, H, W, 3]`` -> ``[N, S, K*S, 3]`` (landscape: crop ``k`` in columns ``k*S..``) or
    ``[N, K*S, S, 3]`` (portrait). Each view is what resizing the whole frame to short side ``S``
    and cutting would give: the same filter weights (:func:`aa_weights`, torch's antialiased
    bilinear), computed only for the view's own output pixels, horizontal pass first and rounded in
    between as torch's uint8 resize does; the values can differ from it by a level of rounding.
    Temporaries are those of ``chunk`` frames at a time.
    """
    n, height, width = frames.shape[:3]
    h, w = short_side_size(height, width, size)
    portrait = h > w
    rows_full = aa_weights(height, h, 0, h) if not portrait else None
    cols_full = aa_weights(width, w, 0, w) if portrait else None
    out = torch.empty((n, size * num_crops, size, 3) if portrait else (n, size, size * num_crops, 3), dtype=torch.uint8)
    for k, off in enumerate(crop_offsets(h if portrait else w, size, num_crops)):
        rows = aa_weights(height, h, off, size) if portrait else rows_full
        cols = cols_full if portrait else aa_weights(width, w, off, size)
        target = out[:, k * size : (k + 1) * size] if portrait else out[:, :, k * size : (k + 1) * size]
        for i in range(0, n, chunk):
            window = frames[i : i + chunk, rows[1] : rows[2], cols[1] : cols[2]].float()
            x = torch.einsum("nhwc,sw->nhsc", window, cols[0]).round_().clamp_(0, 255)  # horizontal pass
            x = torch.einsum("nhsc,rh->nrsc", x, rows[0]).round_().clamp_(0, 255)  # vertical pass
            target[i : i + chunk] = x.to(torch.uint8)
    return out


def aa_weights(in_size: int, out_size: int, start: int, count: int) -> Tuple[torch.Tensor, int, int]:
    """Output pixels ``start..start+count`` of torch's antialiased bilinear resize of ``in_size``
    pixels to ``out_size`` (align_corners=False), as ``(weights [count, hi - lo], lo, hi)``: output
    ``i`` is ``weights[i - start] @ input[lo:hi]``. The triangle filter, widened by the scale when
    shrinking, normalised per output pixel, exactly as ``F.interpolate(antialias=True)`` computes it."""
    scale = in_size / out_size
    support, inv = (scale, 1.0 / scale) if scale >= 1.0 else (1.0, 1.0)
    taps = []
    for i in range(start, start + count):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        x = torch.arange(lo, hi, dtype=torch.float64)
        weight = (1.0 - ((x - center + 0.5) * inv).abs()).clamp_(min=0.0)
        taps.append((lo, weight / weight.sum()))
    lo = min(t[0] for t in taps)
    hi = max(t[0] + len(t[1]) for t in taps)
    weights = torch.zeros((count, hi - lo), dtype=torch.float64)
    for row, (first, weight) in enumerate(taps):
        weights[row, first - lo : first - lo + len(weight)] = weight
    return weights.float(), lo, hi


def cut_views(
    frames: torch.Tensor,
    clip_frames: torch.Tensor,
    crop_corners: torch.Tensor,
    size: int,
    start: int = 0,
    stop: Optional[int] = None,
) -> torch.Tensor:
    """Views ``start..stop`` (view ``v = clip * K + crop``) from resized frames ``[N, h, w, 3]``.

    ``clip_frames`` ``[C, T]``: positions in ``frames``; ``crop_corners`` ``[K, 2]``: (top, left).
    -> uint8 ``[stop - start, 3, T, size, size]`` on ``frames``' device, one gather per view.
    """
    k = crop_corners.shape[0]
    stop = clip_frames.shape[0] * k if stop is None else stop
    corners = crop_corners.tolist()
    index = clip_frames.to(frames.device)
    out = torch.empty((stop - start, 3, clip_frames.shape[1], size, size), dtype=frames.dtype, device=frames.device)
    for i, v in enumerate(range(start, stop)):
        c, j = divmod(v, k)
        top, left = corners[j]
        crop = frames[:, top : top + size, left : left + size].index_select(0, index[c])  # [T, S, S, 3]
        out[i].copy_(crop.permute(3, 0, 1, 2))
    return out


# ----------------------------------------------------------------------------- model input
def to_model_input(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 clips ``[..., 3, T, H, W]`` -> float ``(x / 255 - mean) / std`` on ``clip``'s device."""
    shape = (3, 1, 1, 1)
    m = torch.as_tensor(mean, dtype=torch.float32, device=clip.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=clip.device).view(shape)
    x = clip.float().div_(255.0)
    if any(v != 0 for v in mean):
        x.sub_(m)
    if any(v != 1 for v in std):
        x.div_(s)
    return x
