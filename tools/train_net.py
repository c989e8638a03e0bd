#!/usr/bin/env python
"""``rs3d-train`` run from a checkout; the command and its options are in rs3d/cli/train.py."""

import sys

from rs3d.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
