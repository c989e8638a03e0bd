"""Repeated sampling (DATA.TRAIN_CLIPS_PER_VIDEO): N clips from one decode with independent crops and
flips, batches that still count clips, epochs that keep their clips and steps, exact resume."""

import pytest
import torch

from rs3d.data import TrainSampler, build_dataset, build_loader, datasets, set_epoch
from rs3d.errors import ConfigError


def _order(sampler, epoch):
    sampler.set_epoch(epoch)
    return [i for _, i in sampler]


def test_one_clip_per_video_keeps_the_permutation_of_seed_plus_epoch():
    s = TrainSampler(10, seed=3)
    for epoch in (0, 1, 5):
        want = torch.randperm(10, generator=torch.Generator().manual_seed(3 + epoch)).tolist()
        assert _order(s, epoch) == want


@pytest.mark.parametrize("n", [2, 3])
def test_every_video_once_in_each_round_of_n_epochs(n):
    size = 12
    s = TrainSampler(size, seed=1, clips_per_video=n)
    assert len(s) == size // n
    for rnd in range(2):
        parts = [_order(s, rnd * n + k) for k in range(n)]
        assert all(len(p) == size // n for p in parts)
        assert sorted(i for p in parts for i in p) == list(range(size))  # one decode per video per round
    assert _order(s, 0) + _order(s, 1) != _order(s, n) + _order(s, n + 1)  # each round its own order


def test_ranks_share_an_epoch_without_overlap():
    ranks = [_order(TrainSampler(13, r, 2, seed=0, clips_per_video=2), 4) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3 == len(TrainSampler(13, 0, 2, clips_per_video=2))
    assert not set(ranks[0]) & set(ranks[1])


def test_n_clips_come_from_one_decode_with_their_own_crops_flips_and_labels(data_cfg, monkeypatch):
    data_cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 4
    data_cfg.DATA.FLIP_LABEL_MAP = "0:1"
    ds = build_dataset(data_cfg, "train", "train")
    calls = []
    real = datasets.D.read_frames
    monkeypatch.setattr(datasets.D, "read_frames", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    seen_flip = set()
    for index in range(6):
        key = (data_cfg.RNG_SEED, 0, index, 0)
        calls.clear()
        clips, flips = ds.load_clip(ds.records[index].path, *key, with_flip=True)
        assert len(calls) == 1  # one decode for the four clips
        assert clips.shape == (4, 3, 4, 32, 32) and clips.dtype == torch.uint8
        assert all(not torch.equal(clips[a], clips[b]) for a in range(4) for b in range(a + 1, 4))
        seen_flip.update(flips)
        item = ds[(0, index)]
        assert torch.equal(item["clip"], clips) and item["index"] == index and item["skipped"] == 0
        label = ds.records[index].label
        want = [({0: 1, 1: 0}.get(label, label) if f else label) for f in flips]
        assert item["label"].tolist() == want
    assert seen_flip == {True, False}


def test_the_first_of_n_clips_is_the_clip_of_one_per_video(data_cfg):
    """N is an addition: clip 0 draws the same frames, box and flip as N = 1 does."""
    one = build_dataset(data_cfg, "train", "train")
    data_cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 3
    three = build_dataset(data_cfg, "train", "train")
    for index in range(4):
        assert torch.equal(three[(2, index)]["clip"][0], one[(2, index)]["clip"])


def test_batches_count_clips_and_epochs_keep_their_steps(data_cfg):
    plain = build_loader(data_cfg, "train", "train", batch_size=4)
    data_cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 2
    loader = build_loader(data_cfg, "train", "train", batch_size=4)
    assert len(loader) == len(plain) == 3  # 12 videos: 3 batches of 4 clips either way
    set_epoch(loader, 0)
    batches = list(loader)
    for b in batches:
        assert b["clip"].shape == (4, 3, 4, 32, 32) and b["label"].shape == (4,)
        assert b["index"][0] == b["index"][1] and b["index"][2] == b["index"][3]
        assert b["skipped"].shape == (2,)  # per video
    videos = {int(v) for b in batches for v in b["index"]}
    assert len(videos) == 6
    set_epoch(loader, 1)
    assert videos.isdisjoint(int(v) for b in loader for v in b["index"])  # the other half of the round


def test_a_batch_that_n_does_not_divide_is_refused_by_name(data_cfg):
    data_cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 3
    with pytest.raises(ConfigError, match="DATA.TRAIN_CLIPS_PER_VIDEO 3 must divide"):
        build_loader(data_cfg, "train", "train", batch_size=4)


def test_mid_epoch_resume_gives_the_remaining_batches(data_cfg):
    data_cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 2
    full = build_loader(data_cfg, "train", "train", batch_size=2)
    set_epoch(full, 3)
    ref = list(full)
    data_cfg.DATA_LOADER.NUM_WORKERS = 2
    resumed = build_loader(data_cfg, "train", "train", batch_size=2)
    set_epoch(resumed, 3, start_batch=2)
    rest = list(resumed)
    assert len(rest) == len(ref) - 2
    for a, b in zip(ref[2:], rest):
        assert all(torch.equal(a[k], b[k]) for k in ("clip", "label", "index", "skipped"))


def test_crops_cut_by_ffmpeg_use_the_same_boxes_and_flips(data_cfg, monkeypatch):
    """DATA.TRAIN_CROP_IN_DECODER with N clips: the boxes and flips the torch path draws; each
    clip is exactly FFmpeg's crop of the sequentially decoded frames asked for, then flipped."""
    import av

    from rs3d.data import transforms as T
    from rs3d.data.video.crop_scale import crop_scale_frames

    data_cfg.DATA.TRAIN_CLIPS_PER_VIDEO = 2
    data_cfg.DATA.DECODING_BACKEND = "pyav"
    torch_path = build_dataset(data_cfg, "train", "train")
    data_cfg.DATA.TRAIN_CROP_IN_DECODER = True
    ffmpeg_path = build_dataset(data_cfg, "train", "train")
    torch_boxes, reads = [], []
    real_crop, real_read = T.crop_resize_flip, datasets.D.read_frames
    monkeypatch.setattr(T, "crop_resize_flip", lambda f, box, *a: torch_boxes.append(box) or real_crop(f, box, *a))

    def recording(path, index_fn, *a, crop=None, **k):
        out = real_read(path, index_fn, *a, crop=crop, **k)
        if crop is not None:
            reads.append((path, out[1], crop, crop.boxes(0, 0)))  # drawn once: the boxes FFmpeg cut
        return out

    monkeypatch.setattr(datasets.D, "read_frames", recording)
    for index in range(4):
        key = (0, 1, index, 0)
        path = torch_path.records[index].path
        torch_boxes.clear(), reads.clear()
        a, fa = torch_path.load_clip(path, *key, with_flip=True)
        b, fb = ffmpeg_path.load_clip(path, *key, with_flip=True)
        ((_, indices, crop, boxes),) = reads
        assert fa == fb and boxes == torch_boxes and a.shape == b.shape == (2, 3, 4, 32, 32)
        with av.open(path) as c:
            decoded = list(c.decode(video=0))
        want = torch.from_numpy(crop_scale_frames([decoded[i] for i in indices.tolist()], crop, boxes))
        for j, flip in enumerate(fb):
            assert torch.equal(b[j], T.clip_of_crops(want[4 * j : 4 * j + 4], flip))
        diff = (a.float() - b.float()).abs().mean(dim=(1, 2, 3, 4))
        assert (diff < (a.float() - b.flip(-1).float()).abs().mean(dim=(1, 2, 3, 4))).all()
