#!/usr/bin/env python
"""``rs3d-convert-annotations`` from a checkout; its options are in rs3d/cli/convert_annotations.py."""
import sys

from rs3d.cli.convert_annotations import main

if __name__ == "__main__":
    sys.exit(main())
