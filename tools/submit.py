#!/usr/bin/env python
"""``rs3d.cli.submit`` run from a checkout: SLURM training jobs through submitit (see that module)."""
import sys

from rs3d.cli.submit import main

if __name__ == "__main__":
    sys.exit(main())
