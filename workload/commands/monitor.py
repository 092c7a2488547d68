"""``python -m workload monitor``: did the traced chat calls drift between two windows?

The lab's section "モデルを監視する" asks to compare the traces of different
runs for drift in inputs, predictions and performance with statistical tests
or plots. This command does that for one experiment: it reads the traces
(``workload.monitoring.traces``), compares an older window with the newest one
(``workload.monitoring.drift``), prints a table or JSON and can draw the comparison
(``workload.monitoring.drift_plot``). Only argparse is imported until the command runs.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from workload.commands.arguments import bounded
from workload.config.context import command_parser
from workload.monitoring.drift import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    DEFAULT_VERDICT_ALPHA,
    MIN_VALUES,
)

if TYPE_CHECKING:
    from workload.monitoring.drift import DriftReport, MetricResult
    from workload.monitoring.traces import TraceRecord, Windows

__all__ = ["EXIT_DRIFT", "UNTAGGED", "add_parser", "prompt_versions", "run"]

#: Exit status with --fail-on-drift when a metric drifted (not an error: the check worked).
EXIT_DRIFT = 3

_DESCRIPTION = f"""\
Compare an MLflow experiment's traces: the oldest traces (the baseline) against
the newest (recent), per metric: latency, prompt, completion and total tokens,
response length, the error rate, and every assessment the traces carry (the
eval's scorers and judges: assessment:<name>, a yes/no verdict as a pass rate,
a number as a distribution). Traces are read from MLFLOW_TRACKING_URI (a sqlite
file, a tracking server, or 'databricks'); with --outputs or --stack the
experiment and the workspace are the stack's, as for `chat`.

How the decision is made: a metric drifted when BOTH
  1. a two-sample test says the windows differ: p-value < --alpha ({DEFAULT_ALPHA:g});
     Kolmogorov-Smirnov for latency, tokens, length and numeric scores, Fisher's
     exact test for the error rate and the pass rates; and
  2. the difference is big enough to matter: effect size >= --min-effect ({DEFAULT_MIN_EFFECT:g}).
     For latency, tokens and length the effect is the Wasserstein distance
     between the windows divided by the larger window's mean (0.2: values
     moved by about a fifth, e.g. 500 ms -> 625 ms); for a rate it is
     Cohen's h (0.2 is "small"; 0% -> 5% is 0.45).
So a tiny shift on thousands of traces is not called drift, nor is a wide
swing on a handful. The verdicts (assessment:<scorer>, judge_errors:<scorer>)
are compared, when the experiment holds two finished eval runs of the newest
run's dataset, between those two whole runs instead of the trace windows: a
pass rate's drop tested one-sided with Fisher's exact test at --verdict-alpha
({DEFAULT_VERDICT_ALPHA:g}), and each judge's errors as their own metric (a rise
tested one-sided). Latency is a trace's duration less the time it waited for
the eval's own rate limiter. Latency and response length count successful
traces only; a trace without token counts is left out of the token metrics,
not counted as 0.

Exit status: 0 compared (drift or not), 3 drift with --fail-on-drift,
2 too few traces ({MIN_VALUES} per window at least), an unknown experiment or a
store that cannot be read, 1 the store refused or could not answer (401, 403,
unavailable, throttled).
"""


_window = bounded(int, lambda n: n >= MIN_VALUES, f"a whole number of at least {MIN_VALUES}")
_alpha = bounded(float, lambda p: 0.0 < p < 1.0, "a number between 0 and 1, e.g. 0.01")
_effect = bounded(float, lambda e: e >= 0.0, "a number of 0 or more, e.g. 0.2")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the sub-command."""
    parser = command_parser(
        subparsers,
        "monitor",
        summary="compare trace windows for drift",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "--baseline",
        metavar="N",
        type=_window,
        help="the oldest N traces are the baseline (default: the older half)",
    )
    parser.add_argument(
        "--recent",
        metavar="N",
        type=_window,
        help="the newest N traces are compared with it (default: the newer half)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=DEFAULT_ALPHA,
        help=f"significance level of each test ({DEFAULT_ALPHA:g})",
    )
    parser.add_argument(
        "--verdict-alpha",
        metavar="A",
        type=_alpha,
        default=DEFAULT_VERDICT_ALPHA,
        help="significance level of a pass rate's drop between two eval runs "
        f"({DEFAULT_VERDICT_ALPHA:g}, one-sided)",
    )
    parser.add_argument(
        "--min-effect",
        metavar="SIZE",
        type=_effect,
        default=DEFAULT_MIN_EFFECT,
        help=f"smallest effect size called drift ({DEFAULT_MIN_EFFECT:g}; see above)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw both windows, one panel a metric (.png, .jpg, .svg or .pdf)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit {EXIT_DRIFT} when any metric drifted (for a scheduled job)",
    )
    parser.set_defaults(run=run)


def _when(records: tuple[TraceRecord, ...]) -> tuple[str, str]:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")

    return iso(records[0].timestamp_ms), iso(records[-1].timestamp_ms)


def _number(value: float | None, rate: bool) -> str:
    if value is None:
        return "-"
    if rate:
        return f"{value:.1%}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _change(result: MetricResult) -> str:
    if result.change is None:
        return "-"
    if result.summary == "rate":
        return f"{result.change * 100:+.1f} pp"
    if result.relative_change is None:
        return f"{result.change:+.4g}"
    return f"{result.relative_change:+.0%}"


