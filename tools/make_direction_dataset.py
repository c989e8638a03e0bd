#!/usr/bin/env python
"""The direction-and-speed dataset writer run from a checkout; options in rs3d/cli/make_directions.py."""
import sys

from rs3d.cli.make_directions import main

if __name__ == "__main__":
    sys.exit(main())
