"""Argument parsing and exit statuses for ``python -m workload``.

Each sub-command lives in its own module of :mod:`workload.commands` that defines
``add_parser(subparsers)`` and a ``run(args) -> int`` that imports the heavy
libraries (mlflow, openai, scipy) only when it runs, so ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from workload.commands import chat, compare, evaluate, monitor, promote, prompt, scorers, submit
from workload.errors import WorkloadError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser for every sub-command."""
    # `workload ...` once the wheel is installed (its console script), else `python -m`.
    installed = os.path.basename(sys.argv[0]) == "workload"
    parser = argparse.ArgumentParser(
        prog="workload" if installed else "python -m workload",
        description="Run and monitor the lab's MLflow-traced Azure OpenAI chat call.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chat.add_parser(subparsers)
    monitor.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    compare.add_parser(subparsers)
    submit.add_parser(subparsers)
    prompt.add_parser(subparsers)
    promote.add_parser(subparsers)
    scorers.add_parser(subparsers)
    for command in subparsers.choices.values():
        command.set_defaults(parser=command)  # whose usage an unknown option shows
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; an unknown option is refused by its command's parser, with that
    command's usage (``chat --bogus`` shows chat's options, not the list of commands)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command: argparse.ArgumentParser = args.parser
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a WorkloadError becomes one line on stderr and its exit status."""
    args = _parse(argv)
    try:
        return int(args.run(args))
    except WorkloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
