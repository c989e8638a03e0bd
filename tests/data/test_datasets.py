"""The three dataset modes on synthetic and real videos: shapes, geometry, broken input."""

import logging

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rs3d.data import build_dataset, datasets, num_views, prepare_views, views_of
from rs3d.data import decode as D
from rs3d.data.csv import VideoRecord
from rs3d.data.datasets import TestDataset, TrainDataset, ValDataset

BACKENDS = ["decord", "pyav"]


def full_decode(path):
    with av.open(str(path)) as c:
        return torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))


def ref_resize(frames_thwc, h, w):
    """Independent reference: float bilinear antialiased resize of [T, H, W, 3] -> [T, 3, h, w]."""
    x = frames_thwc.permute(0, 3, 1, 2).float()
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)


def assert_close_uint8(a, b):
    diff = (a.float() - b.float()).abs()
    assert diff.mean() < 0.6 and diff.max() <= 3, (diff.mean(), diff.max())


@pytest.fixture(autouse=True)
def _fresh_warnings():
    datasets._warned.clear()


@pytest.mark.parametrize("backend", BACKENDS)
def test_test_views_geometry_on_real_footage(real_videos, backend):
    """bikes: 250 frames of 640x272. 3 clips x 3 crops of 4x2 frames at 64 px:
    starts 0, 121, 242 (L - 8 = 242 spread evenly); short side 272 -> 64 gives 151x64, crops at
    columns 0, 43, 87."""
    ds = TestDataset([VideoRecord(str(real_videos["bikes"]), 7)], 4, 2, 64, num_clips=3, num_crops=3, backend=backend)
    item = ds[0]
    assert item["error"] == "" and item["label"] == 7 and item["index"] == 0
    assert item["frames"].shape == (3 * 4, 64, 151, 3)  # the 3 clips' 4 frames, each once, resized
    assert item["clip_frames"].shape == (3, 4) and item["crop_corners"].tolist() == [[0, 0], [0, 43], [0, 87]]
    views = views_of(item)
    assert views.shape == (9, 3, 4, 64, 64) and views.dtype == torch.uint8
    ref = full_decode(real_videos["bikes"])
    for c, start in enumerate([0, 121, 242]):
        frames = ref_resize(ref[start : start + 8 : 2], 64, 151)  # [4, 3, 64, 151]
        for k, left in enumerate([0, 43, 87]):
            expected = frames[:, :, :, left : left + 64].permute(1, 0, 2, 3)
            assert_close_uint8(views[c * 3 + k], expected)


def test_resize_on_device_defers_the_resize_and_gives_the_same_views(real_videos):
    """With resize_on_device the worker only decodes (frames keep 640x272); the views cut after
    prepare_views resizes them are the views of the default item, bit for bit (same CPU kernel)."""
    rec = [VideoRecord(str(real_videos["bikes"]), 1)]
    resized = TestDataset(rec, 4, 2, 64, num_clips=3, num_crops=3)[0]
    deferred = TestDataset(rec, 4, 2, 64, num_clips=3, num_crops=3, resize_on_device=True)[0]
    assert resized["frames"].shape == (12, 64, 151, 3) and deferred["frames"].shape == (12, 272, 640, 3)
    assert resized["resized_hw"] == deferred["resized_hw"] == (64, 151)
    assert prepare_views(deferred)["frames"].shape == (12, 64, 151, 3)
    assert torch.equal(views_of(deferred), views_of(resized))
    assert torch.equal(views_of(deferred, 2, 7), views_of(resized)[2:7])


def test_resize_on_device_only_applies_on_cuda(data_cfg):
    data_cfg.DEVICE = "cpu"
    assert not build_dataset(data_cfg, "test", "test").resize_on_device
    data_cfg.DEVICE = "cuda:0"
    assert build_dataset(data_cfg, "test", "test").resize_on_device
    data_cfg.TEST.RESIZE_ON_DEVICE = False
    assert not build_dataset(data_cfg, "test", "test").resize_on_device


