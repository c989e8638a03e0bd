"""Clip indices and view geometry against values computed by hand."""

import numpy as np
import pytest
import torch

from rs3d.data import decode as D
from rs3d.data import transforms as T


def test_clip_indices_loop_short_videos():
    assert D.clip_indices(3, 4, 2, 100).tolist() == [3, 5, 7, 9]
    assert D.clip_indices(2, 4, 2, 5).tolist() == [2, 4, 1, 3]  # 6 % 5, 8 % 5
    assert D.clip_indices(0, 3, 2, 1).tolist() == [0, 0, 0]  # a 1-frame video


def test_random_start_range():
    rng = np.random.default_rng(0)
    # L=100, 32x2: start in [0, 100 - 62) = [0, 38)
    starts = [D.random_clip_start(100, 32, 2, rng) for _ in range(2000)]
    assert min(starts) == 0 and max(starts) == 37
    # the last frame of the clip is always inside the video without looping
    assert max(starts) + 31 * 2 == 99
    # shorter than the span: any start, looped
    starts = [D.random_clip_start(20, 32, 2, rng) for _ in range(500)]
    assert min(starts) == 0 and max(starts) == 19


def test_uniform_test_starts():
    # released evaluation: 10 clips, L - 64 = 236 spread evenly
    assert D.uniform_clip_starts(300, 32, 2, 10) == [0, 26, 52, 79, 105, 131, 157, 184, 210, 236]
    assert D.uniform_clip_starts(40, 32, 2, 3) == [0, 0, 0]  # shorter than 64: all at 0 (looped)
    assert D.uniform_clip_starts(300, 32, 2, 1) == [118]
    assert D.center_clip_start(300, 32, 2) == 118
    assert D.center_clip_start(10, 32, 2) == 0


def test_short_side_size_and_crop_offsets():
    assert T.short_side_size(272, 640, 256) == (256, 602)  # 640*256/272 = 602.35
    assert T.short_side_size(640, 360, 128) == (228, 128)  # 640*128/360 = 227.6
    assert T.crop_offsets(602, 256, 3) == [0, 173, 346]
    assert T.crop_offsets(602, 256, 1) == [173]
    assert T.crop_offsets(256, 256, 3) == [0, 0, 0]


def _coord_frames(h, w, t=2):
    """Frames whose R = row, G = column (so a crop says where it came from)."""
    rows = torch.arange(h, dtype=torch.uint8).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=torch.uint8).view(1, w).expand(h, w)
    f = torch.stack([rows, cols, torch.zeros(h, w, dtype=torch.uint8)], dim=-1)
    return f.unsqueeze(0).expand(t, h, w, 3).contiguous()


def test_test_crops_start_centre_end_landscape_and_portrait():
    # 40x100 with short side -> 40 (no resize): crops at columns 0, 30, 60
    views = T.short_side_crops(_coord_frames(40, 100), 40, 3)
    assert views.shape == (3, 3, 2, 40, 40)
    assert [int(v[1, 0, 0, 0]) for v in views] == [0, 30, 60]
    assert [int(v[1, 0, 0, -1]) for v in views] == [39, 69, 99]
    # portrait: crops go down the rows
    views = T.short_side_crops(_coord_frames(90, 40), 40, 3)
    assert [int(v[0, 0, 0, 0]) for v in views] == [0, 25, 50]


def test_crop_resize_flip_geometry():
    frames = _coord_frames(60, 80)
    clip = T.crop_resize_flip(frames, (10, 20, 30, 30), 30, flip=False)
    assert clip.shape == (3, 2, 30, 30)
    assert int(clip[0, 0, 0, 0]) == 10 and int(clip[1, 0, 0, 0]) == 20
    flipped = T.crop_resize_flip(frames, (10, 20, 30, 30), 30, flip=True)
    assert torch.equal(flipped, clip.flip(-1)) and int(flipped[1, 0, 0, 0]) == 49


def test_area_box_respects_area_and_aspect():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = T.sample_area_box(240, 320, rng, (0.08, 1.0), (0.5, 2.0))
        assert 0 <= top and top + h <= 240 and 0 <= left and left + w <= 320
        assert 0.08 * 0.9 <= h * w / (240 * 320) <= 1.0
        assert 0.5 * 0.9 <= w / h <= 2.0 * 1.1


def test_short_side_box_matches_resize_then_crop():
    rng = np.random.default_rng(1)
    for _ in range(200):
        top, left, h, w = T.sample_short_side_box(272, 640, rng, (256, 320), 224)
        # a 224 crop at short side s in [256, 320] covers 224/s of the short side
        assert 272 * 224 / 320 - 1 <= h <= 272 * 224 / 256 + 1
        assert abs(h - w) <= 1 and top + h <= 272 and left + w <= 640


def test_to_model_input():
    clip = torch.full((2, 3, 1, 2, 2), 255, dtype=torch.uint8)
    x = T.to_model_input(clip, [0.5, 0.5, 0.5], [0.25, 0.5, 1.0])
    assert x.dtype == torch.float32 and x.shape == clip.shape
    assert x[0, :, 0, 0, 0].tolist() == pytest.approx([2.0, 1.0, 0.5])
    assert torch.equal(T.to_model_input(clip, [0, 0, 0], [1, 1, 1]), torch.ones(2, 3, 1, 2, 2))


# ----------------------------------------------------------------------------- display matrix
def _matrix(ccw_degrees, hflip=False, vflip=False):
    """The display matrix ffmpeg's -display_rotation/-display_hflip/-display_vflip write."""
    import math

    t = math.radians(ccw_degrees)
    c, s = round(math.cos(t) * 65536), round(math.sin(t) * 65536)
    m = [c, -s, 0, s, c, 0, 0, 0, 1 << 30]
    if hflip:
        m[0], m[3] = -m[0], -m[3]
    if vflip:
        m[1], m[4] = -m[1], -m[4]
    return tuple(m)


@pytest.mark.parametrize(
    "ccw, hflip, vflip, shown",
    [
        (0, False, False, lambda f: f),
        (90, False, False, lambda f: np.rot90(f, 1)),  # a phone held upright: turned left to show
        (180, False, False, lambda f: np.rot90(f, 2)),
        (270, False, False, lambda f: np.rot90(f, -1)),
        (0, True, False, lambda f: f[:, ::-1]),
        (0, False, True, lambda f: f[::-1]),
        (90, True, False, lambda f: np.rot90(f, -1)[::-1]),
        (270, True, False, lambda f: f.T),
    ],
)
def test_display_matrix_turns_frames_as_ffmpeg_does(ccw, hflip, vflip, shown):
    """A 2x3 picture with distinct pixels, turned as ffmpeg's transpose/flip filters would."""
    from rs3d.data.video.orientation import orientation_of

    pic = np.arange(6).reshape(2, 3)
    frames = torch.from_numpy(pic).view(1, 2, 3, 1).repeat(2, 1, 1, 1)
    got = orientation_of(_matrix(ccw, hflip, vflip)).apply(frames)
    want = np.ascontiguousarray(shown(pic))
    assert got.shape == (2, *want.shape, 1) and got.is_contiguous()
    assert all(np.array_equal(g[..., 0].numpy(), want) for g in got)


def test_display_matrix_at_other_angles_is_refused():
    from rs3d.data.video.orientation import UPRIGHT, orientation_of

    assert orientation_of(None) is UPRIGHT
    with pytest.raises(D.DecodeError, match="45 degrees counter-clockwise"):
        orientation_of(_matrix(45))
