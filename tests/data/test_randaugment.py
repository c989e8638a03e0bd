"""RandAugment for clips: one draw for every frame, on real decoded videos, in loader workers."""

import numpy as np
import pytest
import torch

from rs3d.data.csv import VideoRecord
from rs3d.data.datasets import TrainDataset
from rs3d.data.randaugment import MAX_LEVEL, ClipRandAugment, _LevelRandAugment
from rs3d.data.synthetic import write_video


@pytest.fixture(scope="module")
def static_video(tmp_path_factory):
    """A real encoded video whose 24 frames are one picture: its clips have equal frames."""
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    picture[8:30, 10:40] = [200, 40, 40]  # some structure for the geometric ops to move
    path = str(tmp_path_factory.mktemp("static") / "static.avi")
    write_video(path, np.repeat(picture[None], 24, axis=0), fps=25, codec="ffv1")  # lossless
    return path


def _dataset(path, rand_augment, **kw):
    return TrainDataset(
        [VideoRecord(path, 0)],
        num_frames=6,
        sampling_rate=2,
        crop_size=32,
        jitter_mode="area",
        random_flip=True,
        seed=3,
        rand_augment=rand_augment,
        backend="pyav",
        **kw,
    )


def test_frames_of_a_static_video_stay_equal_and_the_clip_changes(static_video):
    """Every frame gets the same ops and magnitudes: a static clip stays static. Over a few epochs
    the augmented clip also differs from the plain one (the augmentation does something)."""
    plain = _dataset(static_video, None)
    augmented = _dataset(static_video, ClipRandAugment(num_ops=2, magnitude=15))
    changed = 0
    for epoch in range(6):
        clip = augmented[(epoch, 0)]["clip"]
        assert clip.dtype == torch.uint8 and clip.shape == (3, 6, 32, 32)
        for t in range(1, 6):
            assert torch.equal(clip[:, 0], clip[:, t]), (epoch, t)
        ref = plain[(epoch, 0)]["clip"]
        assert torch.equal(ref[:, 0], ref[:, 5])  # the video itself is static after decoding
        changed += not torch.equal(clip, ref)
    assert changed >= 4


def test_repeated_clips_each_get_their_own_draw_and_the_crops_do_not_move(static_video):
    """With 3 clips per video each clip is augmented on its own; the crops and flips are the
    ones drawn without RandAugment (its random stream is separate)."""
    ra = ClipRandAugment(num_ops=2, magnitude=10)
    item = _dataset(static_video, ra, clips_per_video=3)[(2, 0)]
    plain = _dataset(static_video, None, clips_per_video=3)[(2, 0)]
    assert torch.equal(item["label"], plain["label"])
    for j in range(3):
        for t in range(1, 6):
            assert torch.equal(item["clip"][j, :, 0], item["clip"][j, :, t])
    assert not all(torch.equal(item["clip"][0], item["clip"][j]) for j in (1, 2))


def test_same_key_same_clip_and_workers_change_nothing(static_video, tmp_path):
    """A clip's draw is a function of (seed, epoch, index): the same in 0 and 2 loader workers."""
    from torch.utils.data import DataLoader

    ds = _dataset(static_video, ClipRandAugment(2, 15))
    keys = [(e, 0) for e in range(4)]
    direct = [ds[k]["clip"] for k in keys]
    assert torch.equal(direct[0], ds[keys[0]]["clip"])
    batches = list(DataLoader(ds, batch_size=2, sampler=keys, num_workers=2))
    assert torch.equal(torch.cat([b["clip"] for b in batches]), torch.stack(direct))


def test_magnitude_is_read_on_the_tensorflow_level_scale():
    """Level 10 is torchvision's maximum, 15 goes 1.5x past it (the paper's 224-px setting), with
    the bounds the ops need."""
    space = _LevelRandAugment._AUGMENTATION_SPACE
    levels = {name: fn(31, 224, 224) for name, (fn, _) in space.items()}  # levels 0..30
    assert levels["Rotate"][MAX_LEVEL] == pytest.approx(30.0) and levels["Rotate"][15] == pytest.approx(45.0)
    assert levels["ShearX"][5] == pytest.approx(0.15) and levels["ShearX"][15] == pytest.approx(0.45)
    assert levels["TranslateX"][10] == pytest.approx(150 / 331 * 224, rel=1e-5)
    assert levels["Brightness"][10] == pytest.approx(0.9) and levels["Brightness"][15] == pytest.approx(1.0)
    assert levels["Posterize"][10] == 4 and levels["Posterize"][15] == 2 and int(levels["Posterize"].min()) == 1
    assert levels["Solarize"][10] == pytest.approx(0.0) and float(levels["Solarize"].min()) == 0.0
    assert float(levels["Contrast"].max()) == 1.0 and levels["Rotate"][30] == pytest.approx(90.0)
    assert levels["Identity"] is None and levels["Equalize"] is None


def test_bad_input_is_refused():
    ra = ClipRandAugment(2, 9)
    with pytest.raises(ValueError, match="uint8"):
        ra.frames(torch.zeros(4, 3, 8, 8), seed=0)
    with pytest.raises(ValueError, match="num_ops"):
        ClipRandAugment(0, 9)


@pytest.mark.parametrize("sign", [1, -1])
def test_every_op_at_magnitude_15_keeps_equal_frames_equal(sign):
    """Each of the 14 ops, forced, on a 4-frame static clip: uint8 out, frames still equal."""
    ra = ClipRandAugment(2, 15)
    t = ra.transform
    frames = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).expand(4, 3, 32, 32).contiguous()
    assert len(t._AUGMENTATION_SPACE) == 14
    for name, (fn, signed) in t._AUGMENTATION_SPACE.items():
        mags = fn(t.num_magnitude_bins, 32, 32)
        m = 0.0 if mags is None else float(mags[15]) * (sign if signed else 1)
        out = t._apply_image_or_video_transform(frames, name, m, interpolation=t.interpolation, fill=t._fill)
        assert out.dtype == torch.uint8 and out.shape == frames.shape, name
        assert all(torch.equal(out[0], out[i]) for i in range(1, 4)), name
