"""rs3d-prepare-kinetics: CSVs from a class-folder tree, broken files reported, re-encoding."""

import shutil
from pathlib import Path

import av

from rs3d.cli import prepare_kinetics as prepare
from rs3d.data import read_classes, read_video_list


def _tree(root, synthetic_dataset, broken_videos):
    videos = sorted((synthetic_dataset / "videos" / "train").iterdir())
    for split, chosen in (("train", videos[:4]), ("val", videos[4:6])):
        for i, v in enumerate(chosen):
            d = root / split / ("abseiling" if i % 2 else "air drumming")
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy(v, d / v.name)
    shutil.copy(broken_videos["not_a_video"], root / "val" / "abseiling" / "bad.mp4")
    shutil.copy(broken_videos["audio_only"], root / "train" / "abseiling" / "sound.mp4")
    (root / "train" / "abseiling" / "notes.txt").write_text("not listed: not a video extension")


def test_builds_lists_and_reports_broken(tmp_path, synthetic_dataset, broken_videos):
    _tree(tmp_path / "k", synthetic_dataset, broken_videos)
    assert prepare.main([str(tmp_path / "k"), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    out = tmp_path / "out"
    assert read_classes(str(out)) == ["abseiling", "air drumming"]
    train = read_video_list(str(out / "train.csv"), num_classes=2)
    val = read_video_list(str(out / "val.csv"), num_classes=2)
    assert len(train) == 4 and len(val) == 2  # the 2 broken files are left out
    assert all(Path(r.path).is_file() for r in train + val)
    assert {r.label for r in train if "air drumming" in r.path} == {1}
    report = (out / "broken_videos.tsv").read_text().splitlines()
    reasons = dict(line.split("\t", 1) for line in report[1:])
    assert len(report) == 3 and reasons[str(tmp_path / "k/train/abseiling/sound.mp4")] == "no video stream"
    assert "cannot open" in reasons[str(tmp_path / "k/val/abseiling/bad.mp4")]


def test_reencodes_to_short_side(tmp_path, synthetic_dataset, broken_videos):
    _tree(tmp_path / "k", synthetic_dataset, broken_videos)
    out = tmp_path / "out"
    assert (
        prepare.main(
            [str(tmp_path / "k"), "--out", str(out), "--workers", "2", "--short-side", "32", "--splits", "val"]
        )
        == 0
    )
    val = read_video_list(str(out / "val.csv"), path_prefix=str(out), num_classes=2)
    assert len(val) == 2
    for r in val:
        assert r.path.startswith(str(out / "videos" / "val")) and r.path.endswith(".mp4")
        with av.open(r.path) as c:
            s = c.streams.video[0]
            assert min(s.width, s.height) == 32 and s.codec_context.name == "h264"


def test_bad_root_is_one_line_exit_2(tmp_path, capsys):
    assert prepare.main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
