"""``python -m workload``: the command line; the logic lives in the other modules."""

from __future__ import annotations

import sys

from workload.cli import main

if __name__ == "__main__":
    sys.exit(main())
