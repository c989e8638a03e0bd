#!/usr/bin/env python
"""Data-loading throughput: rs3d vs PyTorchVideo vs the full-decode floor (``benchmarks/loader.py``).

    python tools/benchmark_data.py --videos 12 --workers 2 --json output/benchmark_data.json

``--help`` lists what is measured and every option.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # benchmarks/ belongs to the checkout, not to the installed package
    sys.path.insert(0, _ROOT)

from benchmarks import loader  # noqa: E402
from rs3d.cli import error_line, run_tool  # noqa: E402
from rs3d.errors import DataError  # noqa: E402


def main(argv=None) -> int:
    args = loader.build_parser(prog="tools/benchmark_data.py").parse_args(argv)
    try:
        res = loader.run(args)
    except (OSError, ValueError, RuntimeError) as e:  # a missing file, a video that will not decode
        raise DataError(error_line(e)) from e
    print(loader.format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
