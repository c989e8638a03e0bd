"""A training crop cut and scaled by FFmpeg, in the pass that converts the decoder's pixels to RGB.

The default path converts every pixel of a decoded frame to RGB, then crops and resizes with torch.
Here FFmpeg's filters crop the decoded picture (no copy: the crop moves plane pointers) and
swscale scales the crop to ``size x size`` while converting to RGB, so only the pixels the clip
keeps are converted, at the scale it needs (the planes are scaled in the video's own format, so
chroma stays subsampled, then converted to RGB at the output size): about 3.5 ms instead of 10-13
ms for a 32-frame clip at 224 from 340x256. The interpolation is swscale's bilinear (averaging
when shrinking), not torch's antialiased bilinear: the pixels differ by a few levels from the
default path's (no colour shift), so this is an option (``DATA.TRAIN_CROP_IN_DECODER``).

Frames of 4:2:0 video are cropped at even offsets (FFmpeg's crop filter rounds ``top`` and
``left`` down to the chroma grid). A frame with a display matrix is first turned by FFmpeg's
transpose/flip filters, so boxes are always in the frame as shown. Each filter graph runs on one
thread: parallelism comes from the loader's workers, and a forked worker must not hold FFmpeg
threads (see ``pyav_reader``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import numpy as np

from .orientation import UPRIGHT, Orientation

Box = Tuple[int, int, int, int]  # top, left, height, width in the shown frame
_PLANAR_YUV = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")


@dataclass(frozen=True)
class CropScale:
    """What to cut: request positions ``[g * group, (g + 1) * group)`` use box ``g`` of
    ``boxes(height, width)`` (drawn once the frame size is known), scaled to ``size x size``."""

    boxes: Callable[[int, int], Sequence[Box]]
    size: int
    group: int


def _graph(frame, box: Box, size: int, orientation: Orientation):
    import av

    top, left, h, w = box
    g = av.filter.Graph()
    g.threads = 1
    nodes = [g.add_buffer(width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base)]
    if orientation.transpose:
        nodes.append(g.add("transpose", "dir=cclock_flip"))  # rows <-> columns, nothing else
    if orientation.hflip:
        nodes.append(g.add("hflip"))
    if orientation.vflip:
        nodes.append(g.add("vflip"))
    nodes.append(g.add("crop", f"w={w}:h={h}:x={left}:y={top}"))
    if frame.format.name in _PLANAR_YUV:
        # Scale the planes as they are, then convert at the output size: a third of the cost of
        # a scaled conversion with full-resolution chroma, colours as the default path's.
        nodes += [
            g.add("scale", f"w={size}:h={size}:flags=bilinear"),
            g.add("format", frame.format.name),
            g.add("scale", "flags=bilinear"),
        ]
    else:
        nodes.append(g.add("scale", f"w={size}:h={size}:flags=bilinear+full_chroma_int"))
    nodes += [g.add("format", "rgb24"), g.add("buffersink")]
    g.link_nodes(*nodes)
    g.configure()
    return g


def shown_size(frame, orientation: Orientation) -> Tuple[int, int]:
    """(height, width) of a decoded frame as shown."""
    return (frame.width, frame.height) if orientation.transpose else (frame.height, frame.width)


def crop_scale_frames(
    frames: Sequence, spec: CropScale, boxes: Sequence[Box], orientation: Orientation = UPRIGHT
) -> np.ndarray:
    """Decoded ``av.VideoFrame`` s (one per request position) -> uint8 ``[N, size, size, 3]``."""
    n, s = len(frames), spec.size
    out = np.empty((n, s, s, 3), np.uint8)
    for g, box in enumerate(boxes):
        lo, hi = g * spec.group, min((g + 1) * spec.group, n)
        if lo >= hi:
            break
        graph = _graph(frames[lo], box, s, orientation)
        for j in range(lo, hi):
            graph.push(frames[j])
            out[j] = graph.pull().to_ndarray()
    return out


def check_boxes(boxes: Sequence[Box], n: int, spec: CropScale, height: int, width: int) -> List[Box]:
    """The boxes as a list, each inside the frame, enough of them for ``n`` request positions."""
    boxes = [tuple(int(v) for v in b) for b in boxes]
    if len(boxes) * spec.group < n:
        raise ValueError(f"{len(boxes)} boxes of {spec.group} frames for {n} frames")
    for top, left, h, w in boxes:
        if top < 0 or left < 0 or h < 1 or w < 1 or top + h > height or left + w > width:
            raise ValueError(f"crop box {(top, left, h, w)} outside a {height}x{width} frame")
    return boxes
