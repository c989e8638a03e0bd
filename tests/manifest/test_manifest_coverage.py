"""rs3d-manifest coverage against official annotation files, on generated copies with known gaps."""

from __future__ import annotations

import json
from pathlib import Path

from kinetics_copies import CLASSES, make_clips, write_copy, write_official_csv, write_tiny_video

from rs3d.cli.manifest import main as cli
from rs3d.data.annotations import convert_ucf101
from rs3d.manifest import build
from rs3d.manifest.build import build_manifest
from rs3d.manifest.probe import manifest_row


def test_coverage_against_an_official_kinetics_csv_counts_what_is_missing(tmp_path, capsys):
    clips = make_clips({"train": 2, "val": 4}, seed=3)
    val = [c for c in clips if c.split == "val"]
    by_class = {name: [c for c in val if c.label == name] for name in CLASSES}
    absent = by_class["abseiling"][:2] + by_class["archery"][:1]
    root = write_copy(tmp_path / "copy", clips, absent=absent)
    relabelled = by_class["air drumming"][0]  # this copy's list calls it archery
    lines = (root / "val.csv").read_text().splitlines()
    lines = [
        f"{relabelled.rel} {CLASSES.index('archery')}" if ln.startswith(relabelled.rel + " ") else ln for ln in lines
    ]
    (root / "val.csv").write_text("\n".join(lines) + "\n")
    broken = by_class["archery"][1]
    (root / broken.rel).write_bytes(b"not a video at all" * 50)
    renamed = by_class["air drumming"][1]  # saved by a downloader that names files by id only
    (root / renamed.rel).rename(root / "videos" / renamed.label / f"{renamed.youtube_id}.mp4")
    (root / "val.csv").write_text(
        (root / "val.csv").read_text().replace(renamed.rel, f"videos/{renamed.label}/{renamed.youtube_id}.mp4")
    )
    build_manifest(str(root), str(tmp_path / "m"), workers=1, show_progress=False)
    official = tmp_path / "kinetics400"
    write_official_csv(official / "validate.csv", val, "validate")
    write_official_csv(official / "train.csv", [c for c in clips if c.split == "train"], "train")

    out = tmp_path / "cov"
    assert cli(["coverage", str(tmp_path / "m"), "--reference", str(official / "validate.csv"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "val: 9 of 12 reference videos (75.00%), 3 missing, 1 label disagreements, 1 undecodable (against val)"
    ) in printed
    report = json.loads((out / "coverage.json").read_text())
    assert report["dataset"] == "kinetics"
    assert report["splits"]["val"]["found"] == 9 and report["splits"]["val"]["coverage_percent"] == 75.0
    assert report["per_class"]["val"] == {"abseiling": [4, 2], "air drumming": [4, 4], "archery": [4, 3]}
    missing = (out / "missing.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[1] for line in missing) == sorted(c.stem for c in absent)
    assert all(line.split("\t")[3].startswith(str(official / "validate.csv") + ":") for line in missing)
    disagreements = (out / "label_disagreements.tsv").read_text().splitlines()[1:]
    assert [d.split("\t")[1:4] for d in disagreements] == [[relabelled.stem, "air drumming", "archery"]]
    undecodable = (out / "undecodable.tsv").read_text().splitlines()[1:]
    assert [u.split("\t")[1] for u in undecodable] == [broken.stem]
    assert (out / "coverage_per_class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert (
        cli(
            [
                "coverage",
                str(tmp_path / "m"),
                "--reference",
                str(official / "train.csv"),
                "--out",
                str(tmp_path / "cov_train"),
            ]
        )
        == 0
    )
    assert "train: 6 of 6 reference videos (100.00%), 0 missing" in capsys.readouterr().out


def test_coverage_against_ucf101_lists_uses_relative_path_keys(tmp_path, capsys, monkeypatch):
    ann = tmp_path / "ucfTrainTestlist"
    ann.mkdir()
    (ann / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train = ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1", "Archery/v_Archery_g08_c01.avi 2"]
    test = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c02.avi",
        "Archery/v_Archery_g01_c01.avi",
        "Archery/v_Archery_g02_c01.avi",
    ]
    (ann / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (ann / "testlist01.txt").write_text("\n".join(test) + "\n")
    videos = tmp_path / "UCF-101"
    for i, rel in enumerate([t.split()[0] for t in train] + test[:3]):  # the last test video is missing
        write_tiny_video(videos / rel, i)
    convert_ucf101(str(ann), str(videos), str(tmp_path / "lists"), splits=(1,))
    probed = []
    monkeypatch.setattr(build, "manifest_row", lambda path, *a, **k: probed.append(path) or manifest_row(path, *a, **k))
    summary = build_manifest(str(tmp_path / "lists" / "split1"), str(tmp_path / "m"), workers=1, show_progress=False)
    assert sorted(probed) == sorted(set(probed)) and len(probed) == 5  # val and test list the same 3 videos
    assert summary["splits"]["val"]["fingerprint"] == summary["splits"]["test"]["fingerprint"]
    assert summary["root"] == str(videos)
    assert (
        cli(
            [
                "coverage",
                str(tmp_path / "m"),
                "--reference",
                str(ann / "testlist01.txt"),
                "--out",
                str(tmp_path / "cov"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "cov" / "coverage.json").read_text())
    assert report["dataset"] == "ucf101"
    assert report["splits"]["test"]["found"] == 3 and report["splits"]["test"]["missing"] == 1
    assert report["per_class"]["test"] == {"ApplyEyeMakeup": [2, 2], "Archery": [2, 1]}
    assert (tmp_path / "cov" / "missing.tsv").read_text().splitlines()[1].split("\t")[1] == test[3]
    capsys.readouterr()


def test_an_unknown_reference_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    ref = tmp_path / "notes.txt"
    ref.write_text("hello\n")
    build = Path(tmp_path / "copy")
    write_copy(build, make_clips({"train": 1}))
    build_manifest(str(build), str(tmp_path / "m"), workers=1, show_progress=False)
    assert cli(["coverage", str(tmp_path / "m"), "--reference", str(ref)]) == 2
    assert "not an annotation file rs3d knows" in capsys.readouterr().err


def test_the_other_official_formats_are_read_with_their_classes(tmp_path):
    from rs3d.manifest.reference import read_reference

    ssv2 = tmp_path / "ssv2"
    ssv2.mkdir()
    (ssv2 / "labels.json").write_text(json.dumps({"Holding something": "0", "Pushing something": "1"}))
    (ssv2 / "validation.json").write_text(
        json.dumps(
            [
                {"id": "78687", "label": "holding x", "template": "Holding [something]", "placeholders": ["x"]},
                {"id": "42", "label": "pushing y", "template": "Pushing [something]", "placeholders": ["y"]},
            ]
        )
    )
    name, entries = read_reference(str(ssv2 / "validation.json"))
    assert name == "ssv2" and [(e.split, e.stems, e.label) for e in entries] == [
        ("val", ("78687",), "Holding something"),
        ("val", ("42",), "Pushing something"),
    ]

    cha = tmp_path / "Charades"
    cha.mkdir()
    (cha / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    (cha / "Charades_v1_test.csv").write_text("id,subject,actions\nAB12C,s1,c001 0.0 3.1;c000 1.0 2.0\nZZ9,s2,\n")
    name, entries = read_reference(str(cha / "Charades_v1_test.csv"))
    assert name == "charades" and [(e.split, e.keys[0], e.label) for e in entries] == [
        ("test", "AB12C.mp4", "Holding some clothes|Putting clothes somewhere"),
        ("test", "ZZ9.mp4", "-"),
    ]

    hmdb = tmp_path / "splits"
    hmdb.mkdir()
    (hmdb / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (hmdb / "cartwheel_test_split1.txt").write_text("d.avi 2\n")
    name, entries = read_reference(str(hmdb))
    assert name == "hmdb51" and [(e.split, e.keys[0], e.label) for e in entries] == [
        ("train", "brush_hair/a.avi", "brush_hair"),
        ("test", "brush_hair/b.avi", "brush_hair"),
        ("test", "cartwheel/d.avi", "cartwheel"),
    ]
