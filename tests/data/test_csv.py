"""Video lists: what is accepted, and that every bad line is refused naming file:line."""

import logging
import re

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


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("a.mp4 0\nb.mp4 4\n", 2, "outside [0, 4)"),
        ("a.mp4 0\n\nb.mp4 -1\n", 3, "outside"),
        ("a.mp4 0\nb.mp4 cat\n", 2, "not an integer"),
        ("lonely_path_without_label\n", 1, "expected"),
    ],
)
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


# ---------------------------------------------------------------- lists as they come from the wild
@pytest.fixture
def csv_log():
    """The log records of rs3d.data.csv (a handler of its own: the "rs3d" logger may not propagate)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("rs3d.data.csv")
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield records
    log.removeHandler(handler)
    log.setLevel(old_level)


def test_utf8_bom_is_removed_from_the_first_path(tmp_path):
    p = tmp_path / "train.csv"
    p.write_bytes("\ufeffa.mp4 0\nb.mp4 1\n".encode("utf-8"))
    assert [(r.path, r.label) for r in read_video_list(str(p))] == [("a.mp4", 0), ("b.mp4", 1)]
    (tmp_path / "classes.txt").write_bytes("\ufeffcat\ndog\n".encode("utf-8"))
    assert read_classes(str(tmp_path)) == ["cat", "dog"]


@pytest.mark.parametrize(
    "header", ["path label", "video,label", "filename\tclass", "Path Label", "path_to_video label_id"]
)
def test_a_header_line_is_skipped_and_logged(tmp_path, csv_log, header):
    p = _write(tmp_path, f"{header}\n\na.mp4 0\nb.mp4 1\n")
    assert [(r.path, r.label) for r in read_video_list(str(p))] == [("a.mp4", 0), ("b.mp4", 1)]
    (rec,) = csv_log
    assert rec.levelno == logging.INFO and rec.getMessage() == f"{p}:1: header line {header!r} skipped"


def test_only_the_first_line_can_be_a_header(tmp_path):
    p = _write(tmp_path, "a.mp4 0\npath label\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(p))}:2: label 'label' is not an integer$"):
        read_video_list(str(p))


@pytest.mark.parametrize(
    "text, separator, line, found",
    [
        ("a.mp4 0\nb.mp4\t1\n", " ", 2, "\\t"),
        ("a b/c.mp4\t1\n", " ", 1, "\\t"),  # the path's space does not make it parse
        ("a.mp4,0\n", " ", 1, ","),
        ("dir with space/a.mp4,3\n", " ", 1, ","),
        ("a.mp4,0\nb.mp4 1\n", ",", 2, " "),
        ("a.mp4;0\n", "\t", 1, ";"),
    ],
)
def test_another_separator_is_named_with_the_key(tmp_path, text, separator, line, found):
    p = _write(tmp_path, text)
    with pytest.raises(DataError) as e:
        read_video_list(str(p), separator=separator, num_classes=4)
    msg = str(e.value)
    assert msg.startswith(
        f"{p}:{line}: path and label are separated by '{found}' but DATA.PATH_LABEL_SEPARATOR is {separator!r}"
    ), msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "text, separator, path, label",
    [
        ("dir with space/ü, x.mp4 3\n", " ", "dir with space/ü, x.mp4", 3),
        ("a b/c, d.mp4,2\n", ",", "a b/c, d.mp4", 2),
        ("a b, c.mp4\t1\n", "\t", "a b, c.mp4", 1),
        ("a b\tc.mp4  1\n", "", "a b\tc.mp4", 1),  # "" = any whitespace: the last field is the label
        ("日本語 クリップ.mp4 0\n", " ", "日本語 クリップ.mp4", 0),
    ],
)
def test_paths_with_spaces_commas_and_unicode_still_parse(tmp_path, text, separator, path, label):
    p = tmp_path / "train.csv"
    p.write_text(text, encoding="utf-8")
    (rec,) = read_video_list(str(p), separator=separator, num_classes=4)
    assert (rec.path, rec.label) == (path, label)


def test_duplicates_in_training_are_kept_and_warned_once(tmp_path, csv_log):
    p = _write(tmp_path, "a.mp4 0\nb.mp4 1\na.mp4 0\n./b.mp4 1\nc.mp4 2\nb.mp4 1\n")
    recs = read_video_list(str(p), path_prefix="/data")
    assert [r.path for r in recs] == [
        "/data/a.mp4",
        "/data/b.mp4",
        "/data/a.mp4",
        "/data/./b.mp4",
        "/data/c.mp4",
        "/data/b.mp4",
    ]
    (rec,) = csv_log
    assert rec.levelno == logging.WARNING
    assert rec.getMessage().startswith(
        f"{p}:3: 3 duplicate line(s) in this list, the first here "
        "(a.mp4, first on line 1); every line is used as listed"
    )


def test_a_training_duplicate_with_another_label_is_counted_in_the_warning(tmp_path, csv_log):
    p = _write(tmp_path, "a.mp4 0\na.mp4 1\n")
    assert [r.label for r in read_video_list(str(p))] == [0, 1]
    (rec,) = csv_log
    msg = rec.getMessage()
    assert msg.startswith(f"{p}:2: 1 duplicate") and msg.endswith("; 1 of them give the video another label")


def test_duplicates_in_evaluation_count_once_and_say_so(tmp_path, csv_log):
    p = _write(tmp_path, "a.mp4 0\nb.mp4 1\na.mp4 0\n./b.mp4 1\nc.mp4 2\n")
    recs = read_video_list(str(p), duplicates="drop")
    assert [(r.path, r.label) for r in recs] == [("a.mp4", 0), ("b.mp4", 1), ("c.mp4", 2)]
    (rec,) = csv_log
    assert rec.getMessage() == (
        f"{p}:3: 2 duplicate line(s) in this list, the first here (a.mp4, first "
        "on line 1); each video is evaluated once, with its first line"
    )


def test_an_evaluated_video_with_two_labels_is_refused_naming_both_lines(tmp_path):
    p = _write(tmp_path, "a.mp4 0\nb.mp4 1\n\na.mp4 2\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(p))}:4: a\.mp4 has label 2 here and 0 on line 1; "):
        read_video_list(str(p), duplicates="drop")


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    p = tmp_path / "train.csv"
    p.write_bytes(b"a.mp4 0\n\xe9t\xe9.mp4 1\n")  # latin-1
    with pytest.raises(DataError, match=rf"^{re.escape(str(p))}:2: not UTF-8 text"):
        read_video_list(str(p))
