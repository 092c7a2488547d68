"""What the Databricks jobs run: ``python -m workload`` for a runtime that runs files.

A job's ``spark_python_task`` runs one Python file from the workspace with
parameters; it has no ``-m``, and ``__file__`` is not always defined there.
So the job passes the folder that holds the uploaded ``workload`` package
first, then the command line: ``[/Workspace/Users/<me>/llmops-workload, chat]``.
Settings come from the cluster's environment (see ``llmops_infra/stack/lab_environment.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    """Put the package's folder on ``sys.path`` and run the command line; its exit status."""
    if not argv:
        print("usage: job_entry.py PACKAGE_PARENT COMMAND [ARGS...]", file=sys.stderr)
        return 2
    root, *command = argv
    here = os.path.join(root, "workload")
    # Run as a file, its own folder may be first on sys.path, so `errors` or `settings`
    # would shadow other packages' modules; the package is imported by its full name instead.
    sys.path[:] = [root, *(p for p in sys.path if os.path.abspath(p or ".") != here)]

    from workload.cli import main as cli_main

    return cli_main(command)


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # Exit only on failure: a failed job run needs a non-zero status, and success stays quiet.
    if status:
        sys.exit(status)
