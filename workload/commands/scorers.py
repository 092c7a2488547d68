"""``python -m workload scorers start|stop|list``: the eval's judge on production traces.

The judge registered on the experiment as an MLflow registered scorer, judging a
sample of the traces as they arrive, on Databricks in gateway mode only
(:mod:`workload.releases.scorers`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from workload.commands.arguments import bounded
from workload.config.context import command_parser

__all__ = ["add_parser", "run_list", "run_start", "run_stop"]

_DESCRIPTION = """\
The eval's guidelines judge registered on the experiment as an MLflow registered
scorer, so Databricks judges a sample of the production traces as they arrive,
with no eval run. The judge asks the gateway's judge endpoint
(databricks:/<databricks_judge_serving_endpoint>, else the chat endpoint): on
Databricks, registered scorers accept only a Databricks-served judge. Needs a
Databricks experiment (MLFLOW_TRACKING_URI=databricks, or a cluster) and a stack
with llmops:gateway true.

start registers the judge (a second start updates it, never duplicates it) and
sets its sample rate; stop sets it to 0 and keeps it registered; list shows
every scorer registered on the experiment.

Exit status: 0 done, 1 MLflow or the workspace failed, 2 not a Databricks
experiment in gateway mode, or bad settings (nothing called).
"""

_sample_rate = bounded(float, lambda r: 0.0 < r <= 1.0, "a number above 0 and at most 1, e.g. 0.5")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``scorers`` and its three sub-commands."""
    from workload.releases.scorers import DEFAULT_SAMPLE_RATE

    parser = subparsers.add_parser(
        "scorers",
        help="judge production traces on Databricks with the eval's judge (registered scorers)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="scorers_command", required=True, metavar="ACTION")
    start = command_parser(
        actions,
        "start",
        summary="register the judge on the experiment and start judging traces",
        description=_DESCRIPTION,
    )
    start.add_argument(
        "--sample-rate",
        type=_sample_rate,
        default=DEFAULT_SAMPLE_RATE,
        metavar="R",
        help=f"the share of traces judged, above 0 and at most 1 ({DEFAULT_SAMPLE_RATE:g})",
    )
    start.set_defaults(run=run_start)
    stop = command_parser(
        actions,
        "stop",
        summary="stop judging (sample rate 0); the judge stays registered",
        description=_DESCRIPTION,
    )
    stop.set_defaults(run=run_stop)
    listing = command_parser(
        actions,
        "list",
        summary="the experiment's registered scorers: sample rate, judge model, active",
        description=_DESCRIPTION,
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=run_list)
    for command in actions.choices.values():
        command.set_defaults(parser=command)


def _experiment(args: argparse.Namespace) -> tuple[str, str]:
    """The judge model and the experiment's id; exit 2 before anything is called anywhere
    but a Databricks experiment in gateway mode."""
    import os

    from workload.config.context import resolve_context, use_experiment
    from workload.releases.scorers import judge_model

    def check(outputs: Mapping[str, Any], env: Mapping[str, str]) -> None:
        judge_model(outputs, env)

    context = resolve_context(args, model=False, check=check)
    model = judge_model(context.outputs, os.environ)
    return model, use_experiment(context.experiment)


def _rate(rate: float | None) -> str:
    """A sample rate as the commands print it ("-": never started)."""
    return "-" if rate is None else f"{rate:g}"


def run_start(args: argparse.Namespace) -> int:
    """Register (or update) the judge and set its sample rate."""
    from workload.releases.scorers import start_scorers

    model, experiment_id = _experiment(args)
    for scorer in start_scorers(experiment_id, model, args.sample_rate):
        if scorer.ours:
            print(f"{scorer.name}: judging {_rate(scorer.sample_rate)} of the traces with {model}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Set each of our registered scorers' sample rate to 0."""
    from workload.releases.scorers import stop_scorers

    _, experiment_id = _experiment(args)
    stopped = stop_scorers(experiment_id)
    for name in stopped:
        print(f"{name}: stopped (sample rate 0; still registered)")
    if not stopped:
        print("no scorer of ours is registered on the experiment: nothing to stop")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the experiment's registered scorers."""
    import json

    from workload.releases.scorers import list_registered

    _, experiment_id = _experiment(args)
    listed = list_registered(experiment_id)
    if args.json:
        print(
            json.dumps({"experiment_id": experiment_id, "scorers": [s.as_json() for s in listed]})
        )
        return 0
    if not listed:
        print("no scorer is registered on the experiment (scorers start registers the judge)")
    for scorer in listed:
        rate = _rate(scorer.sample_rate)
        state = "active" if scorer.active else "stopped"
        print(f"{scorer.name:<24} {rate:>6}  {state:<8} {scorer.model or '-'}")
    return 0
