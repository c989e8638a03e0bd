"""The training crop cut and scaled by FFmpeg (``read_frames(..., crop=CropScale)``): the same
decoded frames as a sequential decode, the box where it was asked for, colours and geometry as the
default path's (torch crop and resize of the RGB frames) up to resampling, displayed orientation."""

import subprocess

import av
import numpy as np
import pytest
import torch

from rs3d.data import decode as D
from rs3d.data import transforms as T
from rs3d.data.synthetic import write_video
from rs3d.data.video.crop_scale import CropScale, crop_scale_frames


def _video(path, frames=40, h=48, w=64, gop=8, fps=25):
    """Smooth moving gradients plus a frame number in the brightness: every frame differs."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        out[t, ..., 0] = np.clip(40 + 150 * xx / w + 2 * t, 0, 255)
        out[t, ..., 1] = np.clip(60 + 120 * yy / h, 0, 255)
        out[t, ..., 2] = np.clip(200 - 3 * t - 60 * (xx + yy) / (h + w), 0, 255)
    write_video(str(path), out, fps, "libx264", {"g": str(gop), "bf": "2"})
    return str(path)


def _sequential(path):
    with av.open(path) as c:
        return list(c.decode(video=0))


def test_every_clip_start_gives_the_sequential_decodes_frames(tmp_path):
    path = _video(tmp_path / "v.mp4")
    decoded = _sequential(path)
    spec = CropScale(lambda h, w: [(3, 5, 30, 40)], 24, 8)
    for start in range(0, 33):
        idx = np.arange(start, start + 8)
        got, indices, length = D.read_frames(path, lambda n, idx=idx: idx, backend="pyav", crop=spec)
        want = crop_scale_frames([decoded[i] for i in idx], spec, [(3, 5, 30, 40)])
        assert length == 40 and np.array_equal(indices, idx)
        assert got.shape == (8, 24, 24, 3) and np.array_equal(got.numpy(), want), start


def test_boxes_follow_groups_and_match_the_default_path_up_to_resampling(tmp_path):
    path = _video(tmp_path / "v.mp4")
    idx = np.r_[np.arange(10, 14), np.arange(2, 6)]  # two clips of 4 frames, a box each
    boxes = [(0, 0, 48, 32), (16, 30, 32, 34)]  # left half; lower right
    sizes = []
    spec = CropScale(lambda h, w: sizes.append((h, w)) or boxes, 32, 4)
    # The backend asked for does not matter: FFmpeg cuts the crop, so PyAV reads.
    got, _, _ = D.read_frames(path, lambda n: idx, backend="decord", crop=spec)
    assert sizes == [(48, 64)]
    rgb, _, _ = D.read_frames(path, lambda n: idx, backend="pyav")
    for g, box in enumerate(boxes):
        ref = T.crop_resize_flip(rgb[4 * g : 4 * g + 4], box, 32, False).permute(1, 2, 3, 0).float()
        mine = got[4 * g : 4 * g + 4].float()
        assert (mine - ref).abs().mean() < 2.0  # bilinear both, different filters
        assert (mine - ref).mean(dim=(0, 1, 2)).abs().max() < 1.0  # no colour shift
    # The boxes really are different places: the left half is darker in red than the lower right.
    assert got[:4, ..., 0].float().mean() + 30 < got[4:, ..., 0].float().mean()


def test_a_box_outside_the_frame_is_refused(tmp_path):
    path = _video(tmp_path / "v.mp4", frames=10)
    spec = CropScale(lambda h, w: [(0, 0, h + 2, w)], 16, 4)
    with pytest.raises(ValueError, match="outside"):
        D.read_frames(path, lambda n: np.arange(4), backend="pyav", crop=spec)


def test_rotated_video_is_cropped_as_shown(tmp_path):
    from quirky_videos import ffmpeg_exe

    ffmpeg = ffmpeg_exe()
    if ffmpeg is None:
        pytest.skip("imageio-ffmpeg is not installed (it writes the display matrix)")
    plain = _video(tmp_path / "plain.mp4", frames=12)
    rotated = str(tmp_path / "rot90.mp4")
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-display_rotation", "90", "-i", plain, "-c", "copy", rotated],
        check=True,
        timeout=120,
    )
    idx = np.arange(2, 8)
    box = (10, 4, 40, 36)  # in the shown (portrait, 64x48) frame
    sizes = []
    spec = CropScale(lambda h, w: sizes.append((h, w)) or [box], 24, 6)
    got, _, _ = D.read_frames(rotated, lambda n: idx, backend="pyav", crop=spec)
    assert sizes == [(64, 48)]
    rgb, _, _ = D.read_frames(rotated, lambda n: idx, backend="pyav")
    assert tuple(rgb.shape[1:3]) == (64, 48)
    ref = T.crop_resize_flip(rgb, box, 24, False).permute(1, 2, 3, 0).float()
    assert (got.float() - ref).abs().mean() < 2.0
    assert (got.float() - torch.flip(ref, [2])).abs().mean() > 5.0  # a mirror would be caught


@pytest.mark.parametrize("cropped", [True, False])
def test_no_garbage_outlives_a_read(tmp_path, cropped):
    """PyAV's containers and filter graphs sit in reference cycles; a read frees them itself, so a
    loader worker's memory stays flat instead of waiting for a full collection."""
    import gc

    path = _video(tmp_path / "v.mp4")
    spec = CropScale(lambda h, w: [(0, 0, 32, 32), (8, 8, 40, 40)], 16, 4) if cropped else None
    gc.collect()
    gc.disable()  # only the read's own collection may free them
    try:
        for start in range(0, 20, 5):
            D.read_frames(path, lambda n, s=start: np.arange(s, s + 8), backend="pyav", crop=spec)
        left = gc.collect()  # what was unreachable but not yet freed
    finally:
        gc.enable()
    assert left == 0
