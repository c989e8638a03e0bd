"""Dataset manifests: which videos a number was measured on, and how two copies differ.

    keys.py         a video's key: Kinetics-style ``<youtube_id>_<start>_<end>``, else its relative path
    digest.py       a file's content digest (size + first and last MiB, or the whole file)
    fingerprint.py  one digest of a split: its sorted (key, label, content digest) rows
    table.py        the manifest folder: ``{split}.csv.gz`` per split and ``manifest.json``
    listing.py      the videos a dataset folder's ``{split}.csv`` lists (as training reads them)
    probe.py        one manifest row of a file (digest + what rs3d's video probe sees)
    progress.py     a progress line with rate and ETA
    build.py        ``rs3d-manifest build``: parallel, resumable, deterministic
    reference.py    official annotation files (Kinetics, UCF101, HMDB51, SSv2, Charades) as entries
    coverage.py     a manifest against an official list: per split and class, missing, disagreements
    diff.py         two manifests: added, removed, relabelled, changed content; their intersection
    provenance.py   what training and the test record: a split's fingerprint, counts, leakage, subsets

Nothing here imports the engine, the config or the commands; ``rs3d-manifest`` (rs3d/cli/manifest.py)
and the training and test entry points call into it.
"""
