"""``python -m llmops_infra``: the command line; the logic lives in the other modules."""

from __future__ import annotations

import sys

from llmops_infra.cli import main

if __name__ == "__main__":
    sys.exit(main())