def _table(windows: Windows, report: DriftReport) -> str:
    rows = [("metric", "baseline", "recent", "change", "effect", "statistic", "p-value", "drift")]
    for m in report.metrics:
        rows.append(
            (
                m.name,
                _number(m.baseline, m.summary == "rate"),
                _number(m.recent, m.summary == "rate"),
                _change(m),
                "-" if m.effect is None else f"{m.effect:.2f}",
                "-" if m.statistic is None else f"{m.statistic:.3g}",
                "-" if m.p_value is None else f"{m.p_value:.2g}",
                "YES" if m.drift else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    old_from, old_to = _when(windows.baseline)
    new_from, new_to = _when(windows.recent)
    head = [
        f"experiment {windows.experiment_name!r} (id {windows.experiment_id})",
        f"baseline: oldest {len(windows.baseline)} traces, {old_from} to {old_to}",
        f"recent:   newest {len(windows.recent)} traces, {new_from} to {new_to}",
        "baseline/recent: medians (rates: share of the traces that carry it); change: "
        "relative (rates: percentage points)",
        "",
    ]
    rule = f"p-value < {report.alpha:g} and effect >= {report.min_effect:g}"
    verdict = (
        f"DRIFT in {', '.join(report.drifted)}: {rule}"
        if report.drift
        else f"no drift: no metric has {rule}"
    )
    notes = [f"{m.name}: {m.note}" for m in report.metrics if m.note]
    return "\n".join([*head, *lines, "", verdict, *notes, *_versions_note(windows)])


#: The count's key for traces made before runs carried a prompt version.
UNTAGGED: Final = "untagged"


def prompt_versions(records: tuple[TraceRecord, ...]) -> dict[str, int]:
    """Traces per ``llmops.prompt_version`` in one window."""
    return dict(Counter(r.prompt_version or UNTAGGED for r in records))


def _versions_note(windows: Windows) -> list[str]:
    """A line saying the windows ran different versions, when they did: a drift verdict
    across a promotion is the promotion's effect, not drift within one version."""
    old, new = prompt_versions(windows.baseline), prompt_versions(windows.recent)
    if set(old) == set(new):
        return []

    def listed(counts: dict[str, int]) -> str:
        return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))

    return [
        f"the windows ran different prompt versions: baseline {listed(old)}; recent "
        f"{listed(new)} (a change here may be the new version's, not drift within one)"
    ]


def _as_json(windows: Windows, report: DriftReport, plot: str | None) -> dict[str, Any]:
    def window(records: tuple[TraceRecord, ...]) -> dict[str, Any]:
        first, last = _when(records)
        return {
            "traces": len(records),
            "first_ms": records[0].timestamp_ms,
            "last_ms": records[-1].timestamp_ms,
            "first": first,
            "last": last,
        }

    return {
        "experiment": windows.experiment_name,
        "experiment_id": windows.experiment_id,
        "baseline": window(windows.baseline),
        "recent": window(windows.recent),
        **report.as_dict(),
        "plot": plot,
        "prompt_versions": {
            "baseline": prompt_versions(windows.baseline),
            "recent": prompt_versions(windows.recent),
        },
    }


def run(args: argparse.Namespace) -> int:
    """Read both windows, compare them, report; exit 3 on drift with --fail-on-drift."""
    import json

    from workload.config.context import resolve_context
    from workload.errors import SettingsError

    if args.plot:  # before anything is read: a suffix that names no format is a typo
        from workload.monitoring.drift_plot import plot_format

        try:
            plot_format(args.plot)
        except ValueError as err:
            raise SettingsError(f"--plot {args.plot}: {err}") from None
    # The experiment and its store as `chat` resolves them: same outputs, same traces.
    experiment = resolve_context(args, model=False).experiment

    from workload.monitoring.drift import compare_windows
    from workload.monitoring.traces import connect, load_eval_windows, load_windows

    client = connect()
    windows = load_windows(
        client, experiment, baseline=args.baseline, recent=args.recent, minimum=MIN_VALUES
    )
    runs = load_eval_windows(client, windows.experiment_id)
    report = compare_windows(
        windows.baseline,
        windows.recent,
        alpha=args.alpha,
        min_effect=args.min_effect,
        verdicts=None if runs is None else (runs.baseline, runs.recent),
        verdict_alpha=args.verdict_alpha,
    )
    if args.plot:
        from workload.monitoring.drift_plot import plot_drift

        try:
            plot_drift(args.plot, report, windows.baseline, windows.recent)
        except OSError as err:
            raise SettingsError(f"cannot write --plot {args.plot}: {err.strerror or err}") from None
    verdict_runs = (
        None
        if runs is None
        else {
            "dataset": runs.dataset,
            "baseline_run": runs.baseline_run,
            "recent_run": runs.recent_run,
        }
    )
    if args.json:
        print(
            json.dumps({**_as_json(windows, report, args.plot), "verdicts": verdict_runs}, indent=2)
        )
    else:
        print(_table(windows, report))
        if runs is not None:
            print(
                f"verdicts (assessment:, judge_errors:): eval run {runs.recent_run} against "
                f"{runs.baseline_run}, the same dataset ({runs.dataset}); drops tested "
                f"one-sided at {args.verdict_alpha:g}"
            )
        if args.plot:
            print(f"plot: {args.plot}")
    return EXIT_DRIFT if args.fail_on_drift and report.drift else 0
