"""Metrics against numbers worked out by hand."""
import pytest
import torch

from rs3d.engine.metrics import (
    aggregate_views,
    compute_metrics,
    confusion_matrix,
    mean_class_accuracy,
    topk_accuracy,
    topk_indices,
)

# Three views of one video over three classes.
VIEWS = torch.tensor([
    [0.6, 0.3, 0.1],
    [0.1, 0.8, 0.1],
    [0.2, 0.2, 0.6],
])


def test_aggregate_mean_sum_max_by_hand():
    assert torch.allclose(aggregate_views(VIEWS, "mean"), torch.tensor([0.3, 1.3 / 3, 0.8 / 3]))
    assert torch.allclose(aggregate_views(VIEWS, "sum"), torch.tensor([0.9, 1.3, 0.8]))
    assert torch.allclose(aggregate_views(VIEWS, "max"), torch.tensor([0.6, 0.8, 0.6]))


def test_aggregation_changes_the_winner_when_it_should():
    # mean picks class 1, max picks the single confident view of class 0.
    views = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    assert aggregate_views(views, "mean").argmax() == 1  # 0.3, 0.367, 0.333
    assert aggregate_views(views, "max").argmax() == 0   # 0.9, 0.5, 0.5


def test_aggregate_rejects_unknown_method_and_no_views():
    with pytest.raises(ValueError, match="ENSEMBLE_METHOD"):
        aggregate_views(VIEWS, "median")
    with pytest.raises(ValueError, match="V >= 1"):
        aggregate_views(torch.zeros(0, 3))


def test_topk_ties_go_to_lower_class_index():
    scores = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.4, 0.4, 0.1]])
    assert topk_indices(scores, 2).tolist() == [[0, 1], [1, 2]]


def test_topk_accuracy_by_hand():
    scores = torch.tensor([
        [0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0],  # order 3,2,1,0,... label 3 -> top1 yes
        [0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0],  # label 2 -> rank 3: top1 no, top5 yes
        [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.7],  # label 0 -> rank 4 (ties at 0 by index): top5 yes
        [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.7],  # label 3 -> rank 7: top5 no
    ])
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
