"""DATA.SAMPLING: dense, time-based dense (DATA.TARGET_FPS) and segment indices against hand-computed
values, and frame-exact reads of what they ask for."""

import av
import numpy as np
import pytest
import torch

from rs3d.config import get_cfg
from rs3d.data import decode as D
from rs3d.data.csv import VideoRecord
from rs3d.data.datasets import TestDataset
from rs3d.data.loader import temporal_sampling
from rs3d.data.temporal import TemporalSampling, clip_offsets, segment_train, segment_view, stride_at, timed_starts
from rs3d.errors import ConfigError


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- time-based dense
@pytest.mark.parametrize(
    "fps, expected",
    [
        (30, [0, 4, 8, 12, 16, 20, 24, 28]),  # stride 2 * 30 / 15 = 4
        (60, [0, 8, 16, 24, 32, 40, 48, 56]),  # 8
        (24, [0, 3, 6, 9, 12, 16, 19, 22]),  # 3.2: floor(k * 3.2)
        (25, [0, 3, 6, 10, 13, 16, 20, 23]),  # 10/3
    ],
)
def test_target_fps_stride_is_counted_at_the_target_rate(fps, expected):
    """8 frames at SAMPLING_RATE 2 and TARGET_FPS 15: 16/15 s per clip whatever the file's rate."""
    stride = stride_at(fps, 2, 15)
    assert clip_offsets(8, stride).tolist() == expected
    s = TemporalSampling(8, 2, "dense", 15.0)
    assert s.seconds(fps) == pytest.approx(16 / 15)


def test_target_fps_test_views_and_val_clip_by_hand():
    """L=100 at 24 fps, stride 3.2: the test rule's clip length is floor(8 * 3.2) = 25, so 3 views
    start at 0, round(37.5) = 38 and 75; validation at 75 // 2 = 37."""
    s = TemporalSampling(8, 2, "dense", 15.0)
    assert timed_starts(100, 8, 3.2, 3) == [0, 38, 75]
    views = s.test(100, 24, 3)
    off = np.array([0, 3, 6, 9, 12, 16, 19, 22])
    assert [v.tolist() for v in views] == [(0 + off).tolist(), (38 + off).tolist(), (75 + off).tolist()]
    assert s.val(100, 24).tolist() == (37 + off).tolist()


def test_target_fps_train_start_keeps_the_clip_inside_the_video():
    """Last offset 22: starts are uniform in [0, 100 - 22) = [0, 78); every start is reached."""
    s = TemporalSampling(8, 2, "dense", 15.0)
    starts = {int(s.train(100, 24, rng(i))[0]) for i in range(3000)}
    assert starts == set(range(78))
    # A video shorter than the clip loops, as dense sampling does: start in [0, L), indices mod L.
    clip = s.train(10, 24, rng(1))
    assert clip.tolist() == ((clip[0] + np.array([0, 3, 6, 9, 12, 16, 19, 22])) % 10).tolist()


@pytest.mark.parametrize("length", [1, 7, 16, 50, 301])
def test_target_fps_equal_to_the_file_rate_is_dense_sampling(length):
    """With TARGET_FPS == fps the stride is SAMPLING_RATE frames: the same indices (and random draws)
    as plain dense sampling."""
    dense, timed = TemporalSampling(8, 2), TemporalSampling(8, 2, "dense", 25.0)
    for seed in range(20):
        assert np.array_equal(dense.train(length, None, rng(seed)), timed.train(length, 25, rng(seed)))
    assert all(np.array_equal(a, b) for a, b in zip(dense.test(length, None, 10), timed.test(length, 25, 10)))
    assert np.array_equal(dense.val(length, None), timed.val(length, 25))


def test_dense_without_target_fps_is_the_decode_module_rule():
    s = TemporalSampling(4, 3)
    for seed in range(10):
        start = D.random_clip_start(120, 4, 3, rng(seed))
        assert np.array_equal(s.train(120, None, rng(seed)), D.clip_indices(start, 4, 3, 120))
    starts = D.uniform_clip_starts(120, 4, 3, 10)
    assert [v.tolist() for v in s.test(120, None, 10)] == [D.clip_indices(x, 4, 3, 120).tolist() for x in starts]


