#!/usr/bin/env python
"""``rs3d-test`` run from a checkout; the command and its options are in rs3d/cli/test.py."""

import sys

from rs3d.cli.test import main

if __name__ == "__main__":
    sys.exit(main())
