"""The two flags of every command that reads a stack's configuration without the Pulumi CLI.

``plan``, ``cost`` and ``preflight`` read ``Pulumi.<stack>.yaml`` and take overrides as
``pulumi config set`` does; one definition keeps their spelling and help the same. Kept
apart from :mod:`llmops_infra.offline.stack_files`, which loads a YAML parser: the command
line is built on every start, the files are read only by the command that runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_stack_arguments"]


def add_stack_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """Add ``--stack NAME`` (default ``dev``) and ``--config KEY=VALUE`` (repeatable)."""
    parser.add_argument(
        "--stack", default="dev", metavar="NAME", help="stack whose Pulumi.<NAME>.yaml to read"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a configuration value, e.g. {example} (repeatable)",
    )
