"""``python -m llmops_infra plan``: what ``pulumi up`` would create, without Azure."""

from __future__ import annotations

import argparse

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
            "know are shown as '(known after up)'; secrets are masked."
        ),
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value, e.g. llmops:region=swedencentral (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Assemble the configuration, run the program under the mocks, print the plan."""
    import sys

    from llmops_infra.offline import plan
    from llmops_infra.offline.engine import PROJECT_DIR
    from llmops_infra.offline.stack_files import parse_overrides, read_stack_config

    config = read_stack_config(PROJECT_DIR, args.stack, parse_overrides(args.config))
    result = plan.make_plan(config, stack=args.stack)
    if isinstance(result, plan.PlanError):
        print(f"error: {result.message}", file=sys.stderr)
        return 2
    print(plan.to_json(result) if args.json else plan.to_text(result))
    return 0
