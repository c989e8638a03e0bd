"""DATA_LOADER.CLASS_BALANCED: classes drawn equally often, the same order on every rank and after a
restart, and the default order untouched."""

import numpy as np
import pytest
import torch

from rs3d.data import TrainSampler, build_loader, set_epoch
from rs3d.data.balance import balanced_order, class_balanced_weights


def test_weights_are_one_over_the_class_count():
    assert class_balanced_weights([0, 0, 0, 1, 2, 2]).tolist() == pytest.approx([1 / 3] * 3 + [1, 0.5, 0.5])


def test_a_skewed_list_is_drawn_class_balanced():
    """90 videos of class 0, 10 of class 1: over 50 epochs each class is about half the draws."""
    labels = [0] * 90 + [1] * 10
    w = class_balanced_weights(labels)
    drawn = np.array([labels[i] for e in range(50) for i in balanced_order(w, 0, e)])
    assert len(drawn) == 5000
    assert abs(drawn.mean() - 0.5) < 0.03  # binomial sd 0.007
    # a class-1 video is drawn about 2500 / 10 = 250 times, a class-0 one about 2500 / 90 = 28
    counts = np.bincount([i for e in range(50) for i in balanced_order(w, 0, e)], minlength=100)
    assert 200 < counts[90:].min() and counts[90:].max() < 300 and counts[:90].max() < 50


def test_balanced_order_is_a_pure_function_shared_by_ranks():
    labels = [0] * 7 + [1] * 3 + [2]
    w = class_balanced_weights(labels)

    def order(rank, world, epoch, start=0):
        s = TrainSampler(11, rank, world, seed=5, weights=w)
        s.set_epoch(epoch, start_index=start)
        return [i for _, i in s]

    full = balanced_order(w, 5, 3)
    assert order(0, 1, 3) == full[:11] and order(0, 1, 3) != order(0, 1, 4)
    ranks = [order(r, 3, 3) for r in range(3)]
    assert all(len(x) == 3 == len(TrainSampler(11, r, 3, weights=w)) for r, x in enumerate(ranks))
    assert ranks == [full[:9][r::3] for r in range(3)]  # one draw, cut and strided like the shuffle
    assert order(1, 3, 3, start=2) == ranks[1][2:]  # mid-epoch resume skips exactly
    plain = TrainSampler(11, 0, 1, seed=5)
    plain.set_epoch(3)
    assert [i for _, i in plain] == torch.randperm(11, generator=torch.Generator().manual_seed(8)).tolist()


def _batches(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def test_balanced_loader_resumes_exactly_and_leaves_the_default_alone(data_cfg):
    data_cfg.DATA_LOADER.CLASS_BALANCED = True
    loader = build_loader(data_cfg, "train", "train", batch_size=2)
    set_epoch(loader, 1)
    ref = _batches(loader)
    assert len(ref) == 6
    resumed = build_loader(data_cfg, "train", "train", batch_size=2)
    set_epoch(resumed, 1, start_batch=3)
    again = _batches(resumed)
    assert len(again) == 3 and all(torch.equal(a[k], b[k]) for a, b in zip(again, ref[3:]) for k in a)
    weights = class_balanced_weights([r.label for r in loader.dataset.records])
    assert [int(i) for b in ref for i in b["index"]] == balanced_order(weights, 0, 1)[:12]
    data_cfg.DATA_LOADER.CLASS_BALANCED = False
    assert build_loader(data_cfg, "train", "train", batch_size=2).sampler.weights is None
