#!/usr/bin/env python
"""``rs3d-extract-features`` run from a checkout; the command and its options are in rs3d/cli/extract_features.py."""
import sys

from rs3d.cli.extract_features import main

if __name__ == "__main__":
    sys.exit(main())
