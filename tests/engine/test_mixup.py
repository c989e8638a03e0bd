"""MixUp / CutMix of clips and the losses of soft targets: one draw for every frame, targets that
follow lambda, flipped labels carried through, the CE / BCE switch."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rs3d.engine.losses import SingleLabelBCE, SoftTargetCrossEntropy, build_loss
from rs3d.engine.mixup import ClipMix, MixDraw, batch_rng, one_hot_targets


def static_batch(b=4, t=5, h=12, w=16):
    """Clip i is the constant picture of value i+1 on every frame: frames of a clip are equal and a
    pixel tells which clip it came from."""
    pics = torch.stack([torch.full((3, h, w), float(i + 1)) for i in range(b)])
    pics += torch.linspace(0, 0.5, w)  # texture along x, the same in every frame
    return pics[:, :, None].expand(b, 3, t, h, w).contiguous()


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_one_draw_for_every_frame_of_every_clip(kind):
    mix = ClipMix(4, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=1.0 if kind == "cutmix" else 0.0)
    changed = 0
    for seed in range(6):
        x = static_batch()
        d = mix.draw(x.shape[-2], x.shape[-1], np.random.default_rng(seed))
        assert d.kind == kind
        mixed, _ = mix.apply(x, torch.arange(4), d)
        for t in range(1, mixed.shape[2]):
            assert torch.equal(mixed[:, :, 0], mixed[:, :, t]), (kind, seed, t)
        changed += not torch.equal(mixed, static_batch())
    assert changed >= 4  # it mixed something (a CutMix box may be empty when lambda is near 1)


def test_mixup_targets_sum_to_one_and_follow_lambda():
    mix = ClipMix(5, mixup_alpha=0.4, cutmix_alpha=0.0, smoothing=0.1)
    labels = torch.tensor([0, 3, 1, 4])
    for seed in range(5):
        x = static_batch()
        d = mix.draw(12, 16, np.random.default_rng(seed))
        mixed, t = mix.apply(x, labels, d)
        assert d.kind == "mixup" and 0 < d.lam < 1
        assert torch.allclose(t.sum(1), torch.ones(4))
        one = one_hot_targets(labels, 5, 0.1)
        assert torch.allclose(t, d.lam * one + (1 - d.lam) * one.flip(0))
        # the pixels are the same blend: clip i is lam * (i+1) + (1 - lam) * (B-i)
        own, partner = torch.arange(1.0, 5.0), torch.arange(4.0, 0.0, -1)
        assert torch.allclose(mixed[:, 0, 0, 0, 0], d.lam * own + (1 - d.lam) * partner)


def test_cutmix_lambda_is_the_share_of_pixels_kept():
    mix = ClipMix(4, mixup_alpha=0.0, cutmix_alpha=1.0)
    labels = torch.arange(4)
    seen_clipped = False
    for seed in range(30):
        x = static_batch(h=20, w=20)
        x[:] = torch.arange(1.0, 5.0).view(4, 1, 1, 1, 1)  # clip i is value i+1 everywhere
        d = mix.draw(20, 20, np.random.default_rng(seed))
        mixed, t = mix.apply(x, labels, d)
        own = (mixed[0, 0, 0] == 1).float().mean().item()  # clip 0 keeps its own pixels elsewhere
        assert d.lam == pytest.approx(own)
        assert t[0, 0].item() == pytest.approx(own) and t[0, 3].item() == pytest.approx(1 - own)
        assert torch.allclose(t.sum(1), torch.ones(4))
        top, bottom, left, right = d.box
        seen_clipped |= top == 0 or left == 0 or bottom == 20 or right == 20
    assert seen_clipped  # boxes cut by the frame's edge were among the draws


def test_flipped_clips_mix_their_mirrored_label():
    """The dataset flips a clip and maps its label (DATA.FLIP_LABEL_MAP) before the batch is made;
    the mixed targets carry the mapped label with the clip's weight."""
    from rs3d.data.datasets import _flip_label

    flip_map = [1, 0, 2, 3]  # 0 <-> 1 are mirror classes ("left", "right")
    labels = torch.tensor([_flip_label(0, flip_map), 2, 3, 0])  # clip 0 was flipped: now class 1
    mix = ClipMix(4, mixup_alpha=1.0, cutmix_alpha=0.0)
    d = MixDraw("mixup", 0.7)
    _, t = mix.apply(static_batch(), labels, d)
    assert t[0].tolist() == pytest.approx([0.3, 0.7, 0.0, 0.0])  # 0.7 on the mirrored class, 0.3 on clip 3's
    assert t[3].tolist() == pytest.approx([0.7, 0.3, 0.0, 0.0])


