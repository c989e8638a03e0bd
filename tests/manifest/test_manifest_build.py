"""rs3d-manifest build and diff on generated Kinetics-style copies: fingerprints that do not depend
on how the build ran, and that change (and are reported) when the data does."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kinetics_copies import CLASSES, make_clips, write_copy, write_tiny_video

from rs3d.cli.manifest import main as cli
from rs3d.data.synthetic import write_video
from rs3d.manifest.build import PARTIAL, build_manifest
from rs3d.manifest.digest import MIB, content_digest
from rs3d.manifest.keys import kinetics_key, match_key, video_key
from rs3d.manifest.listing import ListFormat
from rs3d.manifest.probe import manifest_row
from rs3d.manifest.progress import Progress
from rs3d.manifest.table import read_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """A copy with 3 classes x (3 train + 2 val) clips, the first training clip over 2 MiB."""
    clips = make_clips({"train": 3, "val": 2})
    root = write_copy(tmp_path_factory.mktemp("copy"), clips, big=[clips[0]])
    return root, clips


def _clone(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _fingerprints(out: Path) -> dict:
    summary = json.loads((out / "manifest.json").read_text())
    return {s: v["fingerprint"] for s, v in summary["splits"].items()}


def _diff(a: Path, b: Path, capsys, *extra) -> tuple:
    code = cli(["diff", str(a), str(b), "--max-keys", "0", *extra])
    return code, capsys.readouterr().out


def test_kinetics_keys_from_the_downloaders_names():
    assert kinetics_key("/x/abseiling/abc123def45_000010_000020.mp4") == "abc123def45_000010_000020"
    assert kinetics_key("abc123def45_10_20.mkv") == "abc123def45_000010_000020"  # unpadded times
    assert kinetics_key("-bc_23def45_000010_000020.webm") == "-bc_23def45_000010_000020"
    assert kinetics_key("v_ApplyEyeMakeup_g08_c01.avi") is None
    assert kinetics_key("abc123def45.mp4") is None
    assert video_key("/d/UCF-101/ApplyEyeMakeup/v_A_g08_c01.avi", "/d/UCF-101") == "ApplyEyeMakeup/v_A_g08_c01.avi"
    keys = {"ApplyEyeMakeup/v_A_g08_c01.avi", "abc123def45_000010_000020"}
    assert match_key("/elsewhere/copy/ApplyEyeMakeup/v_A_g08_c01.avi", keys) == "ApplyEyeMakeup/v_A_g08_c01.avi"
    assert match_key("/k/other_folder/abc123def45_10_20.mp4", keys) == "abc123def45_000010_000020"
    assert match_key("/k/ApplyEyeMakeup/v_A_g08_c02.avi", keys) is None


def test_fast_digest_sees_the_first_and_last_mib_and_full_sees_every_byte(tmp_path):
    data = bytearray(random.Random(0).randbytes(3 * MIB + 123))
    path = tmp_path / "f.bin"

    def digests(blob):
        path.write_bytes(bytes(blob))
        return content_digest(str(path)), content_digest(str(path), full=True)

    fast0, full0 = digests(data)
    assert fast0.startswith("fast:") and full0.startswith("full:")
    for offset, fast_sees in (
        (10, True),
        (MIB - 1, True),
        (len(data) - MIB, True),
        (len(data) - 1, True),
        (MIB + 5, False),
        (2 * MIB, False),
    ):
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        fast, full = digests(changed)
        assert (fast != fast0) == fast_sees, offset
        assert full != full0, offset
    fast, _ = digests(data[:-1])  # one byte shorter: the size is part of the digest
    assert fast != fast0


def test_fingerprints_do_not_depend_on_runs_processes_or_list_order(copy, tmp_path):
    root, _ = copy
    build_manifest(str(root), str(tmp_path / "one"), workers=1, show_progress=False)
    build_manifest(str(root), str(tmp_path / "again"), workers=1, show_progress=False)
    shuffled = _clone(root, tmp_path / "shuffled")
    for split in ("train", "val"):
        lines = (shuffled / f"{split}.csv").read_text().splitlines()
        random.Random(1).shuffle(lines)
        (shuffled / f"{split}.csv").write_text("\n".join(lines) + "\n")
    build_manifest(str(shuffled), str(tmp_path / "three"), workers=3, show_progress=False)
    for split in ("train", "val"):
        one = (tmp_path / "one" / f"{split}.csv.gz").read_bytes()
        assert one == (tmp_path / "again" / f"{split}.csv.gz").read_bytes()
        assert one == (tmp_path / "three" / f"{split}.csv.gz").read_bytes()  # another folder, order, 3 processes
    assert _fingerprints(tmp_path / "one") == _fingerprints(tmp_path / "three")
    m = read_manifest(str(tmp_path / "three"))
    assert len(m.splits["train"]) == 9 and len(m.splits["val"]) == 6
    row = m.splits["train"][0]
    assert row["decodable"] and row["width"] == 32 and row["frames"] == 6 and row["fps"] == 25.0
    assert all(r["key"] == kinetics_key(r["path"]) for r in m.splits["train"])


@pytest.mark.parametrize("where", ["first MiB", "last MiB"])
def test_one_changed_byte_changes_the_fingerprint_and_diff_reports_it(copy, tmp_path, capsys, where):
    root, clips = copy
    build_manifest(str(root), str(tmp_path / "a"), workers=1, show_progress=False)
    other = _clone(root, tmp_path / "other")
    big = other / clips[0].rel
    data = bytearray(big.read_bytes())
    assert len(data) > 2 * MIB
    data[100 if where == "first MiB" else len(data) - 100] ^= 0x01
    big.write_bytes(bytes(data))
    build_manifest(str(other), str(tmp_path / "b"), workers=2, show_progress=False)
    fa, fb = _fingerprints(tmp_path / "a"), _fingerprints(tmp_path / "b")
    assert fa["train"] != fb["train"] and fa["val"] == fb["val"]
    code, out = _diff(tmp_path / "a", tmp_path / "b", capsys)
    assert code == 1
    assert "train: 0 added, 0 removed, 0 relabelled, 1 changed, 8 same" in out
    assert f"  changed\ttrain\t{clips[0].stem}" in out


def test_a_change_in_the_middle_needs_full_digests(copy, tmp_path, capsys):
    root, clips = copy
    other = _clone(root, tmp_path / "other")
    big = other / clips[0].rel
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0x01
    big.write_bytes(bytes(data))
    for name, src, full in (("a", root, False), ("b", other, False), ("fa", root, True), ("fb", other, True)):
        build_manifest(str(src), str(tmp_path / name), workers=1, full=full, show_progress=False)
    assert _diff(tmp_path / "a", tmp_path / "b", capsys)[0] == 0  # the fast digest does not read the middle
    code, out = _diff(tmp_path / "fa", tmp_path / "fb", capsys)
    assert code == 1 and f"  changed\ttrain\t{clips[0].stem}" in out
    assert read_manifest(str(tmp_path / "fa")).splits["train"][0]["digest"].startswith("full:")
    assert cli(["diff", str(tmp_path / "a"), str(tmp_path / "fa")]) == 2
    assert "fast digests" in capsys.readouterr().err


def test_the_progress_line_gives_rate_and_eta():
    import io

    stream = io.StringIO()
    p = Progress(10, "manifest", done=4, stream=stream)
    p.period = 0.0
    p.update(2)
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("manifest 6/10 (60.0%) ") and "videos/s" in lines[0] and "ETA 0:" in lines[0]
    assert len(lines) == 1  # close() does not repeat a line already shown


def test_a_relabelled_line_and_a_removed_video_change_the_fingerprint(copy, tmp_path, capsys):
    root, clips = copy
    build_manifest(str(root), str(tmp_path / "a"), workers=1, show_progress=False)
    other = _clone(root, tmp_path / "other")
    lines = (other / "val.csv").read_text().splitlines()
    path, label = lines[0].rsplit(" ", 1)
    lines[0] = f"{path} {(int(label) + 1) % len(CLASSES)}"
    removed = lines.pop(3)
    (other / "val.csv").write_text("\n".join(lines) + "\n")
    build_manifest(str(other), str(tmp_path / "b"), workers=2, show_progress=False)
    fa, fb = _fingerprints(tmp_path / "a"), _fingerprints(tmp_path / "b")
    assert fa["val"] != fb["val"] and fa["train"] == fb["train"]
    code, out = _diff(tmp_path / "a", tmp_path / "b", capsys, "--intersection", str(tmp_path / "common"))
    assert code == 1
    assert "val: 0 added, 1 removed, 1 relabelled, 0 changed, 4 same" in out
    assert f"  relabelled\tval\t{kinetics_key(path)}" in out
    assert f"  removed\tval\t{kinetics_key(removed.rsplit(' ', 1)[0])}" in out
    assert "train: 0 added, 0 removed, 0 relabelled, 0 changed, 9 same" in out
    common = read_manifest(str(tmp_path / "common"))
    assert len(common.splits["val"]) == 4 and len(common.splits["train"]) == 9
    code, out = _diff(tmp_path / "b", tmp_path / "a", capsys)  # the other way round: an added video
    assert code == 1 and "val: 1 added, 0 removed, 1 relabelled" in out
    code, out = _diff(tmp_path / "a", tmp_path / "a", capsys)
    assert code == 0


def test_a_deleted_file_and_broken_files_are_rows_not_errors(copy, tmp_path, broken_videos, capsys):
    root, clips = copy
    other = _clone(root, tmp_path / "other")
    (other / clips[-1].rel).unlink()  # a val clip: listed, no longer on disk
    with open(other / "val.csv", "a") as f:
        for kind in ("truncated", "not_a_video", "audio_only"):
            dst = other / "videos" / "archery" / f"{kind}.mp4"
            shutil.copy(broken_videos[kind], dst)
            f.write(f"videos/archery/{kind}.mp4 2\n")
    summary = build_manifest(str(other), str(tmp_path / "m"), workers=2, show_progress=False)
    val = summary["splits"]["val"]
    assert (val["videos"], val["decodable"], val["undecodable"], val["missing"]) == (9, 5, 3, 1)
    rows = {r["path"]: r for r in read_manifest(str(tmp_path / "m")).splits["val"]}
    assert rows["archery/not_a_video.mp4"]["reason"].startswith("cannot open")
    assert rows["archery/audio_only.mp4"]["reason"] == "no video stream"
    assert rows[clips[-1].rel[len("videos/") :]]["reason"] == "file not found"
    build_manifest(str(root), str(tmp_path / "a"), workers=1, show_progress=False)
    code, out = _diff(tmp_path / "a", tmp_path / "m", capsys)
    assert code == 1 and "val: 3 added, 0 removed, 0 relabelled, 1 changed, 5 same" in out


def test_the_displayed_size_follows_the_display_matrix(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    plain = tmp_path / "plain.mp4"
    import numpy as np

    write_video(str(plain), np.zeros((4, 48, 64, 3), np.uint8), 25, "libx264")
    rotated = tmp_path / "rot90.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(plain),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    row = manifest_row(str(plain), "", "x", "0")
    assert (row["width"], row["height"]) == (64, 48)
    row = manifest_row(str(rotated), "", "x", "0")
    assert (row["width"], row["height"], row["decodable"]) == (48, 64, True)


def _partial_rows(out: Path) -> int:
    p = out / PARTIAL / "train.jsonl"
    return p.read_bytes().count(b"\n") if p.is_file() else 0


@pytest.mark.slow
def test_an_interrupted_build_resumes_to_the_same_output(tmp_path):
    """Kill a real build process part-way (SIGKILL: no clean-up), tear its last line, rerun."""
    root = tmp_path / "big"
    seed_video = tmp_path / "seed.mp4"
    write_tiny_video(seed_video, 0)
    lines = []
    for i in range(600):  # distinct files (each a copy with its own trailing byte): probing takes seconds
        rel = f"videos/c{i % 3}/{i:011d}_000000_000010.mp4"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(seed_video.read_bytes() + bytes([i % 256]))
        lines.append(f"{rel} {i % 3}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    build_manifest(str(root), str(tmp_path / "whole"), workers=1, show_progress=False)

    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "rs3d.cli.manifest", "build", str(root), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _partial_rows(out) < 50 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _partial_rows(out)
    assert 50 <= done < 600 and not (out / "manifest.json").exists(), "the build was not stopped part-way"
    with open(out / PARTIAL / "train.jsonl", "ab") as f:
        f.write(b'{"key": "torn')  # a line cut by the kill
    p = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"resuming: {done} of 600 videos were done by an earlier run" in p.stderr
    assert (out / "train.csv.gz").read_bytes() == (tmp_path / "whole" / "train.csv.gz").read_bytes()
    assert _fingerprints(out) == _fingerprints(tmp_path / "whole")
    assert not (out / PARTIAL).exists()
    with gzip.open(out / "train.csv.gz", "rt") as f:
        assert sum(1 for _ in f) == 601


def test_an_unfinished_build_with_other_settings_is_refused(copy, tmp_path, capsys):
    root, _ = copy
    (tmp_path / "m" / PARTIAL).mkdir(parents=True)
    (tmp_path / "m" / PARTIAL / "settings.json").write_text(json.dumps({"digest": "full"}))
    assert cli(["build", str(root), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "unfinished build with other settings (digest" in err
    assert os.listdir(tmp_path / "m") == [PARTIAL]


def test_the_probe_columns_agree_with_an_independent_generator(tmp_path):
    """The direction set's generator decides every file's rate, length and size (several
    containers and codecs); the manifest must read back exactly those."""
    from rs3d.data.synthetic_directions import _spec, make_direction_dataset

    make_direction_dataset(
        str(tmp_path / "dirs"), num_classes=2, train_per_class=2, val_per_class=1, test_per_class=2, workers=1
    )
    build_manifest(str(tmp_path / "dirs"), str(tmp_path / "m"), workers=2, show_progress=False)
    m = read_manifest(str(tmp_path / "m"))
    seen = set()
    for split, rows in m.splits.items():
        for r in rows:
            i = int(r["path"].split("/")[-1][:4])
            spec = _spec(0, split, i, int(r["label_index"]))
            assert r["decodable"], r
            assert (r["width"], r["height"], r["fps"]) == (spec["width"], spec["height"], spec["fps"]), r
            assert r["frames"] == spec["length"], r
            assert r["duration"] == pytest.approx(spec["length"] / spec["fps"], abs=0.1), r
            seen.add(spec["ext"])
    assert len(m.splits["train"]) == 4 and len(seen) >= 2, seen


def test_multi_label_rows_name_every_class(copy, tmp_path):
    root, clips = copy
    other = _clone(root, tmp_path / "multi")
    rels = [c.rel for c in clips if c.split == "val"][:3]
    (other / "val.csv").write_text(f"{rels[0]} 0,2\n{rels[1]} -\n{rels[2]} 1\n")
    summary = build_manifest(
        str(other),
        str(tmp_path / "m"),
        splits=["val"],
        workers=1,
        show_progress=False,
        fmt=ListFormat(multi_label=True),
    )
    rows = {r["path"]: r for r in read_manifest(str(tmp_path / "m")).splits["val"]}
    got = [(rows[rel[len("videos/") :]]["label"], rows[rel[len("videos/") :]]["label_index"]) for rel in rels]
    assert got == [("abseiling|archery", "0,2"), ("-", "-"), ("air drumming", "1")]
    assert summary["splits"]["val"]["videos"] == 3