def test_test_mode_decodes_each_video_once(real_videos, monkeypatch):
    calls = []
    real_read = D.read_frames

    def counting(path, index_fn, **kw):
        calls.append(path)
        return real_read(path, index_fn, **kw)

    monkeypatch.setattr(D, "read_frames", counting)
    ds = TestDataset([VideoRecord(str(real_videos["carphone"]), 0)], 8, 2, 32, num_clips=10, num_crops=3)
    assert views_of(ds[0]).shape == (30, 3, 8, 32, 32)
    assert len(calls) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_val_clip_is_centre_clip_centre_crop(real_videos, backend):
    """carphone: 120 frames 176x144. 8x2 centre clip starts at (120 - 16) // 2 = 52; short side
    144 -> 48 gives 59x48 (176*48/144 = 58.7); centre crop at column (59 - 48) // 2 = 5."""
    ds = ValDataset([VideoRecord(str(real_videos["carphone"]), 1)], 8, 2, 48, backend=backend)
    item = ds[0]
    assert item["clip"].shape == (3, 8, 48, 48) and item["skipped"] == 0
    ref = ref_resize(full_decode(real_videos["carphone"])[52:68:2], 48, 59)
    assert_close_uint8(item["clip"], ref[:, :, :, 5:53].permute(1, 0, 2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_clip_on_real_footage_is_a_pure_function_of_the_key(real_videos, backend):
    rec = [VideoRecord(str(real_videos["bikes"]), 3)]
    ds = TrainDataset(rec, 8, 2, 48, jitter_mode="area", seed=5, backend=backend)
    a, b, c = ds[(0, 0)], ds[(0, 0)], ds[(1, 0)]
    assert a["clip"].shape == (3, 8, 48, 48) and a["clip"].dtype == torch.uint8
    assert torch.equal(a["clip"], b["clip"]) and not torch.equal(a["clip"], c["clip"])
    ds2 = TrainDataset(rec, 8, 2, 48, jitter_mode="short_side", scales=(56, 72), seed=5, backend=backend)
    assert ds2[(0, 0)]["clip"].shape == (3, 8, 48, 48)


def test_train_clip_matches_hand_computed_crop(real_videos):
    """Replay the draws of key (seed, epoch, index, retry) and crop/resize the reference by hand."""
    ds = TrainDataset([VideoRecord(str(real_videos["carphone"]), 0)], 4, 3, 40, seed=11)
    clip = ds[(2, 0)]["clip"]
    start = D.random_clip_start(120, 4, 3, datasets._rng(11, 2, 0, 0, 0))
    rng = datasets._rng(11, 2, 0, 0, 1)
    from rs3d.data.transforms import sample_area_box

    top, left, h, w = sample_area_box(144, 176, rng)
    flip = rng.random() < 0.5
    ref = full_decode(real_videos["carphone"])[start : start + 12 : 3, top : top + h, left : left + w]
    expected = ref_resize(ref, 40, 40).permute(1, 0, 2, 3)
    assert_close_uint8(clip, expected.flip(-1) if flip else expected)


def test_train_replaces_broken_videos_counts_and_logs_once(broken_videos, synthetic_dataset, data_cfg, caplog):
    good = build_dataset(data_cfg, "train", "train").records[:3]
    bad = [
        VideoRecord(str(broken_videos[k]), 0) for k in ("missing", "empty", "truncated", "not_a_video", "audio_only")
    ]
    ds = TrainDataset(bad + good, 4, 2, 32, seed=0, max_retries=50)
    with caplog.at_level(logging.WARNING, logger="rs3d.data.datasets"):
        for epoch in range(3):
            for i in range(len(bad)):
                item = ds[(epoch, i)]
                assert item["skipped"] >= 1 and item["index"] >= len(bad)
                assert item["label"] == good[item["index"] - len(bad)].label
                assert item["clip"].shape == (3, 4, 32, 32)
    warned = [r.getMessage() for r in caplog.records if "skipping broken video" in r.getMessage()]
    assert sorted(warned) == sorted(set(warned))  # each path once per process
    assert sum(str(broken_videos["missing"]) in w for w in warned) == 1
    assert any("no video stream" in w for w in warned)


def test_train_gives_up_after_max_retries_with_a_clear_error(broken_videos):
    ds = TrainDataset([VideoRecord(str(broken_videos["empty"]), 0)], 4, 2, 32, max_retries=3)
    with pytest.raises(RuntimeError, match=r"4 training videos in a row failed.*MAX_RETRIES"):
        ds[(0, 0)]


def test_short_and_one_frame_videos_are_looped(broken_videos):
    rec = [VideoRecord(str(broken_videos["one_frame"]), 0)]
    item = TrainDataset(rec, 8, 2, 32)[(0, 0)]
    assert item["skipped"] == 0 and item["clip"].shape == (3, 8, 32, 32)
    assert all(torch.equal(item["clip"][:, 0], item["clip"][:, t]) for t in range(8))
    views = views_of(TestDataset(rec, 8, 2, 32, num_clips=2, num_crops=3)[0])
    assert views.shape == (6, 3, 8, 32, 32)


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "not_a_video", "audio_only"])
def test_test_mode_reports_broken_videos(broken_videos, kind):
    item = TestDataset([VideoRecord(str(broken_videos[kind]), 2)], 4, 2, 32, num_clips=2, num_crops=3)[0]
    assert num_views(item) == 0 and item["frames"].numel() == 0
    assert item["error"] and "\n" not in item["error"]
    assert item["label"] == 2 and item["path"] == str(broken_videos[kind])


