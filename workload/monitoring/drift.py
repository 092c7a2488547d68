"""Did a metric move between two windows of traces? Pure statistics, no MLflow.

A metric drifts when two things hold at once:

* the difference is significant: a two-sample test rejects "same distribution"
  at ``alpha`` (Kolmogorov-Smirnov for latency, token counts and response
  length; Fisher's exact test for the error rate), and
* the difference is large enough to matter: the effect size is at least
  ``min_effect``. For a distribution that is the Wasserstein (earth mover's)
  distance between the windows divided by the larger of the two windows' mean
  magnitudes: 0.2 means the values moved, on average, by a fifth of their
  typical size (200 ms -> 250 ms is 0.2; it also grows when only the spread or
  the tail changes). For the error rate it is Cohen's h, the difference of the
  arcsine-square-root rates, where 0.2 is conventionally "small".

The traces' assessments (the eval's scorers and LLM judges) are compared the
same way, one metric each, named ``assessment:<name>``: a yes/no verdict's pass
rate with Fisher's exact test and Cohen's h, a numeric score as a distribution.
Only the traces that carry the assessment count, so chat calls never scored
do not dilute a judge's pass rate. When the experiment holds two eval runs of
the newest run's dataset, the verdicts are compared between those two whole
runs (not windows of trace counts, which mix datasets), a pass rate's drop is
tested one-sided (Fisher's exact test, "fewer passes lately") at
``verdict_alpha`` (0.05: whole runs are tens of rows, and only a drop pages
anyone), and each judge's errors are a metric of their own,
``judge_errors:<scorer>`` (the share of its rows it gave no verdict for; a rise
tested one-sided), so judge errors never vanish from the comparison.

Significance alone is not enough: on thousands of traces a 1 % shift is
"significant" and nobody should be paged for it. Size alone is not enough
either: five slow calls in a row may be chance.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from workload.monitoring.traces import TraceRecord

__all__ = [
    "ASSESSMENT_PREFIX",
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_EFFECT",
    "DEFAULT_VERDICT_ALPHA",
    "DISTRIBUTION_METRICS",
    "ERROR_RATE",
    "JUDGE_ERRORS_PREFIX",
    "MIN_VALUES",
    "DriftReport",
    "MetricResult",
    "assessment_values",
    "compare_rates",
    "compare_samples",
    "compare_windows",
]

#: Significance level of each test.
DEFAULT_ALPHA: Final = 0.01

#: Significance level of the one-sided tests on two whole eval runs' verdicts.
DEFAULT_VERDICT_ALPHA: Final = 0.05

#: The prefix of the metrics counting a judge's errors.
JUDGE_ERRORS_PREFIX: Final = "judge_errors:"

Alternative = Literal["two-sided", "less", "greater"]

#: Smallest effect size called drift (see the module docstring).
DEFAULT_MIN_EFFECT: Final = 0.2

#: Fewest values per window a test is run on; below it the metric is reported, never flagged.
MIN_VALUES: Final = 5

#: The per-trace numbers compared as distributions, in the order they are reported.
DISTRIBUTION_METRICS: Final = (
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "response_chars",
)

#: The share of traces that ended in error, compared as a proportion.
ERROR_RATE: Final = "error_rate"

#: The prefix of the metrics made from the traces' assessments.
ASSESSMENT_PREFIX: Final = "assessment:"

TestKind = Literal["ks", "fisher"]


@dataclass(frozen=True)
class MetricResult:
    """One metric compared across the two windows."""

    name: str
    """The metric, e.g. ``latency_ms`` or ``error_rate``."""
    test: TestKind
    """``ks`` (two-sample Kolmogorov-Smirnov) or ``fisher`` (Fisher's exact test)."""
    summary: Literal["median", "rate"]
    """What ``baseline`` and ``recent`` are: each window's median, or its error rate."""
    baseline_count: int
    """Values in the baseline window (traces without the metric are left out)."""
    recent_count: int
    """Values in the recent window."""
    baseline: float | None
    """The baseline window's median (or rate); None without values."""
    recent: float | None
    """The recent window's median (or rate)."""
    change: float | None
    """``recent - baseline``, in the metric's unit."""
    relative_change: float | None
    """``change / |baseline|``; None when the baseline is zero or missing."""
    effect: float | None
    """Effect size: normalised Wasserstein distance, or |Cohen's h| for the error rate."""
    statistic: float | None
    """The test statistic: KS distance D, or the odds ratio (None when infinite)."""
    p_value: float | None
    """The test's two-sided p-value; None when the test was not run."""
    drift: bool
    """p_value < alpha and effect >= min_effect."""
    note: str = ""
    """Why the test was not run, when it was not."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready object."""
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Every metric's comparison and the thresholds used."""

    metrics: tuple[MetricResult, ...]
    alpha: float
    min_effect: float

    @property
    def drift(self) -> bool:
        """True when any metric drifted."""
        return any(metric.drift for metric in self.metrics)

    @property
    def drifted(self) -> tuple[str, ...]:
        """Names of the metrics that drifted."""
        return tuple(metric.name for metric in self.metrics if metric.drift)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready object: ``drift``, ``drifted``, the thresholds and ``metrics``."""
        return {
            "drift": self.drift,
            "drifted": list(self.drifted),
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "metrics": [metric.as_dict() for metric in self.metrics],
        }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _changes(baseline: float | None, recent: float | None) -> tuple[float | None, float | None]:
    if baseline is None or recent is None:
        return None, None
    change = recent - baseline
    return change, (change / abs(baseline) if baseline else None)


def _check(alpha: float, min_effect: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha}")
    if min_effect < 0.0:
        raise ValueError(f"min_effect must be 0 or more, not {min_effect}")


def compare_samples(
    name: str,
    baseline: Sequence[float | None],
    recent: Sequence[float | None],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> MetricResult:
    """Compare two samples of a continuous metric; ``None`` values (missing) are left out."""
    _check(alpha, min_effect)
    from scipy import stats

    old = [float(v) for v in baseline if v is not None]
    new = [float(v) for v in recent if v is not None]
    old_median = statistics.median(old) if old else None
    new_median = statistics.median(new) if new else None
    untested = _untested(name, "ks", "median", (len(old), len(new)), (old_median, new_median))
    if min(len(old), len(new)) < MIN_VALUES:
        return untested
    with warnings.catch_warnings():
        # For large samples scipy falls back from the exact p-value to the asymptotic one
        # and says so; either is fine here.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        result = stats.ks_2samp(old, new)
    scale = max(statistics.fmean(abs(v) for v in old), statistics.fmean(abs(v) for v in new))
    effect = float(stats.wasserstein_distance(old, new)) / scale if scale else 0.0
    return _tested(
        untested, effect, float(result.statistic), float(result.pvalue), alpha, min_effect
    )


def _tested(
    untested: MetricResult,
    effect: float,
    statistic: float | None,
    p_value: float,
    alpha: float,
    min_effect: float,
) -> MetricResult:
    """A metric's result once tested: drift needs both the test and the effect-size floor."""
    return replace(
        untested,
        effect=effect,
        statistic=statistic,
        p_value=p_value,
        drift=p_value < alpha and effect >= min_effect,
        note="",
    )


def _untested(
    name: str,
    test: TestKind,
    summary: Literal["median", "rate"],
    counts: tuple[int, int],
    values: tuple[float | None, float | None],
    what: str = "values",
) -> MetricResult:
    """A comparison before (or without) its test: the windows' summaries, no verdict yet."""
    change, relative = _changes(*values)
    return MetricResult(
        name=name,
        test=test,
        summary=summary,
        baseline_count=counts[0],
        recent_count=counts[1],
        baseline=values[0],
        recent=values[1],
        change=change,
        relative_change=relative,
        effect=None,
        statistic=None,
        p_value=None,
        drift=False,
        note=f"too few {what} to test (baseline {counts[0]}, recent {counts[1]}; "
        f"{MIN_VALUES} needed in each)",
    )


def compare_rates(
    name: str,
    baseline: Sequence[bool],
    recent: Sequence[bool],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alternative: Alternative = "two-sided",
) -> MetricResult:
    """Compare how often something happened (True) in two windows, with Fisher's exact test.

    ``alternative`` "less": only fewer hits lately counts (a pass rate's drop); "greater":
    only more (errors' rise).
    """
    _check(alpha, min_effect)
    from scipy import stats

    old_hits, new_hits = sum(baseline), sum(recent)
    old_rate = old_hits / len(baseline) if baseline else None
    new_rate = new_hits / len(recent) if recent else None
    untested = _untested(
        name, "fisher", "rate", (len(baseline), len(recent)), (old_rate, new_rate), "traces"
    )
    if old_rate is None or new_rate is None or min(len(baseline), len(recent)) < MIN_VALUES:
        return untested
    # Rows: recent, baseline; so an odds ratio above 1 means more errors lately.
    table = [[new_hits, len(recent) - new_hits], [old_hits, len(baseline) - old_hits]]
    result = stats.fisher_exact(table, alternative=alternative)
    effect = abs(2 * math.asin(math.sqrt(new_rate)) - 2 * math.asin(math.sqrt(old_rate)))
    return _tested(
        untested, effect, _finite(result.statistic), float(result.pvalue), alpha, min_effect
    )


def compare_windows(
    baseline: Sequence[TraceRecord],
    recent: Sequence[TraceRecord],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
    verdicts: tuple[Sequence[TraceRecord], Sequence[TraceRecord]] | None = None,
    verdict_alpha: float = DEFAULT_VERDICT_ALPHA,
) -> DriftReport:
    """Compare every metric of two windows of traces.

    ``verdicts``: two whole eval runs of one dataset; the assessments are compared between
    them (pass rates one-sided at ``verdict_alpha``) instead of between the trace windows.
    """
    results = [
        compare_samples(
            name,
            [getattr(record, name) for record in baseline],
            [getattr(record, name) for record in recent],
            alpha=alpha,
            min_effect=min_effect,
        )
        for name in DISTRIBUTION_METRICS
    ]
    results.append(
        compare_rates(
            ERROR_RATE,
            [record.error for record in baseline],
            [record.error for record in recent],
            alpha=alpha,
            min_effect=min_effect,
        )
    )
    if verdicts is not None:
        baseline, recent = verdicts
    rate_alpha = alpha if verdicts is None else verdict_alpha
    drop: Alternative = "two-sided" if verdicts is None else "less"
    names = sorted({name for r in (*baseline, *recent) for name in r.assessments})
    for name in names:
        old = assessment_values(baseline, name)
        new = assessment_values(recent, name)
        metric = ASSESSMENT_PREFIX + name
        if all(isinstance(v, bool) for v in (*old, *new)):
            results.append(
                compare_rates(
                    metric,
                    [bool(v) for v in old],
                    [bool(v) for v in new],
                    alpha=rate_alpha,
                    min_effect=min_effect,
                    alternative=drop,
                )
            )
        else:
            results.append(
                compare_samples(
                    metric,
                    [float(v) for v in old],
                    [float(v) for v in new],
                    alpha=alpha,
                    min_effect=min_effect,
                )
            )
    judged = sorted({name for r in (*baseline, *recent) for name in r.judge_errors})
    for name in judged:
        results.append(
            compare_rates(
                JUDGE_ERRORS_PREFIX + name,
                _judge_error_flags(baseline, name),
                _judge_error_flags(recent, name),
                alpha=rate_alpha,
                min_effect=min_effect,
                alternative="two-sided" if verdicts is None else "greater",
            )
        )
    return DriftReport(tuple(results), alpha=alpha, min_effect=min_effect)


def _judge_error_flags(records: Sequence[TraceRecord], name: str) -> list[bool]:
    """Per trace the judge ``name`` ran on: did it give no verdict?"""
    return [
        name in r.judge_errors for r in records if name in r.judge_errors or name in r.assessments
    ]


def assessment_values(records: Sequence[TraceRecord], name: str) -> list[bool | float]:
    """The values of assessment ``name`` in the traces that carry it, oldest first."""
    return [r.assessments[name] for r in records if name in r.assessments]
