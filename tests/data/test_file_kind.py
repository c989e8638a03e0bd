"""A listed path that is not a video file says what it is (a link loop, a FIFO, a device), never
"file not found" for a file that is there; a FIFO is never opened (reading one would block)."""

import os
import re
import sys

import pytest

from rs3d.data import decode as D
from rs3d.data.csv import VideoRecord
from rs3d.data.datasets import TestDataset
from rs3d.data.fps import video_fps
from rs3d.data.video.file_kind import unreadable_reason
from rs3d.inference import timeline

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file kinds")


@pytest.fixture
def odd_paths(tmp_path, real_videos):
    loop = tmp_path / "loop.mp4"
    os.symlink(loop.name, loop)  # a link to itself
    dangling = tmp_path / "dangling.mp4"
    os.symlink("gone.mp4", dangling)
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    return {
        "loop": str(loop),
        "dangling": str(dangling),
        "fifo": str(fifo),
        "folder": str(folder),
        "device": os.devnull,
        "missing": str(tmp_path / "missing.mp4"),
        "good": str(real_videos["carphone"]),
    }


EXPECTED = {
    "loop": "symbolic link loop",
    "dangling": "broken symbolic link (to gone.mp4",
    "fifo": "FIFO (named pipe)",
    "folder": "a folder, not a video file",
    "device": "a character device",
    "missing": "file not found",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_kind_of_path_is_named(odd_paths, kind):
    assert EXPECTED[kind] in unreadable_reason(odd_paths[kind])
    with pytest.raises(D.DecodeError) as e:
        D.read_frames(odd_paths[kind], lambda n: list(range(min(n, 2))), backend="pyav", timeout_s=20)
    assert EXPECTED[kind] in str(e.value)
    if kind != "missing":
        assert "not found" not in str(e.value)
    with pytest.raises(D.DecodeError, match=re.escape(EXPECTED[kind])):
        video_fps(odd_paths[kind])  # before any container is opened: a FIFO would block here


def test_a_readable_video_has_no_reason(odd_paths):
    assert unreadable_reason(odd_paths["good"]) is None


def test_the_test_lists_a_fifo_as_failed_with_what_it_is(odd_paths):
    ds = TestDataset(
        [VideoRecord(odd_paths["fifo"], 1), VideoRecord(odd_paths["loop"], 0)],
        4,
        2,
        32,
        num_clips=1,
        num_crops=1,
        decode_timeout_s=20,
    )
    assert "FIFO" in ds[0]["error"] and "symbolic link loop" in ds[1]["error"]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_the_timeline_names_each_kind_of_path(odd_paths, kind):
    """The timeline reads through FrameStream, which checks the path before opening it."""
    with pytest.raises(D.DecodeError, match=re.escape(EXPECTED[kind])):
        timeline.video_fps(odd_paths[kind])
