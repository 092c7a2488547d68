"""``python -m llmops_infra cost``: what the stack costs, before anyone runs ``pulumi up``.

The stack's settings are read as ``plan`` reads them (Pulumi.yaml's defaults, then
``Pulumi.<stack>.yaml``, then ``--config``); the clock is read here, once, and handed to
the price book, so the day cache's key is the command's day and tests can set it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

from llmops_infra.stack_arguments import add_stack_arguments

if TYPE_CHECKING:
    from llmops_infra.cost.estimate import RegionCost
    from llmops_infra.stack.config import LlmopsConfig

__all__ = ["add_parser", "draw_regions", "price_stack", "run"]

#: The plan's bound on the API: every query together, so a slow API costs the plan little.
PLAN_BUDGET_SECONDS: Final = 3.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "cost",
        help="what the stack costs at Azure's retail list prices",
        description=(
            "Price the stack's configuration at Azure's retail list prices (Azure Retail "
            "Prices API, no sign-in; LLMOPS_PRICES_ENDPOINT overrides it; cached for a day; a "
            "dated bundled table when the API cannot be reached): each resource that bills, per "
            "hour running and idle, tokens per 1,000 lab calls and eval rows, and a class day "
            "for --hours and --students (one stack per student). With no region pinned, every "
            "region the draw can land on is priced. See docs/cost.md."
        ),
    )
    add_stack_arguments(parser, example="llmops:region=swedencentral")
    parser.add_argument("--hours", default="8", metavar="N", help="hours of a class day (8)")
    parser.add_argument("--students", default="1", metavar="N", help="students, one stack each")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _hours(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _students(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 1 else None


def draw_regions(settings: LlmopsConfig) -> list[str]:
    """The pinned region, or every allowed region the stack can land in for these options
    (the draw's, or, with ``workspaceResourceId``, the existing workspace's, known only at
    ``up``)."""
    from llmops_infra.stack.region_features import unusable_regions

    if settings.region is not None:
        return [settings.region]
    unusable = unusable_regions(settings)
    fitting = [r for r in settings.allowed_regions if r not in unusable]
    return fitting or list(settings.allowed_regions)


def price_stack(
    config: dict[str, str],
    today: date,
    *,
    timeout: float = 5.0,
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    offline: bool = False,
) -> tuple[list[RegionCost], bool]:
    """Each region's :class:`~llmops_infra.cost.estimate.RegionCost`, and whether pinned."""
    from llmops_infra.cost.estimate import estimate
    from llmops_infra.cost.retail_prices import PriceBook
    from llmops_infra.offline.plan import config_settings

    settings = config_settings(config)
    book = PriceBook(today, timeout=timeout, budget=budget, clock=clock, reachable=not offline)
    costs = [estimate(settings, r, book) for r in draw_regions(settings)]
    return costs, settings.region is not None


def _today() -> date:
    return datetime.now(UTC).date()


def run(args: argparse.Namespace) -> int:
    """Check the input, read the settings, price every region, print."""
    hours, students = _hours(args.hours), _students(args.students)
    if hours is None:
        print(f"error: --hours {args.hours!r} must be a number of hours >= 0, e.g. 8",
              file=sys.stderr)  # fmt: skip
        return 2
    if students is None:
        print(f"error: --students {args.students!r} must be a whole number >= 1",
              file=sys.stderr)  # fmt: skip
        return 2

    from llmops_infra.cost import report
    from llmops_infra.offline import plan
    from llmops_infra.offline.stack_files import parse_overrides, read_stack_config
    from workload.contract import PROJECT_DIR
    from workload.evaluation.dataset import load_dataset

    config = read_stack_config(PROJECT_DIR, args.stack, parse_overrides(args.config))
    problem = plan.check_config(config)  # the same words `plan` and `pulumi up` stop with
    if problem is not None:
        print(f"error: {problem.message}", file=sys.stderr)
        return 2
    today = _today()
    costs, pinned = price_stack(config, today)
    rows = len(load_dataset(None))
    day = today.isoformat()
    if args.json:
        print(report.to_json(costs, pinned=pinned, hours=hours, students=students, rows=rows,
                             today=day, stack=args.stack))  # fmt: skip
    else:
        print(report.to_text(costs, hours=hours, students=students, rows=rows, today=day,
                             stack=args.stack))  # fmt: skip
    return 0


def plan_line(
    stack: str,
    pairs: list[str],
    clock: Callable[[], float] = time.monotonic,
    *,
    offline: bool = False,
) -> str:
    """The plan's last line: the day's cache, else the API within :data:`PLAN_BUDGET_SECONDS`
    for all queries together, else the bundled table at once (the first failure ends
    asking); ``offline``: the cache and the table only. "" when the settings are bad: the
    plan says why, in its own words."""
    from llmops_infra.cost import report
    from llmops_infra.errors import ConfigError
    from llmops_infra.offline.stack_files import parse_overrides, read_stack_config
    from workload.contract import PROJECT_DIR

    try:
        config = read_stack_config(PROJECT_DIR, stack, parse_overrides(pairs))
        today = _today()
        costs, _ = price_stack(config, today, timeout=1.5, budget=PLAN_BUDGET_SECONDS,
                               clock=clock, offline=offline)  # fmt: skip
    except ConfigError:
        return ""
    return report.plan_line(costs, today.isoformat())
