"""Class names for reports: the data folder's ``classes.txt``, else the shipped Kinetics-400 list.

Below both training and inference, so the test, ``rs3d-predict``, timelines and Grad-CAM name
classes the same way.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from .csv import read_classes

logger = logging.getLogger(__name__)

KINETICS400_CLASSES_FILE = os.path.join(os.path.dirname(__file__), "k400_classes.txt")


def class_names_for(data_dir: str, num_classes: int) -> Optional[list[str]]:
    """``classes.txt`` of the data folder, else the shipped Kinetics-400 names for 400 classes."""
    names = read_classes(data_dir) if data_dir else None
    if names is None and num_classes == 400:
        names = kinetics400_class_names()
    if names is not None and len(names) != num_classes:
        logger.warning("%d class names for %d classes; reporting class indices only", len(names), num_classes)
        return None
    return names


def kinetics400_class_names() -> list[str]:
    """The 400 Kinetics-400 classes in the standard (alphabetical) label order."""
    with open(KINETICS400_CLASSES_FILE, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
