"""The manifest's probe columns on files from the wild, against what the ffmpeg binary shows:
the size after the display matrix, the frame count where the packet index proves it, and
"decodable" for every file ffmpeg decodes (leading packets without their keyframe included)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # quirky_videos.py, shared

import quirky_videos as Q  # noqa: E402

from rs3d.manifest.probe import manifest_row  # noqa: E402

FFMPEG = Q.ffmpeg_exe()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        FFMPEG is None, reason="imageio-ffmpeg is not installed (test-only: pip install imageio-ffmpeg)"
    ),
]


@pytest.fixture(scope="module")
def quirky(tmp_path_factory):
    paths = Q.make_quirky_videos(tmp_path_factory.mktemp("quirky"), FFMPEG)
    return {n: (p, Q.ffmpeg_frames(FFMPEG, p)[0]) for n, p in paths.items()}


def test_rows_agree_with_ffmpeg(quirky):
    assert "rot90.mp4" in quirky and "leading_nonkey.mp4" in quirky
    for name, (path, frames) in quirky.items():
        row = manifest_row(str(path), "", "x", "0")
        if name in Q.REFUSED:
            assert not row["decodable"] and Q.REFUSED[name] in row["reason"], (name, row)
            continue
        assert row["decodable"], (name, row)
        assert (row["height"], row["width"]) == frames.shape[1:3], (name, row, frames.shape)
        if row["frames_exact"]:
            assert row["frames"] == frames.shape[0], (name, row, frames.shape)
