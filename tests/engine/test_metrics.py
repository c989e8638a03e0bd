"""Metrics against numbers worked out by hand, and multi-label AP against scikit-learn."""

import pytest
import torch

from rs3d.engine.metrics import (
    aggregate_views,
    average_precision,
    compute_metrics,
    confusion_matrix,
    mean_class_accuracy,
    multilabel_metrics,
    top1_hits,
    topk_accuracy,
    topk_indices,
)

# Three views of one video over three classes.
VIEWS = torch.tensor(
    [
        [0.6, 0.3, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.2, 0.6],
    ]
)


def test_aggregate_mean_sum_max_by_hand():
    assert torch.allclose(aggregate_views(VIEWS, "mean"), torch.tensor([0.3, 1.3 / 3, 0.8 / 3]))
    assert torch.allclose(aggregate_views(VIEWS, "sum"), torch.tensor([0.9, 1.3, 0.8]))
    assert torch.allclose(aggregate_views(VIEWS, "max"), torch.tensor([0.6, 0.8, 0.6]))


def test_aggregation_changes_the_winner_when_it_should():
    # mean picks class 1, max picks the single confident view of class 0.
    views = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    assert aggregate_views(views, "mean").argmax() == 1  # 0.3, 0.367, 0.333
    assert aggregate_views(views, "max").argmax() == 0  # 0.9, 0.5, 0.5


def test_aggregate_rejects_unknown_method_and_no_views():
    with pytest.raises(ValueError, match="ENSEMBLE_METHOD"):
        aggregate_views(VIEWS, "median")
    with pytest.raises(ValueError, match="V >= 1"):
        aggregate_views(torch.zeros(0, 3))


def test_topk_ties_go_to_lower_class_index():
    scores = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.4, 0.4, 0.1]])
    assert topk_indices(scores, 2).tolist() == [[0, 1], [1, 2]]


def test_topk_accuracy_by_hand():
    scores = torch.tensor(
        [
            [0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0],  # order 3,2,1,0,... label 3 -> top1 yes
            [0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0],  # label 2 -> rank 3: top1 no, top5 yes
            [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.7],  # label 0 -> rank 4 (ties at 0 by index): top5 yes
            [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.7],  # label 3 -> rank 7: top5 no
        ]
    )
    labels = torch.tensor([3, 2, 0, 3])
    acc = topk_accuracy(scores, labels, ks=(1, 3, 5))
    assert acc == {1: 25.0, 3: 50.0, 5: 75.0}


def test_top5_with_fewer_than_five_classes_counts_every_video():
    scores = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    assert topk_accuracy(scores, torch.tensor([1, 0]), ks=(1, 5)) == {1: 50.0, 5: 100.0}


def test_confusion_matrix_rows_are_true_classes():
    conf = confusion_matrix(torch.tensor([0, 1, 1, 2, 2]), torch.tensor([0, 0, 1, 2, 1]), 3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_mean_class_accuracy_skips_empty_classes():
    # class 0: 1/2, class 1: 1/2, class 2: 1/1, class 3: no videos -> (0.5+0.5+1)/3
    conf = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    assert mean_class_accuracy(conf) == pytest.approx(100 * 2 / 3)


def test_mean_class_accuracy_differs_from_top1_on_imbalanced_classes():
    # 9 videos of class 0 all right, 1 video of class 1 wrong: top-1 90%, mean class 50%.
    scores = torch.tensor([[1.0, 0.0]] * 10)
    labels = torch.tensor([0] * 9 + [1])
    m = compute_metrics(scores, labels, num_failed=0, num_classes=2)
    assert m["top1"] == pytest.approx(90.0)
    assert m["mean_class_accuracy"] == pytest.approx(50.0)


def test_failures_are_excluded_and_then_counted_as_wrong():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.8, 0.1, 0.1]])
    labels = torch.tensor([0, 1, 2, 2])  # 3 of 4 right at top-1; all 4 in top-5 (K=3)
    m = compute_metrics(scores, labels, num_failed=2, num_classes=3)
    assert m["num_videos"] == 6 and m["num_evaluated"] == 4 and m["num_failed"] == 2
    assert m["top1"] == pytest.approx(75.0)
    assert m["top5"] == pytest.approx(100.0)
    assert m["top1_counting_failures"] == pytest.approx(50.0)
    assert m["top5_counting_failures"] == pytest.approx(100 * 4 / 6)
    assert m["confusion_matrix"].sum() == 4


def test_all_videos_failed_gives_zeros_not_a_crash():
    m = compute_metrics(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), num_failed=3, num_classes=3)
    assert (m["top1"], m["top1_counting_failures"], m["num_videos"]) == (0.0, 0.0, 3)


def test_label_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        compute_metrics(torch.zeros(1, 3), torch.tensor([3]), num_failed=0, num_classes=3)


