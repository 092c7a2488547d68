"""The drift decision on its own: significance AND effect size, no MLflow involved."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from workload.monitoring.drift import (
    DISTRIBUTION_METRICS,
    ERROR_RATE,
    MIN_VALUES,
    compare_rates,
    compare_samples,
    compare_windows,
)
from workload.monitoring.drift_plot import plot_drift
from workload.monitoring.traces import TraceRecord


def _normal(seed: int, mean: float, sd: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_the_same_values_in_both_windows_are_no_drift() -> None:
    values = [float(v) for v in range(400, 600, 10)]
    result = compare_samples("latency_ms", values, list(reversed(values)))
    assert result.p_value == pytest.approx(1.0), "identical samples cannot be told apart"
    assert result.effect == 0.0, "identical samples are zero distance apart"
    assert result.statistic == 0.0
    assert not result.drift


def test_a_large_shift_is_drift() -> None:
    result = compare_samples("latency_ms", _normal(1, 500, 50, 20), _normal(2, 2000, 200, 20))
    assert result.drift, "a fourfold slowdown on 20 calls each is drift"
    assert result.statistic == 1.0, "the windows do not overlap at all"
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.effect is not None and result.effect > 0.5
    assert result.relative_change == pytest.approx(3.0, abs=0.3), "median 500 -> ~2000 is +300 %"


def test_a_tiny_shift_on_many_traces_is_significant_but_not_drift() -> None:
    baseline = _normal(3, 1000, 50, 5000)
    recent = [v + 10 for v in _normal(4, 1000, 50, 5000)]  # 1 % slower
    result = compare_samples("latency_ms", baseline, recent)
    assert result.p_value is not None and result.p_value < 0.01, "with 5000 each, 1 % is 'real'"
    assert result.effect is not None and result.effect < 0.05, "but it is a hundredth of the value"
    assert not result.drift, "significance alone must not call drift"


def test_a_large_but_unconvincing_difference_is_not_drift() -> None:
    result = compare_samples("completion_tokens", [1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert result.effect is not None and result.effect >= 0.2, "the medians moved by 60 %"
    assert result.p_value is not None and result.p_value > 0.01, "five values each prove little"
    assert not result.drift, "a large effect that may be chance is not drift"


def test_a_wider_spread_with_the_same_median_is_drift() -> None:
    baseline = _normal(5, 500, 10, 40)
    recent = [300.0] * 19 + [500.0] * 2 + [700.0] * 19
    result = compare_samples("latency_ms", baseline, recent)
    assert result.relative_change is not None and abs(result.relative_change) < 0.02
    assert result.drift, "the Wasserstein effect sees a change of shape, not only of the median"


def test_missing_values_are_left_out_not_counted_as_zero() -> None:
    baseline: list[float | None] = [10.0, None, 10.0, 10.0, 10.0, 10.0, None]
    recent: list[float | None] = [10.0] * 6
    result = compare_samples("prompt_tokens", baseline, recent)
    assert (result.baseline_count, result.recent_count) == (5, 6)
    assert result.baseline == 10.0, "None is missing, not zero"
    assert not result.drift


def test_too_few_values_are_reported_and_never_drift() -> None:
    result = compare_samples("response_chars", [1.0] * (MIN_VALUES - 1), [100.0] * 20)
    assert result.p_value is None and result.effect is None
    assert not result.drift
    assert "too few values" in result.note and str(MIN_VALUES) in result.note


def test_all_zero_windows_have_zero_effect() -> None:
    result = compare_samples("completion_tokens", [0.0] * 10, [0.0] * 10)
    assert result.effect == 0.0
    assert result.relative_change is None, "a change relative to zero is undefined"
    assert not result.drift


def test_a_burst_of_errors_is_drift() -> None:
    result = compare_rates(ERROR_RATE, [False] * 16, [False, True] * 8)
    assert result.drift, "0 of 16 failed, then 8 of 16"
    assert (result.baseline, result.recent) == (0.0, 0.5)
    assert result.change == 0.5
    assert result.p_value is not None and result.p_value < 0.01
    assert result.effect == pytest.approx(math.pi / 2), "Cohen's h for 0 -> 0.5"
    assert result.statistic is None, "the odds ratio is infinite and reported as None"


def test_a_slightly_higher_error_rate_on_many_traces_is_not_drift() -> None:
    baseline = [i < 10_000 for i in range(100_000)]  # 10 %
    recent = [i < 10_600 for i in range(100_000)]  # 10.6 %
    result = compare_rates(ERROR_RATE, baseline, recent)
    assert result.p_value is not None and result.p_value < 0.01
    assert result.effect is not None and result.effect < 0.05
    assert not result.drift


def test_stricter_thresholds_change_the_decision() -> None:
    baseline, recent = _normal(6, 500, 20, 30), _normal(7, 600, 20, 30)
    assert compare_samples("latency_ms", baseline, recent, min_effect=0.1).drift
    assert not compare_samples("latency_ms", baseline, recent, min_effect=0.5).drift
    assert not compare_samples("latency_ms", baseline, recent, alpha=1e-30).drift


@pytest.mark.parametrize(("alpha", "min_effect"), [(0.0, 0.2), (1.0, 0.2), (0.01, -0.1)])
def test_thresholds_outside_their_range_are_refused(alpha: float, min_effect: float) -> None:
    with pytest.raises(ValueError, match=r"(alpha|min_effect) must be"):
        compare_samples("latency_ms", [1.0] * 5, [1.0] * 5, alpha=alpha, min_effect=min_effect)


def _record(i: int, latency: float | None, tokens: int | None, error: bool = False) -> TraceRecord:
    return TraceRecord(
        trace_id=f"tr-{i}",
        timestamp_ms=i,
        latency_ms=latency,
        prompt_tokens=20 if tokens is not None else None,
        completion_tokens=tokens,
        total_tokens=20 + tokens if tokens is not None else None,
        response_chars=tokens * 5 if tokens is not None else None,
        error=error,
    )


def test_compare_windows_reports_every_metric_as_json() -> None:
    baseline = [_record(i, 500.0 + i, 20 + i % 5) for i in range(10)]
    recent = [_record(10 + i, 2000.0 + i, 100 + i % 5) for i in range(10)]
    report = compare_windows(baseline, recent)
    names = [metric.name for metric in report.metrics]
    assert names == [*DISTRIBUTION_METRICS, ERROR_RATE], "every metric, in a fixed order"
    assert report.drift
    assert set(report.drifted) == {
        "latency_ms",
        "completion_tokens",
        "total_tokens",
        "response_chars",
    }, "the prompt and the error rate did not change"
    document = json.loads(json.dumps(report.as_dict(), allow_nan=False))
    assert document["drift"] is True
    assert {m["name"]: m["drift"] for m in document["metrics"]}["prompt_tokens"] is False
    assert document["alpha"] == 0.01 and document["min_effect"] == 0.2


def _scored(i: int, verdict: bool | None, score: float | None) -> TraceRecord:
    assessments: dict[str, bool | float] = {}
    if verdict is not None:
        assessments["expectations_guidelines"] = verdict
    if score is not None:
        assessments["relevance"] = score
    return replace(_record(i, 500.0 + i % 7, 20 + i % 5), assessments=assessments)


def test_assessments_are_compared_as_pass_rates_and_numbers(tmp_path: Path) -> None:
    # Chat traces never scored sit in both windows: they must not dilute the pass rate.
    baseline = [_scored(i, True, 0.9 + i % 3 / 100) for i in range(10)] + [
        _scored(100 + i, None, None) for i in range(10)
    ]
    recent = [_scored(10 + i, i < 2, 0.3 + i % 3 / 100) for i in range(10)] + [
        _scored(200 + i, None, None) for i in range(10)
    ]
    report = compare_windows(baseline, recent)
    metrics = {metric.name: metric for metric in report.metrics}
    verdicts = metrics["assessment:expectations_guidelines"]
    assert (verdicts.test, verdicts.summary) == ("fisher", "rate")
    assert (verdicts.baseline, verdicts.recent) == (1.0, 0.2), "only scored traces count"
    assert (verdicts.baseline_count, verdicts.recent_count) == (10, 10)
    assert verdicts.drift, "a judge's pass rate falling from 100% to 20% is drift"
    scores = metrics["assessment:relevance"]
    assert (scores.test, scores.summary) == ("ks", "median") and scores.drift
    assert not metrics["latency_ms"].drift, "the rule is the same for every metric"
    assert [m.name for m in report.metrics][-2:] == [
        "assessment:expectations_guidelines",
        "assessment:relevance",
    ], "assessments after the built-in metrics, by name"

    picture = plot_drift(tmp_path / "drift.png", report, baseline, recent)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_pass_rate_in_both_windows_is_not_drift() -> None:
    baseline = [_scored(i, i % 2 == 0, None) for i in range(20)]
    recent = [_scored(20 + i, i % 2 == 1, None) for i in range(20)]
    verdicts = compare_windows(baseline, recent).metrics[-1]
    assert verdicts.name == "assessment:expectations_guidelines"
    assert verdicts.baseline == verdicts.recent == 0.5 and not verdicts.drift
