"""Video data: Kinetics-style CSV lists, frame-exact decoding, training clips and test views.

``build_dataset`` / ``build_loader`` turn a config into datasets and loaders; everything else takes
plain arguments and can be used on its own.
"""

from .class_names import class_names_for, kinetics400_class_names
from .csv import DataError, VideoRecord, read_classes, read_video_list
from .datasets import TestDataset, TrainDataset, ValDataset, num_views, prepare_views, views_of
from .decode import DecodeError, read_frames
from .loader import ShardSampler, TrainSampler, build_dataset, build_loader, set_epoch
from .transforms import to_model_input

__all__ = [
    "DataError",
    "DecodeError",
    "ShardSampler",
    "TestDataset",
    "TrainDataset",
    "TrainSampler",
    "ValDataset",
    "VideoRecord",
    "build_dataset",
    "build_loader",
    "class_names_for",
    "kinetics400_class_names",
    "num_views",
    "prepare_views",
    "read_classes",
    "read_frames",
    "read_video_list",
    "set_epoch",
    "to_model_input",
    "views_of",
]
