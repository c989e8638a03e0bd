"""Test views of frames of any aspect ratio: memory bounded, normal frames bit-identical.

Whole frames are resized to the short side before the views are cut, up to
``WHOLE_FRAME_MAX_ASPECT``; a more elongated frame (a 100000x16 video would need 1.6 million
columns per frame at S = 256) has each view's window resized on its own.
"""

import math

import numpy as np
import pytest
import torch

from rs3d.data import prepare_views, views_of
from rs3d.data import transforms as T
from rs3d.data.csv import VideoRecord
from rs3d.data.datasets import TestDataset, ValDataset
from rs3d.data.synthetic import write_video

S, CLIPS, CROPS, FRAMES = 32, 2, 3, 4


def _video(path, height, width, frames=12):
    """A real encoded file: smooth moving waves (so interpolation rounding stays small) plus noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    waves = [127 + 90 * np.sin(2 * np.pi * (x + 3 * t) / 40) * np.cos(2 * np.pi * y / 56) for t in range(frames)]
    base = np.stack(waves)
    clip = np.stack([base, base * 0.5 + 40, 255 - base], axis=-1) + rng.normal(0, 2, base.shape + (3,))
    write_video(str(path), np.clip(clip, 0, 255).astype(np.uint8), fps=25)
    return str(path)


def _reference_views(item):
    """Resize every frame whole to short side S, then cut: what rs3d did for every video."""
    frames = item["frames_src"]
    h, w = T.short_side_size(frames.shape[1], frames.shape[2], S)
    resized = T.resize(T.to_tchw(frames), (h, w)).permute(0, 2, 3, 1)
    corners = [(o, 0) if h > w else (0, o) for o in T.crop_offsets(max(h, w), S, CROPS)]
    return T.cut_views(resized, item["clip_frames"], torch.as_tensor(corners), S)


def _record_largest(monkeypatch):
    """The largest tensor a resize (whole frames) or a window's resampling takes or makes."""
    seen = {"largest": 0}
    real_resize, real_einsum = T.resize, torch.einsum

    def resize(frames, size):
        out = real_resize(frames, size)
        seen["largest"] = max(seen["largest"], out.numel())
        return out

    def einsum(equation, *operands):
        out = real_einsum(equation, *operands)
        seen["largest"] = max([seen["largest"], out.numel()] + [o.numel() for o in operands])
        return out

    monkeypatch.setattr(T, "resize", resize)
    monkeypatch.setattr(torch, "einsum", einsum)
    return seen


def _item(path, monkeypatch, resize_on_device=False):
    """The dataset's item (with the decoded frames it started from) and the largest tensor made."""
    src = {}
    real_compact = TestDataset.compact_views

    def keep_source(self, frames, *a, **k):
        src["frames"] = frames.clone()
        return real_compact(self, frames, *a, **k)

    monkeypatch.setattr(TestDataset, "compact_views", keep_source)
    seen = _record_largest(monkeypatch)
    ds = TestDataset(
        [VideoRecord(path, 0)], FRAMES, 2, S, num_clips=CLIPS, num_crops=CROPS, resize_on_device=resize_on_device
    )
    item = ds[0]
    monkeypatch.undo()
    assert item["error"] == "", item["error"]
    return dict(item, frames_src=src["frames"]), seen["largest"]


@pytest.mark.parametrize("height, width", [(48, 64), (64, 48), (32, 128), (128, 32), (30, 118)])
def test_frames_up_to_the_aspect_limit_give_the_whole_frame_resize_bit_for_bit(tmp_path, monkeypatch, height, width):
    """4:1 (128x32 at S = 32) is the last aspect resized whole: its views are exactly those of the
    whole-frame resize, as every video's were before the limit existed."""
    item, _ = _item(_video(tmp_path / "v.mp4", height, width), monkeypatch)
    assert max(T.short_side_size(height, width, S)) <= 4 * S
    assert torch.equal(views_of(item), _reference_views(item))


@pytest.mark.parametrize("height, width", [(16, 2048), (2048, 16), (18, 1000), (100, 1000), (24, 200)])
def test_an_elongated_video_is_cut_before_resizing_with_bounded_memory(tmp_path, monkeypatch, height, width):
    """A real 2048x16 file (aspect 128): the largest tensor the resampling takes or makes and the
    item's frames are those of 3 views, not of 32 x 4096-pixel frames; the views are the
    whole-frame resize's (same geometry and filter) up to a rounding level or two."""
    item, largest = _item(_video(tmp_path / "v.mp4", height, width), monkeypatch)
    n = item["frames_src"].shape[0]
    h, w = T.short_side_size(height, width, S)
    whole = n * 3 * h * w
    bound = n * 3 * S * (CROPS * S)  # the views' pixels, whatever the aspect ratio
    assert item["frames"].numel() == bound
    # One view at a time: its pixels, or its window of the decoded frames (the filter's reach
    # included), whichever is larger; never a whole resized frame.
    scale = max(height, width) / max(h, w)
    window = math.ceil(S * scale) + 2 * math.ceil(max(scale, 1.0)) + 2
    assert largest <= n * 3 * max(S * S, min(height, width) * window)
    if max(height, width) >= 2048:
        assert whole >= 40 * bound  # what the whole-frame resize would have held
    views, ref = views_of(item).float(), _reference_views(item).float()
    assert views.shape == ref.shape == (CLIPS * CROPS, 3, FRAMES, S, S)
    diff = (views - ref).abs()
    assert diff.mean() < 0.5 and diff.max() <= 2, (diff.mean(), diff.max())


def test_the_bound_holds_when_the_device_would_resize(tmp_path, monkeypatch):
    """With TEST.RESIZE_ON_DEVICE the worker keeps frames at the video's size; an elongated
    video's windows are still cut and resized in the worker, and the device resizes nothing more."""
    item, _ = _item(_video(tmp_path / "v.mp4", 16, 2048), monkeypatch, resize_on_device=True)
    assert tuple(item["frames"].shape[1:3]) == (S, CROPS * S)
    assert torch.equal(prepare_views(item)["frames"], item["frames"])


def test_validation_clips_of_an_elongated_video_are_bounded_too(tmp_path, monkeypatch):
    path = _video(tmp_path / "v.mp4", 16, 2048)
    seen = _record_largest(monkeypatch)
    item = ValDataset([VideoRecord(path, 0)], FRAMES, 2, S)[0]
    assert item["skipped"] == 0 and item["clip"].shape == (3, FRAMES, S, S)
    assert 0 < seen["largest"] <= FRAMES * 3 * S * S
