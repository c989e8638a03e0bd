#!/usr/bin/env python
"""``rs3d-visualize`` run from a checkout; the command and its options are in rs3d/cli/visualize.py."""
import sys

from rs3d.cli.visualize import main

if __name__ == "__main__":
    sys.exit(main())
