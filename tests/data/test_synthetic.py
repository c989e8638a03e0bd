"""The synthetic dataset: real decodable files in every container, deterministic, and no class can
be read off a single frame (motion is needed)."""

import av
import numpy as np
import torch
import torch.nn.functional as F

from rs3d.data import read_classes, read_video_list
from rs3d.data.synthetic import CLASSES, make_synthetic_dataset, render_video, rgb_to_yuv420p


def test_dataset_layout_and_decodable_files(synthetic_dataset):
    assert read_classes(str(synthetic_dataset)) == CLASSES[:4]
    counts = {"train": 12, "val": 8, "test": 8}
    for split, n in counts.items():
        recs = read_video_list(str(synthetic_dataset / f"{split}.csv"), str(synthetic_dataset), num_classes=4)
        assert len(recs) == n and sorted({r.label for r in recs}) == [0, 1, 2, 3]
        for r in recs:
            with av.open(r.path) as c:
                frames = sum(1 for _ in c.decode(video=0))
                codec = c.streams.video[0].codec_context.name
            assert 4 <= frames <= 24
            assert codec == {"mp4": "h264", "mkv": "h264", "avi": "mpeg4", "webm": "vp9"}[r.path[-4:].lstrip(".")]


def test_the_container_does_not_tell_the_class(tmp_path):
    """Every class comes in every container: a model must not be able to name the class from the
    codec (with 4 classes and 4 formats each class once had a single one)."""
    make_synthetic_dataset(
        str(tmp_path),
        num_classes=4,
        train_per_class=4,
        val_per_class=0,
        test_per_class=0,
        min_frames=4,
        max_frames=4,
        workers=1,
    )
    recs = read_video_list(str(tmp_path / "train.csv"), str(tmp_path), num_classes=4)
    formats_of = {label: {r.path.rsplit(".", 1)[1] for r in recs if r.label == label} for label in range(4)}
    assert all(found == {"mp4", "mkv", "avi", "webm"} for found in formats_of.values()), formats_of


def test_generator_is_deterministic(tmp_path):
    kw = dict(
        num_classes=2, train_per_class=2, val_per_class=1, test_per_class=1, min_frames=6, max_frames=8, workers=1
    )
    make_synthetic_dataset(str(tmp_path / "a"), seed=4, **kw)
    make_synthetic_dataset(str(tmp_path / "b"), seed=4, **kw)
    assert (tmp_path / "a/train.csv").read_text() == (tmp_path / "b/train.csv").read_text()
    for line in (tmp_path / "a/train.csv").read_text().splitlines():
        rel = line.split()[0]
        with av.open(str(tmp_path / "a" / rel)) as ca, av.open(str(tmp_path / "b" / rel)) as cb:
            # Compared in the coded yuv420p planes: a conversion to RGB would test swscale, not us.
            for fa, fb in zip(ca.decode(video=0), cb.decode(video=0)):
                assert fa.format.name == "yuv420p"
                assert np.array_equal(fa.to_ndarray(), fb.to_ndarray())
    a = render_video(3, np.random.default_rng(1), 32, 48, 5)
    assert a.shape == (5, 32, 48, 3) and np.array_equal(a, render_video(3, np.random.default_rng(1), 32, 48, 5))


def test_rgb_to_yuv420p_is_bt601_limited_range_and_decodes_back():
    # Known BT.601 studio-swing values: white, black, red, green, blue.
    for rgb, yuv in [
        ((255, 255, 255), (235, 128, 128)),
        ((0, 0, 0), (16, 128, 128)),
        ((255, 0, 0), (81, 90, 240)),
        ((0, 255, 0), (145, 54, 34)),
        ((0, 0, 255), (41, 240, 110)),
    ]:
        planes = rgb_to_yuv420p(np.full((4, 6, 3), rgb, np.uint8))
        assert planes.shape == (6, 6)
        assert planes[:4].min() == planes[:4].max() == yuv[0]
        assert planes[4:].reshape(-1)[:6].min() == yuv[1] and planes[4:].reshape(-1)[6:].min() == yuv[2]
    frame = render_video(2, np.random.default_rng(0), 32, 48, 1)[0]
    back = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p").to_ndarray(format="rgb24")
    luma = lambda x: x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    assert np.abs(luma(back) - luma(frame)).mean() < 2.0  # chroma is subsampled, luma is not


def _fit_and_score(x, y, classes, steps=300):
    """Linear softmax classifier, trained on a random half and scored on the other half."""
    torch.manual_seed(0)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    perm = torch.randperm(len(y))
    tr, te = perm[: len(y) // 2], perm[len(y) // 2 :]
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(x[tr] @ w + b, y[tr]).backward()
        opt.step()
    train_acc = ((x[tr] @ w + b).argmax(1) == y[tr]).float().mean().item()
    test_acc = ((x[te] @ w + b).argmax(1) == y[te]).float().mean().item()
    return train_acc, test_acc


def test_a_single_frame_does_not_give_the_class_away():
    """Pixels of one frame (8x8 thumbnail + colour statistics): a linear classifier that fits the
    training half is at chance on the other half; the same classifier on the difference of two
    frames (motion) does clearly better."""
    n_per_class, classes = 40, len(CLASSES)
    single, motion, labels = [], [], []
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: much faster on one thread
    try:
        clips = [render_video(i % classes, rng, 32, 32, 12) for i in range(n_per_class * classes)]
    finally:
        torch.set_num_threads(threads)
    for i, clip in enumerate(clips):
        label = i % classes
        frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
        t = int(rng.integers(0, 6))
        thumb = F.adaptive_avg_pool2d(frames, 8).flatten(1)
        stats = torch.cat([frames.mean((2, 3)), frames.std((2, 3))], 1)
        single.append(torch.cat([thumb[t], stats[t]]))
        motion.append(torch.cat([(thumb[t + 6] - thumb[t]).abs(), (stats[t + 6] - stats[t]).abs()]))
        labels.append(label)
    y = torch.tensor(labels)
    chance = 1 / classes
    _, single_acc = _fit_and_score(torch.stack(single), y, classes)
    _, motion_acc = _fit_and_score(torch.stack(motion), y, classes)
    assert single_acc < 2 * chance, single_acc
    assert motion_acc > single_acc + 0.1, (motion_acc, single_acc)
