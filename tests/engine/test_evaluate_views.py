"""The test views a model sees, against positions worked out by hand.

A real H.264 file (written with PyAV, decoded by the project's decoder) whose pixels encode where
they come from: the top half of frame t is uniformly 5*t + 20 (time), the bottom half is 3*x
(horizontal position). The view tensors of the test loader then show which frames and which
columns each view took.
"""

import av
import numpy as np
import pytest
import torch

from rs3d.config import load_config
from rs3d.data import build_loader, views_of

L, H, W = 40, 48, 64


def write_coded_video(path):
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=10, options={"qp": "0"})
    s.width, s.height, s.pix_fmt = W, H, "yuv420p"
    ramp = np.repeat((3 * np.arange(W)).reshape(1, W), H // 2, axis=0)
    for t in range(L):
        gray = np.concatenate([np.full((H // 2, W), 5 * t + 20), ramp]).astype(np.uint8)
        for packet in s.encode(av.VideoFrame.from_ndarray(np.stack([gray] * 3, -1), format="rgb24")):
            c.mux(packet)
    for packet in s.encode():
        c.mux(packet)
    c.close()


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_views_are_clip_major_with_start_centre_end_crops(tmp_path, backend):
    write_coded_video(tmp_path / "coded.mp4")
    (tmp_path / "test.csv").write_text(f"{tmp_path / 'coded.mp4'} 0\n")
    cfg = load_config(
        None,
        [
            "DATA.PATH_TO_DATA_DIR",
            str(tmp_path),
            "DATA.NUM_FRAMES",
            "4",
            "DATA.SAMPLING_RATE",
            "2",
            "DATA.TEST_CROP_SIZE",
            "24",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "2",
            "TEST.NUM_SPATIAL_CROPS",
            "3",
            "DATA.DECODING_BACKEND",
            backend,
            "DATA_LOADER.NUM_WORKERS",
            "0",
            "MODEL.NUM_CLASSES",
            "2",
        ],
    )
    (item,) = next(iter(build_loader(cfg, "test", "test", batch_size=1)))
    assert item["error"] == ""
    views = views_of(item)
    # 48x64 -> short side 24 -> 24x32; crops of 24 along the width.
    assert views.shape == (6, 3, 4, 24, 24) and views.dtype == torch.uint8
    v = views[:, 0].double()  # gray: any channel

    # Time: 2 clips of 4 frames, stride 2, starts evenly from 0 to L - 4*2 = 32:
    # frames 0,2,4,6 and 32,34,36,38 -> top-half values 5t+20.
    expected_time = {0: [20, 30, 40, 50], 1: [180, 190, 200, 210]}
    for view in range(6):
        clip = view // 3
        measured = v[view, :, 0:9, :].mean(dim=(1, 2))  # rows well inside the top half
        assert measured.tolist() == pytest.approx(expected_time[clip], abs=3), (view, measured)

    # Space: the 24-wide crops of the 32-wide frame start at 0, 4, 8 (start, centre, end), i.e.
    # original columns [0,48), [8,56), [16,64): mean of 3x = 70.5, 94.5, 118.5.
    expected_space = [70.5, 94.5, 118.5]
    for view in range(6):
        crop = view % 3
        measured = v[view, :, 15:24, :].mean().item()  # rows well inside the bottom half
        assert measured == pytest.approx(expected_space[crop], abs=3), (view, measured)