def test_test_mode_never_hangs(broken_videos, monkeypatch, real_videos):
    monkeypatch.setattr(D, "_read", lambda *a, **k: __import__("time").sleep(30))
    ds = TestDataset([VideoRecord(str(real_videos["carphone"]), 0)], 4, 2, 32, num_clips=2, decode_timeout_s=0.3)
    assert "DECODE_TIMEOUT_S" in ds[0]["error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_synthetic_video_serves_all_modes(data_cfg, backend):
    """Sizes 64x64..96x72 and 64x112, 12-30 fps, mp4/avi/webm/mkv, 4-24 frames."""
    data_cfg.DATA.DECODING_BACKEND = backend
    for split, mode in (("train", "train"), ("val", "val"), ("test", "test")):
        ds = build_dataset(data_cfg, split, mode)
        exts = {r.path.rsplit(".", 1)[1] for r in ds.records}
        assert exts == {"mp4", "avi", "webm", "mkv"}
        for i in range(len(ds)):
            item = ds[i]
            if mode == "test":
                assert item["error"] == "" and views_of(item).shape == (6, 3, 4, 32, 32)
            else:
                assert item["skipped"] == 0 and item["clip"].shape == (3, 4, 32, 32)


def test_an_error_that_is_not_decoding_stops_the_run_in_every_mode(real_videos, monkeypatch):
    """Only a video that cannot be decoded counts as broken. Jitter scales [40, 32] (low > high)
    used to make every training video "broken" until MAX_RETRIES ran out; now the bug surfaces at
    once, with its own exception and traceback."""
    from rs3d.data import transforms as T

    rec = [VideoRecord(str(real_videos["carphone"]), 0)]
    train = TrainDataset(rec, 4, 2, 32, jitter_mode="short_side", scales=(40, 32), max_retries=3)
    with pytest.raises(ValueError, match="low >= high"):
        train[(0, 0)]

    def bug(*a, **k):
        raise ZeroDivisionError("a bug in a transform")

    monkeypatch.setattr(T, "short_side_crops", bug)
    with pytest.raises(ZeroDivisionError):
        ValDataset(rec, 4, 2, 32, max_retries=3)[0]
    monkeypatch.setattr(T, "short_side_size", bug)
    with pytest.raises(ZeroDivisionError):
        TestDataset(rec, 4, 2, 32, num_clips=1, num_crops=1)[0]
