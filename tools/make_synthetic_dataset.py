#!/usr/bin/env python
"""``rs3d-make-synthetic`` run from a checkout; the command and its options are in rs3d/cli/make_synthetic.py."""
import sys

from rs3d.cli.make_synthetic import main

if __name__ == "__main__":
    sys.exit(main())
