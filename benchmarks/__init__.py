"""Speed and memory benchmarks of rs3d against its peers; part of the checkout, not of the package.

``pip install`` ships only ``rs3d``; these modules import it (and PyTorchVideo, the peer they
compare against), and nothing in ``rs3d`` imports them. Run them from the repository root::

    python -m benchmarks {model,optim,e2e,data,loader,worker-split,clips,estimate} ...   # tables + JSON
    python -m benchmarks.decoders ...                                                   # decoders alone

    run.py           the command line: one sub-command per benchmark
    measure.py       interleaved timing, peak memory, device and version records
    models.py        model training/inference throughput, MFU, rs3d vs PyTorchVideo, SGD variants
    e2e.py           the real training loop, data wait vs compute per iteration
    loader.py        data-loader throughput: rs3d vs PyTorchVideo vs a full-decode floor
    decoders.py      decord vs PyAV vs torchcodec on the same files
    worker_split.py  a loader worker's CPU time: decoding vs augmentation
    train_clips.py   training clips per CPU core of every loader path
    videos.py        Kinetics-like H.264 test videos

Parameters, FLOPs and a single model's step time come from :mod:`rs3d.models.stats`, the same
functions as ``tools/model_stats.py``.
"""
