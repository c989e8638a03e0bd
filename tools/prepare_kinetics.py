#!/usr/bin/env python
"""``rs3d-prepare-kinetics`` run from a checkout; the command and its options are in rs3d/cli/prepare_kinetics.py."""
import sys

from rs3d.cli.prepare_kinetics import main

if __name__ == "__main__":
    sys.exit(main())
