"""Using a trained model: predictions, embeddings, long-video timelines and Grad-CAM.

    model.py      the model and weights a config describes, ready for inference (the one loader)
    views.py      a video's scores over its test views, aggregated (shared with the test)
    predict.py    top-k classes for a few video files (``rs3d-predict``)
    features.py   per-video (views averaged) and per-clip embeddings of any layer, written to disk
    timeline.py   sliding-window scores over a long video, decoded in bounded chunks
    gradcam.py    Grad-CAM for 3D CNNs on a chosen stage, drawn over the clip
    layers.py     the output of any named layer of a model (used by features and gradcam)

Submodules are imported on use (``from rs3d.inference.features import extract_features``).
"""
