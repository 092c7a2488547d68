"""The monitor's own two-sample tests give what ``scipy.stats`` gives, on the same data."""

from __future__ import annotations

import math
import random
import warnings

import pytest
from scipy import stats

from workload.monitoring import two_sample


def _close(ours: float, theirs: float) -> bool:
    # Both far below any significance level: the digits no longer matter.
    return (ours < 1e-250 and theirs < 1e-250) or math.isclose(ours, theirs, rel_tol=1e-12)


def _samples(seed: int) -> list[tuple[list[float], list[float]]]:
    """Pairs of samples: equal and unequal sizes, shifted or not, with ties or without."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(120):
        n1 = rng.randint(5, 260)
        n2 = rng.choice([n1, rng.randint(5, 260)])
        shift = rng.choice([0.0, 0.1, 0.3, 1.0, 4.0])
        grid = rng.choice([None, 4, 40])  # rounded values tie
        first = [rng.gauss(0.0, 1.0) for _ in range(n1)]
        second = [rng.gauss(shift, 1.3) for _ in range(n2)]
        if grid:
            first = [round(v * grid) / grid for v in first]
            second = [round(v * grid) / grid for v in second]
        pairs.append((first, second))
    return pairs


@pytest.mark.parametrize("seed", [1, 2])
def test_kolmogorov_smirnov_is_scipys_exact_test(seed: int) -> None:
    for first, second in _samples(seed):
        ours = two_sample.ks_2samp(first, second)
        theirs = stats.ks_2samp(first, second)
        where = f"sizes {len(first)} and {len(second)}"
        assert math.isclose(ours.statistic, float(theirs.statistic), rel_tol=1e-12), where
        assert _close(ours.pvalue, float(theirs.pvalue)), (
            f"{where}: p {ours.pvalue!r}, scipy {theirs.pvalue!r}"
        )


def test_kolmogorov_smirnov_keeps_small_p_values_precise() -> None:
    """The mass past the band is summed, not taken as 1 minus the rest (which loses it)."""
    first = [float(v) for v in range(200)]
    second = [v + 130.0 for v in range(150)]  # unequal sizes: the general path
    ours, theirs = two_sample.ks_2samp(first, second), stats.ks_2samp(first, second)
    assert 0 < ours.pvalue < 1e-20
    assert math.isclose(ours.pvalue, float(theirs.pvalue), rel_tol=1e-12)


def test_identical_samples_are_not_different() -> None:
    assert two_sample.ks_2samp([1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, 1.0]) == (0.0, 1.0)


@pytest.mark.parametrize("seed", [3])
def test_wasserstein_distance_is_scipys(seed: int) -> None:
    for first, second in _samples(seed):
        assert math.isclose(
            two_sample.wasserstein_distance(first, second),
            float(stats.wasserstein_distance(first, second)),
            rel_tol=1e-9,
            abs_tol=1e-12,
        )


def test_fisher_exact_is_scipys_for_every_alternative() -> None:
    rng = random.Random(4)
    tables = [
        [[rng.randint(0, 40), rng.randint(0, 40)], [rng.randint(0, 40), rng.randint(0, 40)]]
        for _ in range(400)
    ]
    # Zeros: an empty row or column, an odds ratio of 0 and of infinity; 5 flips one way.
    tables += [
        [[0, 0], [5, 5]],
        [[3, 0], [2, 0]],
        [[0, 5], [5, 0]],
        [[5, 0], [0, 5]],
        [[5, 0], [0, 0]],
    ]
    tables += [[[10, 5], [15, 0]], [[0, 20], [5, 15]]]
    for table in tables:
        for alternative in ("two-sided", "less", "greater"):
            ours = two_sample.fisher_exact(table, alternative)
            theirs = stats.fisher_exact(table, alternative=alternative)
            where = f"{table} {alternative}"
            statistic = float(theirs.statistic)
            assert (math.isnan(ours.statistic) and math.isnan(statistic)) or math.isclose(
                ours.statistic, statistic, rel_tol=1e-12
            ), f"{where}: odds {ours.statistic}, scipy {statistic}"
            assert _close(ours.pvalue, float(theirs.pvalue)), (
                f"{where}: p {ours.pvalue!r}, scipy {theirs.pvalue!r}"
            )


def test_larger_windows_than_the_limits_are_scipys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(two_sample, "KS_EXACT_CELLS", 100)
    monkeypatch.setattr(two_sample, "FISHER_EXACT_ROWS", 10)
    first, second = _samples(5)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = stats.ks_2samp(first, second)
    assert two_sample.ks_2samp(first, second) == (theirs.statistic, theirs.pvalue)
    table = [[7, 3], [2, 9]]
    assert two_sample.fisher_exact(table, "less") == tuple(
        stats.fisher_exact(table, alternative="less")
    )


def test_an_empty_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        two_sample.ks_2samp([], [1.0])
    with pytest.raises(ValueError, match="at least one value"):
        two_sample.wasserstein_distance([1.0], [])
