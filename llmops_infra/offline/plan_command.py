"""``python -m llmops_infra plan``: what ``pulumi up`` would create, without Azure."""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from llmops_infra.stack_arguments import add_stack_arguments

if TYPE_CHECKING:
    from llmops_infra.offline.policy_check import PolicyAnalyzer

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "plan",
        help="preview the stack offline, under the Pulumi mock engine",
        description=(
            "Run the real Pulumi program in preview mode under the local mock engine and show "
            "every resource it would create with the lab's settings, then the stack outputs. "
            "Configuration is assembled as the Pulumi CLI does: Pulumi.yaml defaults, then "
            "Pulumi.<stack>.yaml, then --config overrides. Values only Azure or Databricks "
            "know are shown as '(known after up)'; secrets are masked. The policy pack "
            "(default: the project's policy/ folder) then runs over every resource, as "
            "`pulumi up --policy-pack` would; each violation shows under its resource, and a "
            "mandatory one makes the command exit with status 3."
        ),
    )
    add_stack_arguments(parser, example="llmops:region=swedencentral")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument(
        "--no-policy", action="store_true", help="skip the policy pack (no violations, exit 0)"
    )
    parser.add_argument(
        "--policy-pack",
        type=Path,
        metavar="PATH",
        help="the policy pack's folder (default: the project's policy/)",
    )
    parser.add_argument(
        "--policy-pack-config",
        type=Path,
        metavar="FILE",
        help="JSON configuration for the pack, as `pulumi up --policy-pack-config` takes it",
    )
    parser.set_defaults(run=run_with_cost)


def run(args: argparse.Namespace) -> int:
    """Assemble the configuration, run the program under the mocks, check it, print the plan."""
    import sys

    from llmops_infra.offline import plan
    from llmops_infra.offline.stack_files import parse_overrides, read_stack_config
    from workload.contract import PROJECT_DIR

    config = read_stack_config(PROJECT_DIR, args.stack, parse_overrides(args.config))
    problem = plan.check_config(config)  # as `pulumi up` stops: before anything starts
    if problem is not None:
        print(f"error: {problem.message}", file=sys.stderr)
        return 2

    analyzing: AbstractContextManager[PolicyAnalyzer | None] = nullcontext(None)
    if not args.no_policy:
        from llmops_infra.offline.policy_check import PolicyAnalyzer
        from llmops_infra.offline.policy_config import load_pack_config

        pack_config = load_pack_config(args.policy_pack_config) if args.policy_pack_config else {}
        # The pack's process imports while the program runs (two cores, half the wait).
        analyzing = PolicyAnalyzer(
            args.policy_pack or PROJECT_DIR / "policy", stack=args.stack, config=config
        )
    with analyzing as analyzer:
        result = plan.make_plan(config, stack=args.stack)
        if isinstance(result, plan.PlanError):
            print(f"error: {result.message}", file=sys.stderr)
            return 2
        for line in result.warnings:  # as `pulumi up` shows the program's warnings
            print(f"warning: {line}", file=sys.stderr)
        text = plan.to_json(result) if args.json else plan.to_text(result)
        if analyzer is None:
            print(text)
            return 0
        violations = analyzer.analyze(result.recorded, pack_config)
        pack = analyzer.info()["name"]
    from llmops_infra.offline import plan_policy

    # The interpreter is named when it is not the pack's own virtualenv's: its packages
    # (pulumi-policy's version) decide what the pack does.
    python = {"python": analyzer.python, "why": analyzer.substitute} if analyzer.substitute else {}
    if args.json:
        print(plan_policy.with_violations_json(text, pack, violations, **python))
    else:
        if python:
            print(f"Policy pack {pack} runs with {python['python']} ({python['why']})\n")
        print(plan_policy.with_violations_text(text, result.resources, pack, violations))
    return 3 if plan_policy.has_mandatory(violations) else 0


# --- the plan's last line: what the stack costs (llmops_infra/cost) ---------------------------


def run_with_cost(args: argparse.Namespace) -> int:
    """:func:`run`, then one line with the stack's cost an hour (text output only).

    The prices are looked up in a thread while the program runs (the day's cache, else the
    API within a few seconds, else the bundled table), so a plan on a machine without
    internet, where the API fails at once, is as fast as before. A name lookup that hangs
    (no socket timeout bounds it) is left behind after :data:`COST_WAIT_SECONDS`: the line
    then comes from the cache and the bundled table alone.
    """
    if args.json:
        return run(args)
    import threading

    from llmops_infra.cost import command as cost

    found: list[str] = []
    lookup = threading.Thread(
        target=lambda: found.append(cost.plan_line(args.stack, list(args.config))), daemon=True
    )
    lookup.start()
    code = run(args)
    if code in (0, 3):
        lookup.join(timeout=COST_WAIT_SECONDS)
        text = found[0] if found else cost.plan_line(args.stack, list(args.config), offline=True)
        if text:
            print(f"\n{text}")
    return code


#: How long a finished plan waits for the price lookup before it prices offline.
COST_WAIT_SECONDS = 1.0
