"""``python -m llmops_infra``: the command line; the logic lives in the other modules."""

from __future__ import annotations

import gc
import sys

from llmops_infra.cli import main

if __name__ == "__main__":
    # The provider SDKs leave some 320,000 long-lived objects after import, and every full
    # pass of the cyclic collector walks them all again (measured by bench/plan_startup.py).
    # A one-shot command needs no collection: its few cycles go at exit.
    gc.disable()
    sys.exit(main())
