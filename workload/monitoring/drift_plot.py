"""``--plot FILE.png``: one panel per metric, the baseline window against the recent one.

Distributions are drawn as empirical CDFs: the largest vertical gap between the
two curves is the Kolmogorov-Smirnov statistic the decision used, so the panel
shows the test's own evidence. The error rate and each judge's pass rate
(``assessment:<name>``) are pairs of bars; a numeric assessment is a CDF too. Rendering is
headless (matplotlib's Agg backend), so it works on a server or a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from workload.monitoring.drift import (
    ASSESSMENT_PREFIX,
    DISTRIBUTION_METRICS,
    ERROR_RATE,
    DriftReport,
    MetricResult,
    assessment_values,
)

if TYPE_CHECKING:
    from workload.monitoring.traces import TraceRecord

__all__ = ["plot_drift"]

_LABELS: Final = {
    "latency_ms": "latency (ms)",
    "prompt_tokens": "prompt tokens",
    "completion_tokens": "completion tokens",
    "total_tokens": "total tokens",
    "response_chars": "response length (chars)",
    ERROR_RATE: "error rate",
}
_BASELINE_COLOR, _RECENT_COLOR = "#4c72b0", "#dd8452"


def _label(name: str) -> str:
    if name.startswith(ASSESSMENT_PREFIX):
        return name.removeprefix(ASSESSMENT_PREFIX)
    return _LABELS.get(name, name)


def _values(records: Sequence[TraceRecord], name: str) -> list[float]:
    if name.startswith(ASSESSMENT_PREFIX):
        return [float(v) for v in assessment_values(records, name.removeprefix(ASSESSMENT_PREFIX))]
    return [float(v) for r in records if (v := getattr(r, name)) is not None]


def _title(result: MetricResult) -> str:
    label = _label(result.name)
    if result.p_value is None:
        return f"{label}\nnot tested"
    verdict = "DRIFT" if result.drift else "no drift"
    return f"{label}\n{verdict} (p={result.p_value:.2g}, effect={result.effect or 0:.2f})"


def _ecdf(axes: Any, values: Sequence[float], label: str, color: str) -> None:
    ordered = sorted(values)
    if not ordered:
        return
    heights = [(i + 1) / len(ordered) for i in range(len(ordered))]
    axes.step(
        [ordered[0], *ordered],
        [0.0, *heights],
        where="post",
        label=f"{label} (n={len(ordered)})",
        color=color,
    )


#: The formats ``--plot`` writes, named by the file's suffix (matplotlib writes each
#: without a display: PNG, JPEG through Pillow, SVG, PDF).
PLOT_FORMATS: Final = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "svg": "svg", "pdf": "pdf"}


def plot_format(path: str | Path) -> str:
    """The image format ``path``'s suffix names; ValueError, saying which are known, when
    it names none (a ``.jpg`` file holding PNG bytes helps nobody)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        named = f"its suffix .{suffix}" if suffix else "it has no suffix"
        known = ", ".join(f".{s}" for s in PLOT_FORMATS)
        raise ValueError(f"{named} names no format the plot is written in ({known})")
    return PLOT_FORMATS[suffix]


def plot_drift(
    path: str | Path,
    report: DriftReport,
    baseline: Sequence[TraceRecord],
    recent: Sequence[TraceRecord],
) -> Path:
    """Write the figure in the format the file's suffix names (:func:`plot_format`) and
    return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_name = {result.name: result for result in report.metrics}
    extra = [r.name for r in report.metrics if r.name.startswith(ASSESSMENT_PREFIX)]
    names = [*DISTRIBUTION_METRICS, ERROR_RATE, *extra]
    rows = math.ceil(len(names) / 3)
    figure = Figure(figsize=(12, 3.25 * rows), dpi=80, layout="constrained")
    FigureCanvasAgg(figure)  # headless: never pyplot, never a display
    grid = figure.subplots(rows, 3, squeeze=False)
    for axes in list(grid.flat)[len(names) :]:
        axes.set_visible(False)
    for axes, name in zip(grid.flat, names, strict=False):
        result = by_name[name]
        axes.set_title(_title(result), fontsize=10, color="#c0392b" if result.drift else "black")
        if result.summary == "rate":
            rates = [result.baseline or 0.0, result.recent or 0.0]
            counts = [result.baseline_count, result.recent_count]
            bars = axes.bar(["baseline", "recent"], rates, color=[_BASELINE_COLOR, _RECENT_COLOR])
            axes.bar_label(
                bars, [f"{rate:.0%} of {n}" for rate, n in zip(rates, counts, strict=True)]
            )
            axes.set_ylim(0, max(rates) * 1.25 if any(rates) else 1)
            axes.set_ylabel("share of traces" if name == ERROR_RATE else "pass rate")
            continue
        for records, label, color in (
            (baseline, "baseline", _BASELINE_COLOR),
            (recent, "recent", _RECENT_COLOR),
        ):
            _ecdf(axes, _values(records, name), label, color)
        axes.set_ylim(0, 1.05)
        axes.set_ylabel("share of traces at or below")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="best")
    verdict = "drift in " + ", ".join(report.drifted) if report.drift else "no drift"
    figure.suptitle(
        f"Baseline ({len(baseline)} traces) vs recent ({len(recent)} traces): {verdict}"
        f"   [alpha {report.alpha:g}, min effect {report.min_effect:g}]",
        fontsize=11,
    )
    target = Path(path)
    figure.savefig(target, format=plot_format(target))
    return target