def test_flip_label_map_and_mixup_through_the_real_dataset(tmp_path):
    """End to end on a decoded video: the flipped items' labels are the mirrored class, and the
    mixed targets put lambda on exactly those labels."""
    from rs3d.data.csv import VideoRecord
    from rs3d.data.datasets import TrainDataset
    from rs3d.data.synthetic import write_video

    path = str(tmp_path / "v.avi")
    frames = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    write_video(path, frames, codec="ffv1")
    ds = TrainDataset([VideoRecord(path, 0)] * 8, 4, 1, 16, seed=1, backend="pyav", flip_label_map=[1, 0, 2, 3])
    items = [ds[(0, i)] for i in range(8)]
    labels = torch.tensor([it["label"] for it in items])
    assert set(labels.tolist()) == {0, 1}  # some clips were flipped, some not
    mix = ClipMix(4, mixup_alpha=1.0, cutmix_alpha=0.0)
    d = MixDraw("mixup", 0.6)
    _, t = mix.apply(torch.stack([it["clip"].float() for it in items]), labels, d)
    expected = 0.6 * F.one_hot(labels, 4) + 0.4 * F.one_hot(labels.flip(0), 4)
    assert torch.allclose(t, expected.float())


def test_draws_are_a_function_of_the_position_in_the_run():
    mix = ClipMix(4)
    a = mix.draw(32, 32, batch_rng(0, 1, 7, 0, 0))
    assert a == mix.draw(32, 32, batch_rng(0, 1, 7, 0, 0))
    others = [
        mix.draw(32, 32, batch_rng(*k)) for k in [(1, 1, 7, 0, 0), (0, 1, 8, 0, 0), (0, 1, 7, 1, 0), (0, 1, 7, 0, 1)]
    ]
    assert all(o != a for o in others)


def test_prob_zero_never_mixes_and_multi_hot_rows_mix_without_smoothing():
    mix = ClipMix(3, prob=0.0, smoothing=0.1)
    x = static_batch(b=2, h=4, w=4)
    d = mix.draw(4, 4, np.random.default_rng(0))
    out, t = mix.apply(x.clone(), torch.tensor([0, 2]), d)
    assert d.kind == "none" and torch.equal(out, x)
    assert torch.allclose(t, one_hot_targets(torch.tensor([0, 2]), 3, 0.1))
    multi = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    _, t = ClipMix(3, smoothing=0.0).apply(x.clone(), multi, MixDraw("mixup", 0.75))
    assert t.tolist() == [[0.75, 0.75, 0.25], [0.25, 0.25, 0.75]]


# ----------------------------------------------------------------------------- losses
def test_bce_and_ce_switch_changes_the_loss_as_stated():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]])
    labels = torch.tensor([0, 2])
    ce, bce = build_loss(0.1, loss="ce"), build_loss(0.1, loss="bce")
    assert isinstance(ce, SoftTargetCrossEntropy) and isinstance(bce, SingleLabelBCE)
    # CE: softmax over classes, smoothing 0.1 spread as PyTorch does
    assert torch.equal(ce(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1))
    # BCE by hand: sigmoid per class, targets 1 - 0.1 + 0.1/3 on the class and 0.1/3 elsewhere
    on, off = 1 - 0.1 + 0.1 / 3, 0.1 / 3
    target = [[on, off, off], [off, off, on]]

    def term(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    by_hand = sum(term(logits[i, j].item(), target[i][j]) for i in range(2) for j in range(3)) / 6
    assert bce(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)
    assert abs(bce(logits, labels).item() - ce(logits, labels).item()) > 0.1


def test_soft_targets_are_taken_as_given_and_thresholded_for_bce():
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    soft = torch.tensor([[0.7, 0.3, 0.0]])  # a mixed pair (lambda 0.7)
    ce = SoftTargetCrossEntropy(label_smoothing=0.1)  # smoothing is for class indices only
    assert ce(logits, soft).item() == pytest.approx(-(soft * F.log_softmax(logits, 1)).sum().item())
    plain = SingleLabelBCE(0.1)(logits, soft)
    assert plain.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, soft).item())
    binarised = SingleLabelBCE(0.1, target_threshold=0.2)(logits, soft)
    # both classes of the pair count as present (0.7 and 0.3 > 0.2), the third absent
    expected = F.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0, 1.0, 0.0]]))
    assert binarised.item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="TRAIN.LOSS"):
        build_loss(0.1, loss="hinge")
