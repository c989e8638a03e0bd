#!/usr/bin/env python
"""Train a model: ``python tools/train_net.py --cfg configs/k400_rs50.yaml [KEY VALUE ...]``.

Multi-GPU / multi-node: ``torchrun --nproc_per_node 8 tools/train_net.py --cfg ...`` (add
``--nnodes N --node_rank R --rdzv_endpoint HOST:PORT`` on each machine). A config mistake prints one
line ``error: ...`` and exits with status 2; a NaN/inf loss exits with status 1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rs3d.config import ConfigError, check_data_dir, load_config, parse_args  # noqa: E402


def main(argv=None) -> int:
    args = parse_args(argv, description=__doc__.splitlines()[0])
    try:
        cfg = load_config(args)
        check_data_dir(cfg, ("train", "val") if cfg.TRAIN.EVAL_PERIOD > 0 else ("train",))
        from rs3d.engine.train import batch_split
        batch_split(cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.MICRO_BATCH_SIZE, int(os.environ.get("WORLD_SIZE", "1")))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from rs3d.data.csv import DataError
    from rs3d.engine import distributed
    from rs3d.engine.train import NonFiniteLossError, train
    try:
        train(cfg)
    except (ConfigError, DataError) as e:  # e.g. a CSV line that does not parse
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
