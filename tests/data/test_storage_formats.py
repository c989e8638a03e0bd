"""rs3d-prepare-kinetics storage options, each round-tripped: prepare, read the copy back with PyAV
(size, rate, keyframes, codec, encoder settings as asked), load it through rs3d (frames and labels
as expected).

The source videos are grey ramps: frame ``i`` has the level ``20 + 5 i``, so a decoded frame names
the source frame it came from even after lossy re-encoding.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rs3d.cli import prepare_kinetics as prepare
from rs3d.config import get_cfg
from rs3d.data import build_dataset, read_classes, read_video_list
from rs3d.data.storage import Storage, frames_at_rate
from rs3d.errors import DataError  # noqa: E402

LEVEL0, STEP = 20, 5


def _ramp(path: Path, frames: int, fps: int, h: int = 48, w: int = 64) -> None:
    from rs3d.data.synthetic import write_video

    levels = LEVEL0 + STEP * np.arange(frames)
    video = np.broadcast_to(levels[:, None, None, None], (frames, h, w, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), np.ascontiguousarray(video), fps, "libx264", {"qp": "0"})


def source_index(rgb: np.ndarray) -> int:
    """Which source frame a decoded frame shows."""
    return int(round((float(rgb.mean()) - LEVEL0) / STEP))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """ROOT/{train,val}/<class>/<video>: 30 fps and 25 fps ramps of 40 frames."""
    root = tmp_path_factory.mktemp("kinetics_tree")
    _ramp(root / "train" / "abseiling" / "a.mp4", 40, 30)
    _ramp(root / "train" / "air drumming" / "b.mp4", 40, 25)
    _ramp(root / "val" / "abseiling" / "c.mp4", 40, 30)
    return root


def _prepare(tree, out, *flags):
    assert prepare.main([str(tree), "--out", str(out), "--workers", "1", *flags]) == 0
    train = read_video_list(str(out / "train.csv"), path_prefix=str(out), num_classes=2)
    val = read_video_list(str(out / "val.csv"), path_prefix=str(out), num_classes=2)
    return train, val


def _read_back(path):
    """(stream facts, decoded RGB frames, keyframe positions in decoding order)."""
    with av.open(path) as c:
        s = c.streams.video[0]
        facts = dict(
            width=s.codec_context.width,
            height=s.codec_context.height,
            rate=Fraction(s.average_rate),
            codec=s.codec_context.name,
        )
        keys = [i for i, p in enumerate(p for p in c.demux(s) if p.size) if p.is_keyframe]
    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return facts, frames, keys


def test_frames_at_rate_keeps_the_source_frame_nearest_in_time():
    def picked(src_fps, out_fps, n):
        src = [(Fraction(i, src_fps), i) for i in range(n)]
        return list(frames_at_rate(iter(src), Fraction(out_fps)))

    assert picked(30, 15, 10) == [0, 2, 4, 6, 8]
    # 25 -> 15 fps: output k at k/15 s is source k*5/3 rounded: 0, 1.67, 3.33, 5, 6.67
    assert picked(25, 15, 8) == [0, 2, 3, 5, 7]
    assert picked(24, 15, 8) == [0, 2, 3, 5, 6]  # 1.6, 3.2, 4.8, 6.4; 8 would be past the end


@pytest.mark.parametrize(
    "flags, expect",
    [
        (["--short-side", "32"], dict(short=32, rate=None, gop=32, codec="h264")),
        (["--fps", "15"], dict(short=48, rate=15, gop=32, codec="h264")),
        (
            ["--gop", "8", "--tune", "fastdecode", "--crf", "28"],
            dict(short=48, rate=None, gop=8, codec="h264", sei=[b"crf=28.0", b"cabac=0", b"deblock=0"]),
        ),
        (["--codec", "mpeg4", "--fps", "15", "--gop", "4"], dict(short=48, rate=15, gop=4, codec="mpeg4")),
        (["--codec", "hevc", "--gop", "8"], dict(short=48, rate=None, gop=8, codec="hevc")),
    ],
)
def test_each_storage_option_round_trips(tree, tmp_path, flags, expect):
    out = tmp_path / "out"
    train, val = _prepare(tree, out, *flags)
    assert read_classes(str(out)) == ["abseiling", "air drumming"]
    assert [(Path(r.path).name, r.label) for r in train] == [("a.mp4", 0), ("b.mp4", 1)]
    assert [(Path(r.path).name, r.label) for r in val] == [("c.mp4", 0)]
    src_rate = {"a.mp4": 30, "b.mp4": 25, "c.mp4": 30}
    for r in train + val:
        assert r.path.startswith(str(out / "videos"))
        facts, frames, keys = _read_back(r.path)
        assert min(facts["width"], facts["height"]) == expect["short"]
        assert facts["codec"] == expect["codec"]
        src = src_rate[Path(r.path).name]
        rate = expect["rate"] or src
        assert facts["rate"] == rate
        # Every stored frame is the source frame nearest in time; the copy lasts as long.
        want = list(frames_at_rate(((Fraction(i, src), i) for i in range(40)), Fraction(rate)))
        assert [source_index(f) for f in frames] == want
        # A keyframe at the start and at most gop frames apart (x264 may add one at a cut).
        assert keys[0] == 0 and max(np.diff(keys + [len(frames)])) <= expect["gop"]
        data = Path(r.path).read_bytes()
        for needle in expect.get("sei", []):  # x264 writes its settings into the stream
            assert needle in data, needle
    stored = (out / "storage.json").read_text()
    assert f'"gop": {expect["gop"]}' in stored


def test_a_15_fps_copy_gives_the_clip_of_the_same_seconds_with_target_fps(tree, tmp_path):
    """Stored at 15 fps and sampled by time (DATA.TARGET_FPS 30, SAMPLING_RATE 2), the validation
    clip shows the source frames the 30 fps original gives: every stored frame, no longer every
    second one."""
    full, _ = _prepare(tree, tmp_path / "full", "--short-side", "48")
    half, _ = _prepare(tree, tmp_path / "half", "--fps", "15")
    clips = {}
    for name in ("full", "half"):
        cfg = get_cfg()
        cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path / name)
        cfg.MODEL.NUM_CLASSES = 2
        cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS = 4, 2, 30.0
        cfg.DATA.TEST_CROP_SIZE = 32
        ds = build_dataset(cfg, "train", "val")
        item = ds[0]  # a.mp4, 30 fps source
        assert item["label"] == 0
        clips[name] = [source_index(item["clip"][:, t].permute(1, 2, 0).numpy()) for t in range(item["clip"].shape[1])]
    # 40 frames at 30 fps: the centre clip of 4 frames 2 apart starts at (40 - 8) // 2 = 16.
    assert clips["full"] == [16, 18, 20, 22]
    assert clips["half"] == clips["full"]


def test_bad_storage_options_are_one_line(tree, tmp_path, capsys):
    assert prepare.main([str(tree), "--out", str(tmp_path / "o"), "--codec", "mpeg4", "--tune", "fastdecode"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tune" in err and len(err.splitlines()) == 1
    with pytest.raises(DataError, match="--gop"):
        Storage(gop=0)
