"""The confusion matrix + per-class accuracy PNG, from counts or from a run's test_predictions.csv."""

import json

import matplotlib.image
import numpy as np
import pytest
import torch

from rs3d.cli.visualize import main as visualize_main
from rs3d.data import kinetics400_class_names
from rs3d.errors import DataError
from rs3d.evaluation.confusion import confusion_from_predictions, per_class_accuracy, plot_confusion_and_accuracy
from rs3d.evaluation.reports import write_predictions


def rec(index, label, scores=None, error=""):
    return {
        "index": index,
        "path": f"v{index}.mp4",
        "label": label,
        "scores": None if scores is None else np.asarray(scores, dtype=np.float64),
        "error": error,
    }


def test_per_class_accuracy_leaves_out_classes_without_videos():
    conf = np.array([[3, 1, 0], [0, 0, 0], [1, 1, 2]])
    acc = per_class_accuracy(conf)
    assert acc[0] == pytest.approx(75.0) and np.isnan(acc[1]) and acc[2] == pytest.approx(50.0)


def test_the_csv_of_a_test_run_gives_back_its_confusion_matrix(tmp_path):
    names = ["walking", "running", "jumping"]
    records = [
        rec(0, 0, [0.7, 0.2, 0.1]),
        rec(1, 0, [0.1, 0.8, 0.1]),
        rec(2, 1, [0.2, 0.7, 0.1]),
        rec(3, 2, error="truncated"),
        rec(4, 2, [0.5, 0.1, 0.4]),
        rec(5, 2, [0.1, 0.1, 0.8]),
    ]
    path = tmp_path / "test_predictions.csv"
    write_predictions(str(path), records, names)  # what rs3d-test writes
    conf, got_names, failed = confusion_from_predictions(str(path))
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    assert got_names == names and failed == 1
    assert confusion_from_predictions(str(path), num_classes=5)[0].shape == (5, 5)
    with pytest.raises(DataError, match="outside"):
        confusion_from_predictions(str(path), num_classes=2)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a test_predictions.csv"):
        confusion_from_predictions(str(tmp_path / "other.csv"))


@pytest.mark.parametrize("k", [3, 40, 400])
def test_the_png_opens_at_any_number_of_classes(tmp_path, k):
    rng = np.random.default_rng(k)
    conf = np.diag(rng.integers(1, 5, k)) + (rng.random((k, k)) < 0.02)
    names = kinetics400_class_names()[:k]
    path = tmp_path / "c.png"
    plot_confusion_and_accuracy(torch.as_tensor(conf), str(path), names, num_failed=2)
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 500 and image.std() > 0.05


def test_the_tool_writes_the_png_beside_the_csv(tmp_path, capsys):
    records = [rec(i, i % 4, np.eye(4)[(i * 3) % 4]) for i in range(12)]
    write_predictions(str(tmp_path / "test_predictions.csv"), records, None)
    assert visualize_main(["confusion", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"png": str(tmp_path / "test_confusion_matrix.png"), "classes": 4, "videos": 12, "failed": 0}
    assert matplotlib.image.imread(report["png"]).shape[2] in (3, 4)
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    assert visualize_main(["confusion", str(tmp_path), "--classes", str(tmp_path / "names.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 names for 4 classes" in err[0]
    assert visualize_main(["confusion", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err