# ----------------------------------------------------------------------------- multi-label
def sklearn_ap():
    """scikit-learn's average_precision_score (the reference), or a skip saying how to get it."""
    sk = pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn (a test dependency, `pip install scikit-learn`) is the reference"
    )
    return sk.average_precision_score


# 8 videos x 4 classes, with tied scores within and across classes; class 3 has no positive.
ML_SCORES = torch.tensor(
    [
        [0.9, 0.1, 0.4, 0.2],
        [0.8, 0.4, 0.4, 0.1],
        [0.7, 0.4, 0.1, 0.3],
        [0.7, 0.9, 0.6, 0.5],
        [0.2, 0.2, 0.6, 0.9],
        [0.6, 0.3, 0.6, 0.8],
        [0.1, 0.8, 0.2, 0.4],
        [0.5, 0.4, 0.9, 0.6],
    ],
    dtype=torch.float64,
)
ML_TARGETS = torch.tensor(
    [
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 0],
    ],
    dtype=torch.bool,
)


def test_average_precision_by_hand():
    # ranked 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.6 (neg): AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([1, 0, 1, 0])) == pytest.approx(5 / 6)
    # a tie between a positive and a negative is one threshold: precision 1/2 there, not 1 or 0
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])) == pytest.approx(0.5)
    assert average_precision(torch.tensor([0.3, 0.2]), torch.tensor([0, 0])) is None


def test_per_class_ap_and_map_match_scikit_learn():
    ap_ref = sklearn_ap()
    y, s = ML_TARGETS.numpy().astype(int), ML_SCORES.numpy()
    m = multilabel_metrics(ML_SCORES, ML_TARGETS)
    for c in range(3):
        assert m["per_class_ap"][c] == pytest.approx(100 * ap_ref(y[:, c], s[:, c]), abs=1e-12)
    # mAP over the classes that have positives = scikit-learn's macro average over those classes.
    assert m["mAP"] == pytest.approx(100 * ap_ref(y[:, :3], s[:, :3], average="macro"), abs=1e-12)
    assert m["classes_with_positives"] == 3 and m["classes_without_positives"] == 1
    assert m["class_positives"] == [3, 3, 4, 0]


def test_class_without_positives_is_left_out_where_scikit_learn_counts_zero():
    import warnings

    ap_ref = sklearn_ap()
    m = multilabel_metrics(ML_SCORES, ML_TARGETS)
    assert m["per_class_ap"][3] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the class without positives
        all4 = ap_ref(ML_TARGETS.numpy().astype(int), ML_SCORES.numpy(), average="macro")
    # scikit-learn averages in an AP of 0 for class 3; rs3d (PySlowFast / Charades) does not.
    assert m["mAP"] == pytest.approx(100 * all4 * 4 / 3, abs=1e-12)


def test_map_does_not_depend_on_video_order_bitwise():
    m = multilabel_metrics(ML_SCORES, ML_TARGETS)
    for seed in range(5):
        perm = torch.randperm(8, generator=torch.Generator().manual_seed(seed))
        p = multilabel_metrics(ML_SCORES[perm], ML_TARGETS[perm])
        assert p["mAP"] == m["mAP"] and p["per_class_ap"] == m["per_class_ap"]


def test_multilabel_failures_rank_last_in_the_counting_failures_map():
    ap_ref = sklearn_ap()
    failed = torch.tensor([[1, 0, 0, 1]], dtype=torch.bool)
    m = multilabel_metrics(ML_SCORES, ML_TARGETS, failed)
    assert (m["num_videos"], m["num_evaluated"], m["num_failed"]) == (9, 8, 1)
    assert m["mAP"] == multilabel_metrics(ML_SCORES, ML_TARGETS)["mAP"]
    scores = torch.cat([ML_SCORES, torch.full((1, 4), -1.0, dtype=torch.float64)]).numpy()
    y = torch.cat([ML_TARGETS, failed]).numpy().astype(int)
    per_class = [ap_ref(y[:, c], scores[:, c]) for c in range(4)]  # class 3 now has a positive
    assert m["mAP_counting_failures"] == pytest.approx(100 * sum(per_class) / 4, abs=1e-12)


def test_multilabel_top1_and_top1_hits():
    # top classes per row: 0,0,0,1,3,3,1,2 -> a true class for rows 0,2,3,6,7 (5 of 8)
    assert multilabel_metrics(ML_SCORES, ML_TARGETS)["top1"] == pytest.approx(62.5)
    assert float(top1_hits(ML_SCORES, ML_TARGETS)) == 5.0
    assert float(top1_hits(ML_SCORES, torch.tensor([0, 0, 0, 1, 3, 0, 1, 1]))) == 6.0  # rows 0-4 and 6


def test_multilabel_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        multilabel_metrics(ML_SCORES, ML_TARGETS[:, :3])
