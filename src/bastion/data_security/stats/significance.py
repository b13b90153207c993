"""Two-sample significance tests: Kolmogorov-Smirnov, chi-square homogeneity, null rates.

``ks_test`` gives the statistic and p-value of ``scipy.stats.ks_2samp``
(two-sided, method ``auto``) but computes D itself on sorted arrays, so a stored
sorted reference sample is compared with a million current values in a few
tens of milliseconds.  ``chi_square_test`` is the test of homogeneity on the
2 x k table of counts, as ``scipy.stats.chi2_contingency(table,
correction=False)`` (empty categories dropped).

Example::

    from bastion.data_security.stats import chi_square_test, ks_test
    result = chi_square_test([500, 300, 200], [200, 300, 500])
    assert result.p_value < 1e-6
    assert ks_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).statistic == 0.0
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from bastion.data_security.errors import StatsInputInvalid
from bastion.data_security.stats.distances import FloatArray, Values, as_counts, finite_sorted
from bastion.data_security.stats.values import TestResult

#: above this sample size scipy's ``auto`` mode switches from exact to asymptotic
_KS_EXACT_MAX_N = 10_000


def _run_ends(ordered: FloatArray) -> npt.NDArray[np.intp]:
    """Indices of the last element of each run of equal values in a sorted array."""
    return np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))


def ks_statistic_sorted(ref_sorted: FloatArray, cur_sorted: FloatArray) -> float:
    """The two-sided KS statistic D between two *sorted* samples (no NaN).

    Both ECDFs are right-continuous steps that jump only at sample values, so D
    is the largest gap at the distinct values of either sample.  At a sample's
    own values its ECDF is known from the position (end of the run of ties), so
    only the other sample is searched: O(n) plus O(n log m) for m << n.
    """
    n_ref, n_cur = ref_sorted.size, cur_sorted.size
    ends_ref, ends_cur = _run_ends(ref_sorted), _run_ends(cur_sorted)
    at_ref = ref_sorted[ends_ref]
    gap_ref = (ends_ref + 1) / n_ref - np.searchsorted(cur_sorted, at_ref, "right") / n_cur
    at_cur = cur_sorted[ends_cur]
    gap_cur = (ends_cur + 1) / n_cur - np.searchsorted(ref_sorted, at_cur, "right") / n_ref
    return float(max(np.max(np.abs(gap_ref)), np.max(np.abs(gap_cur))))


def ks_pvalue_asymptotic(statistic: float, n_ref: int, n_cur: int) -> float:
    """Smirnov's asymptotic two-sided p-value of D (scipy's ``asymp`` mode)."""
    m, n = sorted((float(n_ref), float(n_cur)), reverse=True)
    en = m * n / (m + n)
    return float(np.clip(sps.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


def ks_test_sorted(ref_sorted: FloatArray, cur_sorted: FloatArray) -> TestResult:
    """KS test on two sorted, finite samples."""
    if ref_sorted.size == 0 or cur_sorted.size == 0:
        raise StatsInputInvalid("KS test needs at least one finite value on each side")
    if max(ref_sorted.size, cur_sorted.size) <= _KS_EXACT_MAX_N:
        # small samples: scipy's exact distribution, cheap at this size
        exact = sps.ks_2samp(ref_sorted, cur_sorted)
        return TestResult(float(exact.statistic), float(exact.pvalue))
    d = ks_statistic_sorted(ref_sorted, cur_sorted)
    return TestResult(d, ks_pvalue_asymptotic(d, ref_sorted.size, cur_sorted.size))


def ks_test(reference: Values, current: Values) -> TestResult:
    """Two-sample two-sided KS test; nulls, NaN and ±inf are ignored."""
    ref, _ = finite_sorted(reference, "reference")
    cur, _ = finite_sorted(current, "current")
    return ks_test_sorted(ref, cur)


def chi_square_test(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> TestResult:
    """Chi-square test of homogeneity of two count vectors over the same categories."""
    ref = as_counts(ref_counts, "reference counts")
    cur = as_counts(cur_counts, "current counts")
    if ref.shape != cur.shape:
        raise StatsInputInvalid(
            f"reference and current counts differ in length ({ref.size} vs {cur.size})"
        )
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref <= 0 or n_cur <= 0:
        raise StatsInputInvalid("chi-square test needs a positive total on each side")
    if ref.size < 2:
        return TestResult(0.0, 1.0)
    total = n_ref + n_cur
    col = ref + cur
    exp_ref, exp_cur = col * (n_ref / total), col * (n_cur / total)
    statistic = float(
        np.sum((ref - exp_ref) ** 2 / exp_ref) + np.sum((cur - exp_cur) ** 2 / exp_cur)
    )
    return TestResult(statistic, float(sps.chi2.sf(statistic, ref.size - 1)))


def cramers_v(statistic: float, total: float) -> float:
    """Cramér's V of a 2 x k table (``sqrt(chi2 / N)``), an effect size in [0, 1]."""
    if total <= 0:
        return 0.0
    return float(min(1.0, math.sqrt(max(statistic, 0.0) / total)))


def null_rate_test(ref_nulls: int, n_ref: int, cur_nulls: int, n_cur: int) -> TestResult:
    """Two-proportion z-test of the null rates (statistic z, two-sided p-value)."""
    if n_ref <= 0 or n_cur <= 0:
        raise StatsInputInvalid("null-rate test needs at least one row on each side")
    p_ref, p_cur = ref_nulls / n_ref, cur_nulls / n_cur
    pooled = (ref_nulls + cur_nulls) / (n_ref + n_cur)
    variance = pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur)
    if variance <= 0.0:
        return TestResult(0.0, 1.0)
    z = (p_cur - p_ref) / math.sqrt(variance)
    return TestResult(z, float(2.0 * sps.norm.sf(abs(z))))


__all__ = [
    "chi_square_test",
    "cramers_v",
    "ks_pvalue_asymptotic",
    "ks_statistic_sorted",
    "ks_test",
    "ks_test_sorted",
    "null_rate_test",
]
