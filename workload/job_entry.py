"""What the Databricks jobs run: the wheel's entry point, ``workload`` with the job's settings.

A job's ``python_wheel_task`` calls the console script ``llmops-workload-job``
(:data:`workload.contract.JOB_ENTRY_POINT`) of the installed wheel with the
job's parameters as ``sys.argv``: first the settings, ``NAME=VALUE`` each,
then the command line (:func:`workload.contract.job_parameters`). On the
cluster the settings are in the cluster's environment and the job passes
none; a serverless job has no cluster environment, so its settings come this
way and become this process's environment before the command reads it, as
the cluster's would. The key is never among them: in key mode a serverless
job names its secret (``LLMOPS_API_KEY_SECRET=<scope>/<key>``) and the
settings read it with ``dbutils.secrets`` (:mod:`workload.config.secrets`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["main", "run"]

#: ``NAME=VALUE`` with an environment variable's name; a command never looks like that.
_SETTING: Final = re.compile(r"([A-Z][A-Z0-9_]*)=(.*)", re.DOTALL)


def main(argv: Sequence[str]) -> int:
    """Put the leading ``NAME=VALUE`` settings into the environment, run the command line."""
    settings: dict[str, str] = {}
    rest = list(argv)
    while rest and (match := _SETTING.fullmatch(rest[0])):
        settings[match[1]] = match[2]
        rest.pop(0)
    if not rest:
        print("usage: llmops-workload-job [NAME=VALUE ...] COMMAND [ARGS...]", file=sys.stderr)
        return 2
    os.environ.update(settings)

    from workload.cli import main as cli_main

    return cli_main(rest)


def run() -> None:
    """The console script: exit only on failure.

    A failed job run needs a non-zero status; a success raises nothing, since the
    runtime that calls the entry point may take even ``SystemExit(0)`` for an error.
    """
    status = main(sys.argv[1:])
    if status:
        sys.exit(status)
