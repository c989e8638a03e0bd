#!/usr/bin/env python
"""Multi-view test of a trained model: every video of ``TEST.SPLIT``.csv once, metrics written to OUTPUT_DIR.

    python tools/test_net.py --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50
    python tools/test_net.py --cfg configs/k400_rs50.yaml TEST.CHECKPOINT_FILE_PATH ckpt.pyth
    torchrun --nproc_per_node 8 tools/test_net.py --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50

A mistake in the command, the config, the data list or the checkpoint prints one line
``error: ...`` on stderr and exits with status 2.
"""
from __future__ import annotations

import json
import logging
import os
import sys


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"[%(asctime)s rank{rank}] %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)


def main(argv=None) -> int:
    from rs3d.config import ConfigError, check_data_dir, load_config, parse_args
    from rs3d.data.csv import DataError
    from rs3d.engine.checkpoint import CheckpointError
    from rs3d.engine.evaluate import EvaluationError, test
    from rs3d.models.convert import CheckpointError as ConvertError

    args = parse_args(argv, description="rs3d multi-view test (30 views by default)")
    _setup_logging()
    try:
        cfg = load_config(args)
        check_data_dir(cfg, [cfg.TEST.SPLIT])
        metrics = test(cfg)
    except (ConfigError, DataError, CheckpointError, ConvertError, EvaluationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in metrics.items() if k != "failed"}
        print(json.dumps(summary, indent=2))
        for f in metrics["failed"]:
            print(f"failed: {f['path']}: {f['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
