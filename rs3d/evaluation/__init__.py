"""The multi-view test of a trained model (``rs3d-test``) and what it reports.

    multiview.py  ``run_test(cfg)``: every test video once, on one process or many
    records.py    merging all ranks' per-video records, the metrics of the merged set
    reports.py    test_metrics.json, test_predictions.csv, per-class AP, the confusion PNG
    confusion.py  the confusion matrix and per-class accuracy as one PNG
    data_record.py  the test split's fingerprint and counts, the leakage check, TEST.SUBSET_MANIFEST
    rescore.py    the metrics of a subset, re-scored from test_predictions.csv without the model

Above :mod:`rs3d.inference` (it scores videos with ``rs3d.inference.views`` on the model
``rs3d.inference.model.load_model`` gives).
"""

from .multiview import run_test

__all__ = ["run_test"]
