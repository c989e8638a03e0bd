"""Converters from datasets' official annotation files to rs3d's video lists (``{split}.csv`` and
``classes.txt``); ``rs3d-convert-annotations`` runs them. Each is tested on small files written
in its dataset's official format (tests/data/test_annotations.py)."""

from .charades import convert_charades
from .common import VideoIndex, write_dataset
from .hmdb51 import convert_hmdb51
from .kinetics import convert_kinetics
from .ssv2 import convert_ssv2
from .ucf101 import convert_ucf101

# Dataset name (the command's first argument) -> converter.
CONVERTERS = {
    "ucf101": convert_ucf101,
    "hmdb51": convert_hmdb51,
    "ssv2": convert_ssv2,
    "charades": convert_charades,
    "kinetics": convert_kinetics,
}

__all__ = [
    "CONVERTERS",
    "VideoIndex",
    "convert_charades",
    "convert_hmdb51",
    "convert_kinetics",
    "convert_ssv2",
    "convert_ucf101",
    "write_dataset",
]
