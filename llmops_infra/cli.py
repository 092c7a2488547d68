"""Argument parsing and exit statuses for ``python -m llmops_infra``.

Each sub-command module defines ``add_parser(subparsers)`` and
``run(args) -> int``, and imports the provider SDKs only when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from llmops_infra import demo
from llmops_infra.azure_api import preflight
from llmops_infra.cost import command as cost_command
from llmops_infra.errors import ConfigError
from llmops_infra.offline import plan_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m llmops_infra",
        description=(
            "Inspect the lab's Pulumi stack before `pulumi up`: the offline plan (no cloud), "
            "the quota preflight (reads Azure, changes nothing) and its cost at list prices."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan_command.add_parser(subparsers)
    preflight.add_parser(subparsers)
    cost_command.add_parser(subparsers)
    demo.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a configuration error is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
