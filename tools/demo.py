#!/usr/bin/env python
"""``rs3d-demo`` run from a checkout; the command and its options are in rs3d/cli/demo.py."""
import sys

from rs3d.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
