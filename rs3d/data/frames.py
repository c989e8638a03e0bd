"""Frame folders: a video stored as one JPEG/PNG image per frame, read like a video file.

The layouts PySlowFast and MMAction2 use: ``<video>/img_00001.jpg``, ``<video>/<video>_000001.jpg``,
``<video>/000001.png``... A folder's frames are the image files named ``<prefix><number>.<ext>``
of its most common ``(prefix, ext)`` (optical-flow images ``flow_x_*``/``flow_y_*`` beside the RGB
frames are not frames); frame ``i`` is the one with the ``i``-th smallest number. The numbers must
run without a gap: a missing or unreadable image makes the whole folder broken, with one line
naming the folder and the frame, exactly as a broken video file (training replaces and counts it,
the test lists it as failed) -- a gap would otherwise shift every later frame in time.
"""

from __future__ import annotations

import functools
import os
import re
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..errors import DecodeError
from .decode import run_with_timeout

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_NAME = re.compile(r"^(.*?)(\d+)(\.(?:jpe?g|png))$", re.IGNORECASE)


def is_frame_folder(path: str) -> bool:
    """A list entry that is a directory is a frame folder."""
    return os.path.isdir(path)


def list_frames(folder: str) -> List[str]:
    """The frame files of ``folder`` in frame order; :class:`DecodeError` on a gap or no frames."""
    try:
        st = os.stat(folder)
    except OSError:
        raise DecodeError("frame folder not found") from None
    return list(_listing(folder, st.st_mtime_ns))


@functools.lru_cache(maxsize=1 << 14)
def _listing(folder: str, mtime_ns: int) -> Tuple[str, ...]:
    groups = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            m = _NAME.match(entry.name)
            if m and entry.is_file():
                groups.setdefault((m.group(1), m.group(3).lower()), []).append((int(m.group(2)), entry.name))
    if not groups:
        raise DecodeError(f"no frames ({', '.join(IMAGE_EXTENSIONS)} files named <prefix><number>)")
    rgb = {k: v for k, v in groups.items() if not k[0].lower().startswith("flow")} or groups
    key = max(sorted(rgb), key=lambda k: len(rgb[k]))
    numbered = sorted(rgb[key])
    for (a, name_a), (b, name_b) in zip(numbered, numbered[1:]):
        if b == a:
            raise DecodeError(f"frame number {a} twice ({name_a}, {name_b})")
        if b != a + 1:
            raise DecodeError(f"frame {a + 1} missing (gap between {name_a} and {name_b})")
    return tuple(name for _, name in numbered)


def read_image(path: str) -> np.ndarray:
    """One frame as uint8 ``[H, W, 3]`` RGB; :class:`DecodeError` naming the file if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DecodeError(f"{os.path.basename(path)} missing") from None
    except Exception as e:
        raise DecodeError(f"{os.path.basename(path)} unreadable ({type(e).__name__}: {e})") from None


def read_frame_folder(folder: str, index_fn, timeout_s: Optional[float] = None):
    """Like :func:`rs3d.data.decode.read_frames` for a frame folder: the frames ``index_fn(length)``
    asks for -> ``(frames uint8 [N, H, W, 3], indices [N], length)``; each image read once."""

    def read():
        names = list_frames(folder)
        indices = np.asarray(index_fn(len(names)), dtype=np.int64)
        uniq, inverse = np.unique(indices, return_inverse=True)
        images = []
        for i in uniq:
            image = read_image(os.path.join(folder, names[int(i)]))
            if images and image.shape != images[0].shape:
                raise DecodeError(
                    f"{names[int(i)]} is {image.shape[1]}x{image.shape[0]}, the first "
                    f"frame read {images[0].shape[1]}x{images[0].shape[0]}"
                )
            images.append(image)
        frames = torch.from_numpy(np.stack(images))
        if not np.array_equal(uniq, indices):
            frames = frames[torch.from_numpy(inverse.reshape(-1))]
        return frames, indices, len(names)

    if not timeout_s or timeout_s <= 0:
        return read()

    return run_with_timeout(read, timeout_s)
