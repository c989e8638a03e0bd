"""Using a trained model: embeddings, long-video timelines, Grad-CAM and test-run plots.

    features.py   per-video (views averaged) and per-clip embeddings of any layer, written to disk
    timeline.py   sliding-window scores over a long video, decoded in bounded chunks
    gradcam.py    Grad-CAM for 3D CNNs on a chosen stage, drawn over the clip
    confusion.py  confusion matrix and per-class accuracy of a test run, as one PNG
    layers.py     the output of any named layer of a model (used by features and gradcam)
    model.py      the model and weights a config describes, ready for inference

Submodules are imported on use (``from rs3d.inference.features import extract_features``), so
``rs3d.engine`` can import :mod:`rs3d.inference.confusion` without a circular import.
"""
