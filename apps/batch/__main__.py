"""``python -m apps.batch``: see :mod:`apps.batch.cli`.

The guard matters here: Dask's worker processes start by importing the main module
again, and must not start another job when they do.
"""

import sys

from apps.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
