"""What the CRC check of every checkpoint load costs, against the load itself.

    python -m benchmarks.checkpoint_integrity --mb 200 --rounds 5

Writes a ``--mb`` MB checkpoint (float32 tensors of 4 MB) with ``rs3d.checkpoint.save_checkpoint``,
then times, interleaved (check, load, check, load, ...), ``rs3d.file_io.integrity.check_torch_file``
(every zip member read and its CRC-32 compared) and ``torch.load(weights_only=True)``; the first
round is warm-up (the file then sits in the page cache, as it does right after a save). Prints the
medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from rs3d.checkpoint import save_checkpoint
from rs3d.file_io.integrity import check_torch_file


def measure(mb: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint_epoch_00001.pyth")
        save_checkpoint({"model": {f"w{i}": torch.randn(2**20) for i in range(mb // 4)}, "epoch": 1}, path)
        check, load = [], []
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            with open(path, "rb") as f:
                check_torch_file(f, path)
            t1 = time.perf_counter()
            torch.load(path, map_location="cpu", weights_only=True)
            t2 = time.perf_counter()
            check.append(t1 - t0)
            load.append(t2 - t1)
        size = os.path.getsize(path)
    c, m = statistics.median(check[1:]), statistics.median(load[1:])
    return {"size_mb": size / 2**20, "check_s": c, "load_s": m, "check_over_load": c / m}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=int, default=200, help="checkpoint size in MB")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up")
    a = p.parse_args()
    r = measure(a.mb, a.rounds)
    print(
        f"checkpoint {r['size_mb']:.0f} MB: CRC check {r['check_s']:.3f} s, torch.load {r['load_s']:.3f} s "
        f"(medians of {a.rounds}); check / load = {r['check_over_load']:.2f}"
    )


if __name__ == "__main__":
    main()