# ----------------------------------------------------------------------------- segments
def test_segment_indices_by_hand():
    """L=10, 4 segments [0,2) [2,5) [5,7) [7,10) (bounds k*10//4)."""
    assert segment_view(10, 4).tolist() == [1, 3, 6, 8]  # centres 1.25, 3.75, 6.25, 8.75
    # 2 views: a quarter and three quarters into each 2.5-frame segment.
    assert segment_view(10, 4, 0, 2).tolist() == [0, 3, 5, 8]
    assert segment_view(10, 4, 1, 2).tolist() == [1, 4, 6, 9]
    draws = np.stack([segment_train(10, 4, rng(i)) for i in range(2000)])
    for k, allowed in enumerate([{0, 1}, {2, 3, 4}, {5, 6}, {7, 8, 9}]):
        assert set(draws[:, k].tolist()) == allowed


def test_segment_on_a_video_shorter_than_the_clip_repeats_frames_in_order():
    """L=3, 8 segments: bounds k*3//8 = 0 0 0 1 1 1 2 2 (3): each segment's first frame when empty."""
    for i in range(20):
        assert segment_train(3, 8, rng(i)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert segment_view(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert segment_view(1, 8).tolist() == [0] * 8


def test_segment_covers_the_whole_video_and_views_are_offsets():
    s = TemporalSampling(8, 2, "segment")
    views = s.test(240, None, 3)
    # segment length 30: offsets 5, 15, 25 into every segment
    assert [v.tolist() for v in views] == [list(range(o, 240, 30)) for o in (5, 15, 25)]
    assert s.val(240, None).tolist() == list(range(15, 240, 30))
    assert s.seconds(30, 240) == 8.0


def test_sampling_config_keys():
    cfg = get_cfg()
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 2
    assert temporal_sampling(cfg) == TemporalSampling(8, 2, "dense", None)
    cfg.DATA.SAMPLING = "segment"
    assert temporal_sampling(cfg).mode == "segment"
    cfg.DATA.TARGET_FPS = 15.0
    with pytest.raises(ConfigError, match="DATA.TARGET_FPS applies to DATA.SAMPLING dense"):
        temporal_sampling(cfg)
    cfg.DATA.SAMPLING = "tsn"
    with pytest.raises(ConfigError, match="DATA.SAMPLING must be one of dense, segment"):
        temporal_sampling(cfg)


# ----------------------------------------------------------------------------- frame-exact reads
def full_decode(path):
    with av.open(str(path)) as c:
        return torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))


CARPHONE_OFFSETS = [0, 2, 5, 8, 11, 14, 17, 20]  # floor(k * 29.97 / 10): stride 2.997


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize(
    "sampling, expected",
    [
        # carphone: 120 frames at 30000/1001 fps. Time-based, TARGET_FPS 10: clip length floor(8 * 2.997)
        # = 23, views start at 0, round(97 / 2) = 48, 97.
        (TemporalSampling(8, 1, "dense", 10.0), [[s + o for o in CARPHONE_OFFSETS] for s in (0, 48, 97)]),
        # Segment: 8 segments of 15 frames, views at 2.5, 7.5, 12.5 frames into each.
        (TemporalSampling(8, 1, "segment"), [list(range(o, 120, 15)) for o in (2, 7, 12)]),
        (TemporalSampling(8, 3), [[s + 3 * k for k in range(8)] for s in (0, 48, 96)]),
    ],
)
def test_every_sampling_reads_exactly_the_frames_it_names(real_videos, backend, sampling, expected):
    """The test item's frames (kept at full size with resize_on_device) at each view's positions are
    the frames of a sequential decode at the hand-computed indices."""
    path = real_videos["carphone"]
    ds = TestDataset(
        [VideoRecord(str(path), 0)],
        8,
        sampling.rate,
        32,
        num_clips=3,
        num_crops=1,
        resize_on_device=True,
        backend=backend,
        sampling=sampling,
    )
    item = ds[0]
    assert item["error"] == ""
    ref = full_decode(path)
    for clip, want in enumerate(expected):
        assert torch.equal(item["frames"][item["clip_frames"][clip]], ref[want])
