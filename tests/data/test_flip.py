"""DATA.FLIP_LABEL_MAP: auto pairs of mirrored class names, explicit pairs, the label a flipped clip
gets, and the start-up warning for mirror-sensitive names."""

import logging
import shutil

import pytest
import torch

from rs3d.data import build_dataset
from rs3d.data.datasets import TrainDataset
from rs3d.data.flip import auto_pairs, flip_label_map, flip_warning, is_mirror_sensitive, parse_pairs
from rs3d.errors import ConfigError, DataError

SSV2_LIKE = [
    "Pushing something from left to right",  # 0 <-> 1
    "Pushing something from right to left",
    "Moving something up",  # 2: flip-invariant
    "Turning the camera left while filming something",  # 3 <-> 4
    "Turning the camera right while filming something",
    "Spinning [something] clockwise",  # 5 <-> 6 (another spelling)
    "spinning something Anti-Clockwise",
    "Tilting something to the left",  # 7: no partner
]


def test_auto_pairs_names_that_differ_only_by_left_and_right():
    pairs = auto_pairs(SSV2_LIKE)
    assert pairs == {0: 1, 1: 0, 3: 4, 4: 3, 5: 6, 6: 5}
    assert flip_label_map("auto", 8, SSV2_LIKE) == [1, 0, 2, 4, 3, 6, 5, 7]
    assert [is_mirror_sensitive(n) for n in SSV2_LIKE] == [True, True, False, True, True, True, True, True]
    # "bright" and "lefty" are not the words left/right
    assert not is_mirror_sensitive("a bright light") and not is_mirror_sensitive("lefty")


def test_explicit_pairs_and_their_errors():
    assert parse_pairs("0:1, 4:5", 6) == {0: 1, 1: 0, 4: 5, 5: 4}
    assert flip_label_map("2:0", 3, None) == [2, 1, 0]
    assert flip_label_map(None, 3, SSV2_LIKE) is None
    for bad, message in [
        ("0-1", "not a pair of labels"),
        ("0:9", r"label 9 in '0:9' outside \[0, 6\)"),
        ("0:1,1:2", "one pair only"),
        ("3:3", "one pair only"),
        (",", "names no pair"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_pairs(bad, 6)
    with pytest.raises(DataError, match="DATA.FLIP_LABEL_MAP auto needs the class names"):
        flip_label_map("auto", 3, None)


def test_warning_only_where_a_flipped_label_may_be_wrong():
    names = ["moving left to right", "moving right to left", "moving up"]
    no_map = flip_warning(True, None, names)
    assert "look mirror-sensitive ('moving left to right', 'moving right to left')" in no_map
    assert "DATA.FLIP_LABEL_MAP auto would pair 2 of them" in no_map
    assert flip_warning(True, "auto", names) is None  # every sensitive name is paired
    assert flip_warning(False, None, names) is None  # no flip
    assert flip_warning(True, None, ["jumping", "running"]) is None
    assert flip_warning(True, "0:1", names) is None  # the user listed the pairs
    unpaired = flip_warning(True, "auto", SSV2_LIKE)
    assert "'Tilting something to the left'" in unpaired and "no mirror partner" in unpaired


def test_a_flipped_clip_gets_the_mirrored_label(synthetic_dataset, data_cfg):
    """Same key with and without flipping: where the clip is the mirror image the label is mapped."""
    records = build_dataset(data_cfg, "train", "train").records[:4]
    mapping = [1, 0, 2, 3]
    kw = dict(jitter_mode="short_side", scales=(32, 40), seed=3)
    flipping = TrainDataset(records, 4, 2, 32, random_flip=True, flip_label_map=mapping, **kw)
    plain = TrainDataset(records, 4, 2, 32, random_flip=False, **kw)
    seen = set()
    for epoch in range(6):
        for i in range(len(records)):
            a, b = flipping[(epoch, i)], plain[(epoch, i)]
            flipped = not torch.equal(a["clip"], b["clip"])
            if flipped:
                assert torch.equal(a["clip"], b["clip"].flip(-1))
            assert a["label"] == (mapping[b["label"]] if flipped else b["label"])
            seen.add((flipped, b["label"] in (0, 1)))
    assert (True, True) in seen and (False, True) in seen  # both outcomes on a swapped class


def _dataset_with_names(tmp_path, synthetic_dataset, names):
    for split in ("train", "val", "test"):
        shutil.copy(synthetic_dataset / f"{split}.csv", tmp_path / f"{split}.csv")
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    return tmp_path


def test_startup_warning_once_and_auto_map_from_classes_txt(tmp_path, synthetic_dataset, data_cfg, caplog):
    names = ["moving left to right", "moving right to left", "moving up", "moving down"]
    data_cfg.DATA.PATH_TO_DATA_DIR = str(_dataset_with_names(tmp_path, synthetic_dataset, names))
    data_cfg.DATA.PATH_PREFIX = str(synthetic_dataset)
    with caplog.at_level(logging.WARNING, logger="rs3d.data.loader"):
        ds = build_dataset(data_cfg, "train", "train")
    warnings = [r.getMessage() for r in caplog.records if "mirror-sensitive" in r.getMessage()]
    assert len(warnings) == 1 and ds.flip_label_map is None
    caplog.clear()
    data_cfg.DATA.FLIP_LABEL_MAP = "auto"
    with caplog.at_level(logging.WARNING, logger="rs3d.data.loader"):
        ds = build_dataset(data_cfg, "train", "train")
    assert ds.flip_label_map == [1, 0, 2, 3]
    assert not [r for r in caplog.records if "mirror-sensitive" in r.getMessage()]
    data_cfg.DATA.RANDOM_FLIP = False
    assert build_dataset(data_cfg, "train", "train").flip_label_map is None


def test_a_label_outside_the_class_list_names_the_file(tmp_path, synthetic_dataset, data_cfg):
    """classes.txt names 3 classes; the lists use label 3: one line naming the list, a video and classes.txt."""
    data_cfg.DATA.PATH_TO_DATA_DIR = str(_dataset_with_names(tmp_path, synthetic_dataset, ["a", "b", "c"]))
    data_cfg.DATA.PATH_PREFIX = str(synthetic_dataset)
    with pytest.raises(DataError, match=r"train\.csv: .* has label 3, but .*classes\.txt names 3 classes"):
        build_dataset(data_cfg, "train", "train")


def test_a_flipped_multi_hot_label_moves_every_class_to_its_mirror():
    from rs3d.data.datasets import _flip_label

    label = torch.tensor([True, False, False, True])
    assert _flip_label(label, [1, 0, 2, 3]).tolist() == [False, True, False, True]
    assert _flip_label(2, [1, 0, 3, 2]) == 3
