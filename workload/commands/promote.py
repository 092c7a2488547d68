"""``python -m workload promote RUN_ID`` and ``rollback``: move the prompt's alias, or refuse.

``promote`` moves an alias (``production``) to the version an eval run evaluated,
only when its gates held and ``compare``'s test finds no scorer regressed against
the baseline (:mod:`workload.releases.promotion`); ``rollback`` points the alias
back. Both leave a record in the prompt's history (``prompt list``).
"""

from __future__ import annotations

import argparse
from typing import Final

from workload.commands.arguments import bounded
from workload.commands.prompt import add_prompt_name_argument
from workload.config.context import command_parser

__all__ = ["EXIT_REFUSED", "add_parser", "run_promote", "run_rollback"]

#: Exit status when promote refused (a gate failed or a scorer regressed): nothing changed.
EXIT_REFUSED: Final = 3

_PROMOTE = """\
Move the alias (production) to the prompt version eval run RUN_ID evaluated,
only when the run's --fail-under gates held and no scorer regressed against
the baseline (default: the newest eval run, on the same dataset, of the version
the alias names now) by compare's test at --alpha, rows paired by the dataset
row's own inputs. Datasets are told apart by the digest MLflow records.

Exit status: 0 moved, 1 the tracking store or registry failed, 2 a run is not
an eval run of a registered version, the datasets differ or no baseline
exists, 3 refused (each reason on its own line; nothing changed).
"""

_ROLLBACK = """\
Point the alias (production) back at the version it named before its last
promote; the move is recorded in the prompt's history.

Exit status: 0 moved back, 1 the registry failed, 2 the alias was never moved
by promote.
"""

_alpha = bounded(float, lambda a: 0.0 < a < 1.0, "a number between 0 and 1, e.g. 0.05")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``promote`` and ``rollback``."""
    from workload.evaluation.compare import DEFAULT_ALPHA

    promote = command_parser(
        subparsers,
        "promote",
        summary="move production to an evaluated prompt version, if it did not regress",
        description=_PROMOTE,
    )
    promote.add_argument("run_id", metavar="RUN_ID", help="the candidate version's eval run")
    promote.add_argument("--baseline", metavar="RUN_ID", help="the eval run to compare with")
    promote.add_argument(
        "--alpha",
        type=_alpha,
        default=DEFAULT_ALPHA,
        metavar="A",
        help=f"significance level of a regression ({DEFAULT_ALPHA:g})",
    )
    rollback = command_parser(
        subparsers,
        "rollback",
        summary="point production back at the version before its last promote",
        description=_ROLLBACK,
    )
    for parser, run in ((promote, run_promote), (rollback, run_rollback)):
        add_prompt_name_argument(parser)
        parser.add_argument(
            "--alias", default="production", metavar="NAME", help="the alias (production)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(run=run)


def _name(args: argparse.Namespace) -> str:
    import os

    from workload.config.context import resolve_context
    from workload.releases.registry import require_prompt_name

    context = resolve_context(args, model=False)
    return require_prompt_name(args.prompt_name, context.outputs, os.environ)


def run_promote(args: argparse.Namespace) -> int:
    """Decide, move or refuse, print."""
    import json

    from mlflow import MlflowClient

    from workload.releases.promotion import promote

    name = _name(args)
    decision = promote(
        MlflowClient(),
        name,
        args.run_id,
        alias=args.alias,
        baseline=args.baseline,
        alpha=args.alpha,
    )
    if args.json:
        print(json.dumps(decision.as_dict()))
    elif decision.promoted:
        print(f"{decision.alias}: {decision.from_version} -> {decision.to_version}")
    else:
        print(
            f"refused: {decision.alias} stays at version {decision.from_version} "
            f"(not {decision.to_version})"
        )
        for reason in decision.reasons:
            print(f"  {reason}")
    return 0 if decision.promoted else EXIT_REFUSED


def run_rollback(args: argparse.Namespace) -> int:
    """Move the alias back, print."""
    import json

    from workload.releases.promotion import rollback

    name = _name(args)
    was, back = rollback(name, args.alias)
    if args.json:
        print(json.dumps({"alias": args.alias, "from_version": was, "to_version": back}))
    else:
        print(f"{args.alias}: {was} -> {back} (rolled back)")
    return 0
