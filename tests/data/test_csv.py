"""Video lists: what is accepted, and that every bad line is refused naming file:line."""
import pytest

from rs3d.data import DataError, build_dataset, read_classes, read_video_list


def _write(tmp_path, text, name="train.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_parses_paths_labels_prefix_and_skips_blank_lines(tmp_path):
    p = _write(tmp_path, "a/x.mp4 0\n\n  b/y z.mp4 3  \n\n")
    recs = read_video_list(str(p), path_prefix="/data", num_classes=4)
    assert [(r.path, r.label) for r in recs] == [("/data/a/x.mp4", 0), ("/data/b/y z.mp4", 3)]


def test_custom_separator(tmp_path):
    p = _write(tmp_path, "dir with space/x.mp4,1\n")
    recs = read_video_list(str(p), separator=",", num_classes=2)
    assert recs[0].path == "dir with space/x.mp4" and recs[0].label == 1


@pytest.mark.parametrize("text, line, words", [
    ("a.mp4 0\nb.mp4 4\n", 2, "outside [0, 4)"),
    ("a.mp4 0\n\nb.mp4 -1\n", 3, "outside"),
    ("a.mp4 0\nb.mp4 cat\n", 2, "not an integer"),
    ("lonely_path_without_label\n", 1, "expected"),
])
def test_bad_line_is_refused_with_file_and_line(tmp_path, text, line, words):
    p = _write(tmp_path, text)
    with pytest.raises(DataError) as e:
        read_video_list(str(p), num_classes=4)
    msg = str(e.value)
    assert f"{p}:{line}:" in msg and words in msg and "\n" not in msg


def test_missing_and_empty_lists(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_video_list(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="no videos"):
        read_video_list(str(_write(tmp_path, "\n\n")))


def test_build_dataset_checks_labels_against_num_classes_at_start(data_cfg):
    data_cfg.MODEL.NUM_CLASSES = 3  # the synthetic CSV has labels 0..3
    with pytest.raises(DataError, match=r"train\.csv:\d+: label 3 outside \[0, 3\)"):
        build_dataset(data_cfg, "train", "train")


def test_relative_paths_resolve_against_data_dir(data_cfg, synthetic_dataset):
    ds = build_dataset(data_cfg, "val", "val")
    assert all(r.path.startswith(str(synthetic_dataset)) for r in ds.records)


def test_read_classes(tmp_path, synthetic_dataset):
    assert read_classes(str(tmp_path)) is None
    assert read_classes(str(synthetic_dataset)) == ["move_up", "move_down", "move_sideways", "rotate"]
    (tmp_path / "classes.txt").write_text("a\n\nb\n")
    with pytest.raises(DataError, match=r"classes\.txt:2"):
        read_classes(str(tmp_path))
