"""``python -m workload compare RUN_A RUN_B``: did a change make the eval's verdicts worse?

Two eval runs of one dataset (before and after a prompt, model or version
change) are read back from the tracking store, paired row by row and compared
per scorer with McNemar's exact test (``workload.evaluation.compare``). Only
argparse is imported until the command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Final

from workload.commands.arguments import bounded
from workload.config.context import command_parser

if TYPE_CHECKING:
    from workload.evaluation.compare import Comparison

__all__ = ["EXIT_REGRESSION", "add_parser", "run"]

#: Exit status with --fail-on-regression when a scorer's pass rate fell significantly.
EXIT_REGRESSION: Final = 3

_DESCRIPTION = """\
Compare two eval runs of the same dataset (the run ids `eval` prints), for
example before and after a prompt, model or version change. Rows are paired by
the dataset row they ran (its whole inputs and expectations); per scorer, both
pass rates over the paired rows, the change, and McNemar's exact test on the
paired verdicts, one-sided for a fall (a binomial test: did more rows flip
from pass to fail than back?); the flipped rows are listed, and so are rows
found in one run only or that cannot be told apart (the same inputs and
expectations twice). A judge error leaves that row out of that scorer's pairs;
a row whose own call failed counts as failed.

Exit status: 0 done, 1 the tracking store failed, 2 a run is not an eval run
or no row pairs, 3 with --fail-on-regression when a scorer's pass rate fell
with p < --alpha.
"""

_alpha = bounded(float, lambda a: 0.0 < a < 1.0, "a number between 0 and 1, e.g. 0.05")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    from workload.evaluation.compare import DEFAULT_ALPHA

    parser = command_parser(
        subparsers,
        "compare",
        summary="compare two eval runs of one dataset, row by row (McNemar's exact test)",
        description=_DESCRIPTION,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="the run before the change")
    parser.add_argument("run_b", metavar="RUN_B", help="the run after it")
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=DEFAULT_ALPHA,
        metavar="A",
        help=f"significance level of a regression ({DEFAULT_ALPHA:g})",
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help=f"exit {EXIT_REGRESSION} when a scorer's pass rate fell with p < alpha",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.set_defaults(run=run)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _table(result: Comparison) -> str:
    head = [
        f"run A {result.run_a} -> run B {result.run_b}: {result.paired} rows paired, "
        f"{len(result.unpaired)} unpaired",
        "",
    ]
    rows = [("scorer", "n", "A", "B", "change", "A+B-", "A-B+", "p (one-sided)", "regressed")]
    for s in result.scorers:
        change = "-" if s.change is None else f"{s.change * 100:+.0f} pts"
        rows.append(
            (
                s.name,
                str(s.n),
                _rate(s.pass_rate_a),
                _rate(s.pass_rate_b),
                change,
                str(s.passed_then_failed),
                str(s.failed_then_passed),
                f"{s.p_value:.3g}",
                "yes" if s.regressed else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    flips = [
        f"  {f['scorer']}: {'pass' if f['a'] else 'fail'} -> {'pass' if f['b'] else 'fail'}: "
        f"{f['prompt']!r}"
        for f in result.flipped
    ]
    unpaired = [
        f"  run {u['run'].upper()}, {u['reason']}: {u['prompt']!r}" for u in result.unpaired
    ]
    out = [*head, *lines]
    if flips:
        out += ["", "flipped:", *flips]
    if unpaired:
        out += ["", "unpaired:", *unpaired]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Read both runs, compare, print, and apply --fail-on-regression."""
    import json
    import sys

    from workload.config.context import resolve_context
    from workload.errors import ServiceError, SettingsError
    from workload.evaluation.compare import compare_rows, load_run_rows
    from workload.monitoring.traces import connect

    # The store as every command resolves it (outputs, stack, experiment).
    resolve_context(args, model=False)
    client = connect()
    try:
        rows_a = load_run_rows(client, args.run_a)
        rows_b = load_run_rows(client, args.run_b)
    except SettingsError:
        raise
    except Exception as err:  # the store itself failed
        raise ServiceError(f"cannot read the runs: {type(err).__name__}: {err}") from None
    result = compare_rows(args.run_a, rows_a, args.run_b, rows_b, alpha=args.alpha)
    if not result.paired:
        raise SettingsError(
            f"no row of run {args.run_a} pairs with a row of run {args.run_b}: "
            "compare two evals of the same dataset"
        )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(_table(result))
    if args.fail_on_regression and result.regressed:
        fell = [s.name for s in result.scorers if s.regressed]
        print(f"regression: {', '.join(fell)} (p < {args.alpha:g})", file=sys.stderr)
        return EXIT_REGRESSION
    return 0
