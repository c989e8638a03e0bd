"""Frame folders: the same clips, views and broken-input handling as the video they came from."""

import logging
import os
import shutil

import av
import numpy as np
import pytest
import torch
from PIL import Image

from rs3d.data import build_dataset, datasets
from rs3d.data.csv import VideoRecord
from rs3d.data.datasets import TestDataset, TrainDataset, ValDataset
from rs3d.data.frames import list_frames, read_frame_folder
from rs3d.data.temporal import TemporalSampling
from rs3d.errors import DecodeError

CARPHONE_FPS = 30000 / 1001


@pytest.fixture(autouse=True)
def _fresh_warnings():
    datasets._warned.clear()


@pytest.fixture(scope="module")
def carphone_frames(real_videos, tmp_path_factory):
    """carphone decoded sequentially and written as lossless PNGs, MMAction2's layout img_00001.png."""
    folder = tmp_path_factory.mktemp("frames") / "carphone"
    folder.mkdir()
    with av.open(str(real_videos["carphone"])) as c:
        for i, f in enumerate(c.decode(video=0), start=1):
            Image.fromarray(f.to_ndarray(format="rgb24")).save(folder / f"img_{i:05d}.png")
    return folder


SAMPLINGS = [TemporalSampling(8, 2), TemporalSampling(8, 1, "segment"), TemporalSampling(8, 2, "dense", 12.0)]


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=["dense", "segment", "target_fps"])
def test_png_frames_give_exactly_the_clips_of_the_video(real_videos, carphone_frames, sampling):
    video, folder = [VideoRecord(str(real_videos["carphone"]), 2)], [VideoRecord(str(carphone_frames), 2)]
    kw = dict(sampling=sampling, frame_folder_fps=CARPHONE_FPS)
    for make in (
        lambda r: TrainDataset(r, 8, sampling.rate, 48, jitter_mode="area", seed=4, **kw),
        lambda r: ValDataset(r, 8, sampling.rate, 48, **kw),
    ):
        a, b = make(video), make(folder)
        for key in [(0, 0), (1, 0), (7, 0)] if isinstance(a, TrainDataset) else [0]:
            x, y = a[key], b[key]
            assert torch.equal(x["clip"], y["clip"]) and x["label"] == y["label"] == 2
    a = TestDataset(video, 8, sampling.rate, 48, num_clips=4, num_crops=3, **kw)[0]
    b = TestDataset(folder, 8, sampling.rate, 48, num_clips=4, num_crops=3, **kw)[0]
    assert b["error"] == ""
    for k in ("frames", "clip_frames", "crop_corners"):
        assert torch.equal(a[k], b[k]), k


def test_layouts_flow_images_and_numbering(tmp_path):
    """PySlowFast's <video>_000001.jpg from 0 or 1; MMAction2 folders also hold flow_x_/flow_y_ images."""
    folder = tmp_path / "v1"
    folder.mkdir()
    yy, xx = np.mgrid[0:16, 0:24]
    rgb = np.stack([np.stack([xx * 8 + 20 * i, yy * 12, np.full_like(xx, 40 * i)], -1) for i in range(5)]).astype(
        np.uint8
    )  # smooth: JPEG keeps it close
    for i in range(5):
        Image.fromarray(rgb[i]).save(folder / f"v1_{i:06d}.jpg", quality=95)
        Image.fromarray(rgb[i, :, :, 0]).save(folder / f"flow_x_{i:05d}.jpg")
        Image.fromarray(rgb[i, :, :, 1]).save(folder / f"flow_y_{i:05d}.jpg")
    (folder / "notes.txt").write_text("not a frame")
    assert list_frames(str(folder)) == [f"v1_{i:06d}.jpg" for i in range(5)]
    frames, idx, length = read_frame_folder(str(folder), lambda n: np.array([4, 0, 4]))
    assert length == 5 and idx.tolist() == [4, 0, 4] and frames.shape == (3, 16, 24, 3)
    assert torch.equal(frames[0], frames[2])
    assert (frames[1].float() - torch.from_numpy(rgb[0]).float()).abs().mean() < 4  # JPEG, close


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_a_gap_breaks_the_folder_with_one_line_naming_it(carphone_frames, tmp_path, caplog):
    gap = _copy(carphone_frames, tmp_path / "gap")
    os.remove(gap / "img_00031.png")
    with pytest.raises(DecodeError, match=r"frame 31 missing \(gap between img_00030.png and img_00032.png\)"):
        list_frames(str(gap))
    good = [VideoRecord(str(carphone_frames), 0)]
    ds = TrainDataset([VideoRecord(str(gap), 1)] + good, 4, 2, 32, seed=0)
    with caplog.at_level(logging.WARNING, logger="rs3d.data.datasets"):
        items = [ds[(e, 0)] for e in range(3)]
    assert all(it["skipped"] >= 1 and it["index"] == 1 and it["label"] == 0 for it in items)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"skipping broken video {gap}: frame 31 missing (gap between img_00030.png and img_00032.png)"]
    item = TestDataset([VideoRecord(str(gap), 1)], 4, 2, 32, num_clips=2, num_crops=1)[0]
    assert "frame 31 missing" in item["error"] and item["frames"].numel() == 0


def test_an_unreadable_image_is_named(carphone_frames, tmp_path):
    bad = _copy(carphone_frames, tmp_path / "bad")
    (bad / "img_00001.png").write_bytes(b"not a png")
    item = TestDataset([VideoRecord(str(bad), 1)], 4, 2, 32, num_clips=2, num_crops=1)[0]
    assert item["error"].startswith("img_00001.png unreadable (")
    empty = tmp_path / "empty"
    empty.mkdir()
    item = TestDataset([VideoRecord(str(empty), 1)], 4, 2, 32, num_clips=2, num_crops=1)[0]
    assert item["error"].startswith("no frames")


def test_frame_folders_in_a_video_list(carphone_frames, real_videos, tmp_path, data_cfg):
    """A list may mix frame folders (relative to the data folder) and video files."""
    root = tmp_path / "data"
    (root / "frames").mkdir(parents=True)
    _copy(carphone_frames, root / "frames" / "carphone")
    for split in ("train", "val", "test"):
        (root / f"{split}.csv").write_text(f"frames/carphone 1\n{real_videos['carphone']} 1\n")
    data_cfg.DATA.PATH_TO_DATA_DIR = str(root)
    data_cfg.DATA.SAMPLING = "segment"
    data_cfg.TEST.NUM_ENSEMBLE_VIEWS = 3
    train = build_dataset(data_cfg, "train", "train")
    item = train[(0, 0)]
    assert item["skipped"] == 0 and item["clip"].shape == (3, 4, 32, 32)
    test = build_dataset(data_cfg, "test", "test")
    assert torch.equal(test[0]["frames"], test[1]["frames"])
