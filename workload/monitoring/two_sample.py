"""The drift monitor's three tests, without importing ``scipy.stats``.

``scipy.stats`` imports nearly all of SciPy (optimize, sparse, spatial, the
distribution catalogue): about 0.9 s of a monitor run that otherwise takes
about 3 s, more than a fifth of it, for three functions. numpy, which MLflow
imports anyway, suffices for windows of the sizes the monitor compares:

* :func:`ks_2samp`: the two-sample Kolmogorov-Smirnov test, two-sided, with
  the exact p-value (the share of the lattice paths from (0, 0) to (n1, n2)
  that leave the band the statistic draws), as ``scipy.stats.ks_2samp``
  computes it for samples of up to 10,000 values.
* :func:`wasserstein_distance`: the 1-Wasserstein distance of two samples, the
  area between their empirical distribution functions.
* :func:`fisher_exact`: Fisher's exact test on a 2x2 table, from exact
  integer binomial coefficients; two-sided sums the tables no more likely
  than the observed one.

Each gives what ``scipy.stats`` gives (``tests/test_two_sample.py`` holds them
to it). Windows larger than :data:`KS_EXACT_CELLS` and :data:`FISHER_EXACT_ROWS`
allow are handed to ``scipy.stats``: there its compiled loops beat these, and
its import is small beside the reading of that many traces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "FISHER_EXACT_ROWS",
    "KS_EXACT_CELLS",
    "TestResult",
    "fisher_exact",
    "ks_2samp",
    "wasserstein_distance",
]

#: Most lattice points (``n1 * n2``) whose paths :func:`ks_2samp` follows itself, one
#: numpy step per anti-diagonal (1,000 x 1,000 values: some 50 ms); beyond it
#: ``scipy.stats`` computes, whose compiled loop is faster than its import there.
KS_EXACT_CELLS: Final = 1_000_000

#: Most rows of a table :func:`fisher_exact` sums itself in exact integers.
FISHER_EXACT_ROWS: Final = 20_000

Alternative = Literal["two-sided", "less", "greater"]


class TestResult(NamedTuple):
    """A test's statistic and p-value (the two fields the monitor reads of scipy's results)."""

    statistic: float
    pvalue: float


def _sorted(values: Sequence[float]) -> NDArray[np.float64]:
    import numpy as np

    return np.sort(np.asarray(values, dtype=np.float64))


def _outside_band(n1: int, n2: int, h: int) -> float:
    """The share of monotone lattice paths from (0, 0) to (n1, n2) that reach the band's edge.

    A path's point (i, j) is i values of the first sample and j of the second taken in
    order; the two empirical distribution functions then differ by
    ``|i / n1 - j / n2| = |i * n2 - j * n1| / (n1 * n2)``, so in units of ``1 / lcm``
    the edge is ``|i * n2 - j * n1| / gcd >= h``. Every path is equally likely under the
    null hypothesis; the walk takes its next step from the first sample with probability
    (values of it left) / (values left), so carrying probabilities rather than path counts
    keeps every number at most 1. The mass that reaches the edge is summed directly, never
    as 1 minus the rest, so small p-values keep their precision.
    """
    import numpy as np

    g = math.gcd(n1, n2)
    a, b = n2 // g, n1 // g  # the edge: |i * a - j * b| >= h
    j = np.arange(n2 + 1)
    mass = np.zeros(n2 + 1)
    mass[0] = 1.0
    outside = 0.0
    total = n1 + n2
    for k in range(total):  # from the anti-diagonal i + j = k to k + 1
        left = total - k
        i = k - j
        from_first = np.where((i >= 0) & (i < n1), mass * (n1 - i) / left, 0.0)
        from_second = np.where((i >= 0) & (j < n2), mass * (n2 - j) / left, 0.0)
        mass = from_first
        mass[1:] += from_second[:-1]
        reached = np.abs((k + 1 - j) * a - j * b) >= h
        outside += float(mass[reached].sum())
        mass[reached] = 0.0
    return outside


def ks_2samp(data1: Sequence[float], data2: Sequence[float]) -> TestResult:
    """Two-sided two-sample Kolmogorov-Smirnov test: the statistic D and its exact p-value."""
    if len(data1) * len(data2) > KS_EXACT_CELLS:
        from scipy import stats

        result = stats.ks_2samp(data1, data2)
        return TestResult(float(result.statistic), float(result.pvalue))
    import numpy as np

    first, second = _sorted(data1), _sorted(data2)
    n1, n2 = len(first), len(second)
    if min(n1, n2) == 0:
        raise ValueError("ks_2samp needs at least one value in each sample")
    both = np.concatenate([first, second])
    gap = np.abs(
        np.searchsorted(first, both, side="right") / n1
        - np.searchsorted(second, both, side="right") / n2
    )
    lcm = n1 * n2 // math.gcd(n1, n2)
    # D as a whole number of 1/lcm steps (its only possible values), as the exact
    # distribution counts it.
    h = round(float(gap.max()) * lcm)
    if h == 0:
        return TestResult(0.0, 1.0)
    return TestResult(h / lcm, min(max(_outside_band(n1, n2, h), 0.0), 1.0))


def wasserstein_distance(u: Sequence[float], v: Sequence[float]) -> float:
    """The 1-Wasserstein distance: the area between the two empirical distribution functions."""
    import numpy as np

    first, second = _sorted(u), _sorted(v)
    if min(len(first), len(second)) == 0:
        raise ValueError("wasserstein_distance needs at least one value in each sample")
    both = np.sort(np.concatenate([first, second]))
    widths = np.diff(both)
    cdf1 = np.searchsorted(first, both[:-1], side="right") / len(first)
    cdf2 = np.searchsorted(second, both[:-1], side="right") / len(second)
    return float(np.sum(np.abs(cdf1 - cdf2) * widths))


def fisher_exact(
    table: Sequence[Sequence[int]], alternative: Alternative = "two-sided"
) -> TestResult:
    """Fisher's exact test of a 2x2 table: the sample odds ratio and the p-value.

    The odds ratio is ``a * d / (b * c)`` (infinite when ``b * c`` is 0, NaN when a row or
    a column sums to 0, with p-value 1). "less": the p-value of a table with ``a`` this
    small or smaller; "greater": this large or larger.
    """
    (a, b), (c, d) = table
    if min(a, b, c, d) < 0:
        raise ValueError(f"a contingency table holds counts of 0 or more, not {table}")
    row, column, total = a + b, a + c, a + b + c + d
    if total > FISHER_EXACT_ROWS:
        from scipy import stats

        result = stats.fisher_exact([[a, b], [c, d]], alternative=alternative)
        return TestResult(float(result.statistic), float(result.pvalue))
    if 0 in (row, c + d, column, b + d):
        return TestResult(math.nan, 1.0)
    odds = a * d / (b * c) if b * c else math.inf
    # Given the margins, the top-left count x has weight C(column, x) * C(rest, row - x)
    # (a hypergeometric distribution); the weights are exact integers.
    rest = total - column
    support = range(max(0, row - rest), min(row, column) + 1)
    weights = {x: math.comb(column, x) * math.comb(rest, row - x) for x in support}
    observed = weights[a]
    if alternative == "less":
        tail = sum(w for x, w in weights.items() if x <= a)
    elif alternative == "greater":
        tail = sum(w for x, w in weights.items() if x >= a)
    else:
        tail = sum(w for w in weights.values() if w <= observed)
    return TestResult(odds, min(float(Fraction(tail, math.comb(total, row))), 1.0))
