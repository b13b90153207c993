"""Per-column drift: a reference summary, the choice of test, and the comparison.

A :class:`ColumnSummary` is computed once from the reference values: quantile
bin edges and counts, distinct levels of low-cardinality numbers, label counts
of categories, null counts and a bounded, sorted random sample for the KS
test.  :func:`compare_column` tests current values against it, using the
method :func:`choose_test` picks (and explains) unless the caller forces one.
:func:`column_drift` does both from two raw arrays.

Example::

    import numpy as np
    from bastion.data_security.stats import ColumnKind, column_drift
    rng = np.random.default_rng(1)
    result = column_drift("income", rng.normal(size=4000), rng.normal(0.5, size=4000),
                          ColumnKind.NUMERIC)
    assert result.drifted and result.method.value == "ks"
    print(result.reason)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from bastion.data_security.errors import StatsInputInvalid
from bastion.data_security.stats.distances import (
    FloatArray,
    IntArray,
    Values,
    aligned_category_counts,
    bin_counts,
    category_counts,
    finite_sorted,
    js_from_counts,
    psi_from_counts,
    quantile_edges,
)
from bastion.data_security.stats.histogram import bin_labels, category_histogram
from bastion.data_security.stats.significance import (
    chi_square_test,
    cramers_v,
    ks_test_sorted,
    null_rate_test,
)
from bastion.data_security.stats.values import (
    ColumnDrift,
    ColumnKind,
    DriftThresholds,
    Method,
    NullDrift,
)

#: numeric columns with at most this many distinct values keep their level counts
MAX_STORED_LEVELS = 64
DEFAULT_SAMPLE_SIZE = 10_000
DEFAULT_MAX_CATEGORIES = 1_000
#: the label of the bucket that collects labels beyond ``max_categories``
OTHER_LABEL = "(other)"


def choose_test(
    kind: ColumnKind, n_ref: int, n_cur: int, n_distinct: int,
    thresholds: DriftThresholds | None = None,
) -> tuple[Method, str]:
    """The method that decides drift for a column, and why (one sentence for the report)."""
    t = thresholds or DriftThresholds()
    small = min(n_ref, n_cur)
    prefix = ""
    if small < t.min_samples:
        prefix = (f"too few values to test (reference {n_ref}, current {n_cur}; need "
                  f">= {t.min_samples}), so not flagged; otherwise: ")
    sparse = small < 5 * max(n_distinct, 1)
    if kind is ColumnKind.NUMERIC and n_distinct > t.max_numeric_levels:
        return Method.KS, prefix + (
            f"continuous numeric ({n_distinct} distinct values): the two-sample "
            "Kolmogorov-Smirnov test compares whole distributions (shift, spread, shape) "
            f"without binning; drift when p < {t.alpha:g} and D >= {t.ks_min_statistic:g}")
    what = ("numeric with only " if kind is ColumnKind.NUMERIC else "categorical with ") + (
        f"{n_distinct} distinct values")
    if n_distinct > t.max_chi_square_levels or sparse:
        why = (f"more than {t.max_chi_square_levels} levels" if n_distinct
               > t.max_chi_square_levels else "too few rows per level")
        return Method.JENSEN_SHANNON, prefix + (
            f"{what}: {why} leaves chi-square cells sparse (expected counts < 5), so its "
            "p-value is unreliable; the Jensen-Shannon distance of the level frequencies "
            f"drifts at >= {t.js_threshold:g}")
    return Method.CHI_SQUARE, prefix + (
        f"{what}: chi-square test of homogeneity on the level counts (new levels "
        f"included); drift when p < {t.alpha:g} and Cramér's V >= {t.chi_square_min_effect:g}")


@dataclass(frozen=True, eq=False)
class ColumnSummary:
    """What a drift test needs to remember of one reference column.

    ``sample`` holds raw reference values (sorted): treat a summary as being as
    sensitive as the data it came from.
    """

    name: str
    kind: ColumnKind
    n_rows: int
    n_nulls: int
    n_distinct: int
    edges: FloatArray
    bin_counts: IntArray
    levels: FloatArray
    level_counts: IntArray
    sample: FloatArray
    categories: tuple[str, ...] = ()
    category_counts: IntArray | None = None
    other_count: int = 0

    @property
    def n_values(self) -> int:
        return self.n_rows - self.n_nulls

    @classmethod
    def from_values(
        cls, name: str, values: Values, kind: ColumnKind, *, bins: int = 10,
        sample_size: int | None = DEFAULT_SAMPLE_SIZE,
        max_categories: int = DEFAULT_MAX_CATEGORIES, seed: int = 0,
    ) -> ColumnSummary:
        """Summarise reference ``values``; ``sample_size=None`` keeps every value."""
        empty_f, empty_i = np.empty(0, np.float64), np.empty(0, np.int64)
        if kind is ColumnKind.NUMERIC:
            ordered, missing = finite_sorted(values, name)
            distinct = _distinct_sorted(ordered)
            levels, level_counts = empty_f, empty_i
            if distinct.size <= MAX_STORED_LEVELS:
                levels = distinct
                level_counts = np.diff(np.searchsorted(ordered, distinct, side="left"),
                                       append=ordered.size).astype(np.int64)
            edges = quantile_edges(ordered, bins)
            return cls(name, kind, ordered.size + missing, missing, int(distinct.size), edges,
                       bin_counts(ordered, edges), levels, level_counts,
                       _sample(ordered, sample_size, seed))
        counts, nulls = category_counts(values, name)
        if max_categories < 1:
            raise StatsInputInvalid(f"max_categories must be >= 1, got {max_categories}")
        kept = counts.head(max_categories)
        n_labelled = int(counts["count"].to_numpy().sum())
        other = n_labelled - int(kept["count"].to_numpy().sum())
        total = n_labelled + nulls
        return cls(name, kind, total, nulls, counts.height, empty_f, empty_i, empty_f, empty_i,
                   empty_f, tuple(kept["value"].to_list()),
                   kept["count"].to_numpy().astype(np.int64), other)


def _distinct_sorted(ordered: FloatArray) -> FloatArray:
    if ordered.size == 0:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _sample(ordered: FloatArray, size: int | None, seed: int) -> FloatArray:
    if size is None or ordered.size <= size:
        return ordered.copy()
    if size < 1:
        raise StatsInputInvalid(f"sample_size must be >= 1 or None, got {size}")
    picks = np.random.default_rng(seed).choice(ordered.size, size=size, replace=False)
    return np.sort(ordered[picks])


@dataclass(frozen=True)
class _Counts:
    """Reference and current counts over the same bins, with their chart labels."""

    ref: IntArray
    cur: IntArray
    labels: list[str]
    new_labels: tuple[str, ...]
    new_count: int


def _numeric_counts(summary: ColumnSummary, cur: FloatArray, use_levels: bool) -> _Counts:
    if not use_levels:
        labels = bin_labels(summary.edges)
        return _Counts(summary.bin_counts, bin_counts(cur, summary.edges), labels, (), 0)
    levels = summary.levels
    idx = np.clip(np.searchsorted(levels, cur, side="left"), 0, levels.size - 1)
    known = levels[idx] == cur
    counts = np.bincount(idx[known], minlength=levels.size).astype(np.int64)
    unseen = cur[~known]
    new_values = tuple(f"{v:.6g}" for v in _distinct_sorted(unseen)[:10])
    labels = [f"{v:.6g}" for v in levels]
    if unseen.size == 0:
        return _Counts(summary.level_counts, counts, labels, (), 0)
    return _Counts(np.append(summary.level_counts, 0), np.append(counts, unseen.size),
                   [*labels, "(new values)"], new_values, int(unseen.size))


def _category_counts(summary: ColumnSummary, current: Values) -> tuple[_Counts, int, int]:
    cur_df, cur_nulls = category_counts(current, summary.name)
    ref_df = pl.DataFrame({"value": list(summary.categories),
                           "count": summary.category_counts}, schema={"value": pl.String,
                                                                     "count": pl.Int64})
    ref, cur, labels = aligned_category_counts(ref_df, cur_df)
    unseen = ref == 0
    new_count = int(cur[unseen].sum())
    if summary.other_count > 0:
        # the reference was truncated: labels beyond it cannot be told from "new" ones
        ref = np.append(ref[~unseen], summary.other_count)
        cur = np.append(cur[~unseen], new_count)
        labels = [lab for lab, u in zip(labels, unseen, strict=True) if not u] + [OTHER_LABEL]
        return _Counts(ref, cur, labels, (), 0), cur_nulls, int(cur_df["count"].sum())
    new_labels = tuple(lab for lab, u in zip(labels, unseen, strict=True) if u)
    return (_Counts(ref, cur, labels, new_labels[:20], new_count), cur_nulls,
            int(cur_df["count"].sum()))


def compare_column(
    summary: ColumnSummary, current: Values, *, thresholds: DriftThresholds | None = None,
    method: Method | None = None, method_reason: str | None = None,
) -> ColumnDrift:
    """Test ``current`` values of one column against its reference ``summary``."""
    t = thresholds or DriftThresholds()
    cur_sorted: FloatArray = np.empty(0, np.float64)
    if summary.kind is ColumnKind.NUMERIC:
        cur_sorted, cur_nulls = finite_sorted(current, summary.name)
        n_cur = cur_sorted.size
    else:
        counts, cur_nulls, n_cur = _category_counts(summary, current)
    if n_cur + cur_nulls == 0:
        raise StatsInputInvalid(f"column {summary.name!r}: the current batch has no rows")
    chosen, reason = choose_test(summary.kind, summary.n_values, n_cur, summary.n_distinct, t)
    if method is not None:
        if method is Method.KS and summary.kind is ColumnKind.CATEGORICAL:
            raise StatsInputInvalid(
                f"column {summary.name!r}: KS needs ordered numbers but the column holds labels",
                hint="force chi_square, jensen_shannon or psi for a categorical column",
            )
        chosen, reason = method, method_reason or f"{method.value} forced by the drift policy"
    use_levels = summary.kind is ColumnKind.NUMERIC and summary.levels.size > 0 and (
        chosen is not Method.KS or summary.n_distinct <= t.max_numeric_levels)
    if summary.kind is ColumnKind.NUMERIC:
        if chosen is Method.CHI_SQUARE and summary.levels.size == 0:
            chosen, reason = Method.KS, reason + " (no stored levels: KS used instead)"
        counts = _numeric_counts(summary, cur_sorted, use_levels)
    nulls = _null_drift(summary, cur_nulls, n_cur + cur_nulls, t)
    tested = min(summary.n_values, n_cur) >= t.min_samples
    psi_value = js_value = float("nan")
    if summary.n_values > 0 and n_cur > 0:
        psi_value = psi_from_counts(counts.ref, counts.cur)
        js_value = js_from_counts(counts.ref, counts.cur)
    statistic, p_value, effect, drifted = _decide(chosen, summary, cur_sorted, counts,
                                                  psi_value, js_value, t, tested)
    return ColumnDrift(
        name=summary.name, kind=summary.kind, method=chosen, reason=reason,
        statistic=statistic, p_value=p_value, effect=effect, psi=psi_value,
        jensen_shannon=js_value, distribution_drifted=drifted, nulls=nulls,
        n_reference=summary.n_values, n_current=n_cur, thresholds=t,
        histogram=category_histogram(counts.labels, counts.ref, counts.cur),
        new_categories=counts.new_labels,
        new_category_share=(counts.new_count / n_cur) if n_cur else 0.0, tested=tested,
    )


def _decide(
    method: Method, summary: ColumnSummary, cur_sorted: FloatArray, counts: _Counts,
    psi_value: float, js_value: float, t: DriftThresholds, tested: bool,
) -> tuple[float, float | None, float, bool]:
    """(statistic, p-value, effect, drifted) of ``method``."""
    if not tested:
        return float("nan"), None, float("nan"), False
    if method is Method.KS:
        result = ks_test_sorted(summary.sample, cur_sorted)
        drifted = result.p_value < t.alpha and result.statistic >= t.ks_min_statistic
        return result.statistic, result.p_value, result.statistic, drifted
    if method is Method.CHI_SQUARE:
        result = chi_square_test(counts.ref, counts.cur)
        v = cramers_v(result.statistic, float(counts.ref.sum() + counts.cur.sum()))
        return result.statistic, result.p_value, v, (
            result.p_value < t.alpha and v >= t.chi_square_min_effect)
    if method is Method.JENSEN_SHANNON:
        return js_value, None, js_value, js_value >= t.js_threshold
    return psi_value, None, psi_value, psi_value >= t.psi_threshold


def _null_drift(summary: ColumnSummary, cur_nulls: int, cur_rows: int,
                t: DriftThresholds) -> NullDrift:
    ref_rate = summary.n_nulls / summary.n_rows if summary.n_rows else 0.0
    cur_rate = cur_nulls / cur_rows
    if summary.n_rows == 0:
        return NullDrift(ref_rate, cur_rate, 1.0, False)
    result = null_rate_test(summary.n_nulls, summary.n_rows, cur_nulls, cur_rows)
    drifted = result.p_value < t.alpha and abs(cur_rate - ref_rate) >= t.null_rate_min_delta
    return NullDrift(ref_rate, cur_rate, result.p_value, drifted)


def column_drift(
    name: str, reference: Values, current: Values, kind: ColumnKind, *,
    thresholds: DriftThresholds | None = None, bins: int = 10, method: Method | None = None,
) -> ColumnDrift:
    """Drift of one column from two raw arrays (every reference value kept for KS)."""
    summary = ColumnSummary.from_values(name, reference, kind, bins=bins, sample_size=None)
    return compare_column(summary, current, thresholds=thresholds, method=method)


__all__ = [
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_SAMPLE_SIZE",
    "MAX_STORED_LEVELS",
    "OTHER_LABEL",
    "ColumnSummary",
    "choose_test",
    "column_drift",
    "compare_column",
]
