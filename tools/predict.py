#!/usr/bin/env python
"""``rs3d-predict`` run from a checkout; the command and its options are in rs3d/cli/predict.py."""
import sys

from rs3d.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
