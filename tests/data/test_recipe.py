"""The own-dataset recipe (rs3d.data.recipe) and the direction-and-speed dataset it is measured on."""

import av
import numpy as np
import pytest

from rs3d.config import get_cfg
from rs3d.data import synthetic_directions as SD
from rs3d.data.flip import auto_pairs, is_mirror_sensitive
from rs3d.data.recipe import choose_flip, choose_target_fps, own_dataset_overrides, survey


@pytest.fixture(scope="module")
def directions(tmp_path_factory):
    out = tmp_path_factory.mktemp("directions")
    SD.make_direction_dataset(str(out), train_per_class=1, val_per_class=1, test_per_class=1, workers=1)
    return out


def test_target_fps_by_hand():
    """Durations 2, 2.5, 3, 4 s: the 25% quantile is 2.375 s, 80% of it 1.9 s, so 8 frames at
    SAMPLING_RATE 1 -> TARGET_FPS 8 / 1.9 = 4.21 (3 significant digits)."""
    target, why = choose_target_fps([(30, 2), (24, 2.5), (60, 3), (15, 4)], 8, 1)
    assert target == 4.21 and "clips of 1.90 s" in why and "2.0-4.0 s, 15-60 fps" in why
    # 8 frames at 30 fps (0.27 s) already cover 80% of 0.3 s videos: dense stays.
    assert choose_target_fps([(30, 0.3)] * 4, 8, 1)[0] is None
    assert choose_target_fps([], 8, 1)[0] is None


def test_flip_choice_from_class_names():
    assert choose_flip(["moving left to right", "moving right to left", "up"])[0] == {"DATA.FLIP_LABEL_MAP": "auto"}
    assert choose_flip(["turning left", "jumping"])[0] == {"DATA.RANDOM_FLIP": False}
    assert choose_flip(["jumping", "running"])[0] == {}
    assert choose_flip(None)[0] == {}


def test_direction_classes_are_mirror_pairs_by_name():
    assert auto_pairs(SD.CLASSES) == {0: 1, 1: 0, 2: 3, 3: 2}
    assert [is_mirror_sensitive(n) for n in SD.CLASSES] == [True] * 4 + [False] * 2


@pytest.mark.parametrize("label", range(len(SD.CLASSES)))
def test_direction_class_speeds(label):
    """Horizontal classes: slow 0.25-0.4, quick 0.75-1.2 short sides per second, sign by direction;
    the other axis drifts at most 0.06."""
    for seed in range(50):
        vx, vy = SD._velocity(SD.CLASSES[label], np.random.default_rng(seed), 100)
        along, across = (vx, vy) if label < 4 else (vy, vx)
        lo, hi = [SD.SLOW, SD.SLOW, SD.QUICK, SD.QUICK, SD.VERTICAL, SD.VERTICAL][label]
        sign = [1, -1, 1, -1, -1, 1][label]
        assert lo * 100 <= sign * along <= hi * 100 and abs(across) <= 6


def test_direction_dataset_files_and_survey(directions):
    names = (directions / "classes.txt").read_text().split("\n")[:6]
    assert names == SD.CLASSES
    lines = (directions / "train.csv").read_text().split()
    paths = [str(directions / p) for p in lines[0::2]]
    assert [int(x) for x in lines[1::2]] == list(range(6))
    timings = survey(paths)
    for i, (path, (fps, seconds)) in enumerate(zip(paths, timings)):
        spec = SD._spec(0, "train", i, i)
        with av.open(path) as c:
            frames = sum(1 for _ in c.decode(video=0))
            s = c.streams.video[0]
            assert (s.height, s.width) == (spec["height"], spec["width"])
        assert frames == spec["length"] and fps == spec["fps"]
        assert 2.0 <= seconds <= 4.1 and abs(seconds - frames / fps) < 0.15


def test_rendering_is_deterministic():
    spec = SD._spec(0, "test", 3, 3)
    a = SD.render_video(3, np.random.default_rng([1, 2]), 112, 144, 24, 30)
    b = SD.render_video(3, np.random.default_rng([1, 2]), 112, 144, 24, 30)
    assert a.shape == (30, 112, 144, 3) and np.array_equal(a, b) and spec["fps"] in SD.FPS


def test_own_dataset_recipe_on_the_direction_set(directions):
    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR = str(directions)
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 1
    overrides, notes = own_dataset_overrides(cfg)
    assert overrides[0::2] == ["DATA.TARGET_FPS", "DATA.FLIP_LABEL_MAP"] and overrides[3] == "auto"
    assert 1.5 <= 8 / float(overrides[1]) <= 3.2  # a clip spans most of a 2-4 s video
    assert len(notes) == 2 and "mirror pair" in notes[1]
    # The user's own choices are kept.
    overrides, notes = own_dataset_overrides(cfg, ["DATA.SAMPLING_RATE", "DATA.RANDOM_FLIP"])
    assert overrides == [] and all("as configured" in n for n in notes)
    cfg.DATA.SAMPLING = "segment"
    assert own_dataset_overrides(cfg)[0] == ["DATA.FLIP_LABEL_MAP", "auto"]
