"""Distribution distances: PSI and Jensen-Shannon, over counts or raw values.

PSI (population stability index) over bins ``i`` with reference shares ``r_i``
and current shares ``c_i`` is ``sum((c_i - r_i) * ln(c_i / r_i))``; a share of
zero is replaced by ``eps`` (default 1e-4) so an empty bin costs a bounded
amount instead of infinity.  Each term is >= 0, so PSI is >= 0 and is 0 exactly
when the binned shares match.  Numeric bins are the reference's quantiles, so
each reference bin holds about the same share; the outer bins are open so
current values beyond the reference range still land somewhere.

Jensen-Shannon is the distance (square root of the divergence, base 2), in
[0, 1], as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

Example::

    import numpy as np
    from bastion.data_security.stats import ColumnKind, psi, psi_from_counts
    assert psi_from_counts([50, 50], [50, 50]) == 0.0
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=5000), rng.normal(1.0, size=5000)
    assert psi(ref, cur, kind=ColumnKind.NUMERIC) > 0.2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from bastion.data_security.errors import StatsInputInvalid
from bastion.data_security.stats.values import ColumnKind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: what the raw-value functions accept for one column
Values = npt.NDArray[np.generic] | pl.Series | Sequence[float | int | str | bool | None]

DEFAULT_EPS = 1e-4


def as_counts(counts: npt.ArrayLike, what: str) -> FloatArray:
    """``counts`` as a 1-D float array of finite, non-negative numbers."""
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1:
        raise StatsInputInvalid(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr < 0)):
        raise StatsInputInvalid(f"{what} must be finite and non-negative")
    return arr


def _paired(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    ref = as_counts(ref_counts, "reference counts")
    cur = as_counts(cur_counts, "current counts")
    if ref.shape != cur.shape:
        raise StatsInputInvalid(
            f"reference and current counts differ in length ({ref.size} vs {cur.size})",
            hint="both must count the same bins / categories in the same order",
        )
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise StatsInputInvalid("reference and current counts must each have a positive total")
    return ref, cur


def psi_from_counts(
    ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike, *, eps: float = DEFAULT_EPS
) -> float:
    """PSI between two count (or share) vectors over the same bins."""
    ref, cur = _paired(ref_counts, cur_counts)
    r = np.maximum(ref / ref.sum(), eps)
    c = np.maximum(cur / cur.sum(), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def js_from_counts(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2) between two count vectors over the same bins."""
    ref, cur = _paired(ref_counts, cur_counts)
    p, q = ref / ref.sum(), cur / cur.sum()
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = 0.5 * float(np.sum(kl_p) + np.sum(kl_q))
    return float(np.sqrt(min(max(divergence, 0.0), 1.0)))


def quantile_edges(sorted_values: FloatArray, bins: int) -> FloatArray:
    """The distinct inner quantile edges cutting ``sorted_values`` into ``bins`` bins."""
    if bins < 2:
        raise StatsInputInvalid(f"bins must be >= 2, got {bins}")
    if sorted_values.size == 0:
        return np.empty(0, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    # "lower" picks observed values, so ties (point masses) collapse to one edge
    edges = np.quantile(sorted_values, probs, method="lower")
    edges = np.unique(edges)
    # an edge equal to the minimum would leave bin 0 empty by construction
    inner: FloatArray = edges[edges > sorted_values[0]].astype(np.float64)
    return inner


def bin_counts(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts of ``sorted_values`` in the left-closed bins ``(-inf, e1), [e1, e2) … [ek, inf)``."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    bounds = np.concatenate(([0], cuts, [sorted_values.size]))
    return np.diff(bounds).astype(np.int64)


def finite_sorted(values: Values, what: str = "values") -> tuple[FloatArray, int]:
    """Sorted finite numbers of ``values`` and the count of missing ones (null, NaN, ±inf)."""
    series = values if isinstance(values, pl.Series) else pl.Series(what, values, strict=False)
    if series.dtype == pl.Boolean:
        series = series.cast(pl.Int8)
    if not (series.dtype.is_numeric() or series.dtype.is_temporal() or series.dtype == pl.Null):
        raise StatsInputInvalid(
            f"{what}: expected numbers, got dtype {series.dtype}",
            hint="pass kind=ColumnKind.CATEGORICAL for labels",
        )
    # one unit for every batch: milliseconds in one file and nanoseconds in the next is
    # not drift (the physical value of an aware datetime is UTC, whatever its zone)
    if isinstance(series.dtype, pl.Datetime):
        series = series.cast(pl.Datetime("us", series.dtype.time_zone))
    elif isinstance(series.dtype, pl.Duration):
        series = series.cast(pl.Duration("us"))
    if series.dtype.is_temporal():
        series = series.to_physical()
    arr = series.cast(pl.Float64).to_numpy()
    finite = arr[np.isfinite(arr)]
    finite.sort()
    return finite, int(arr.size - finite.size)


def category_counts(values: Values, what: str = "values") -> tuple[pl.DataFrame, int]:
    """Per-label counts (columns ``value``, ``count``; most frequent first) and the null count."""
    series = values if isinstance(values, pl.Series) else pl.Series(what, values, strict=False)
    series = series.cast(pl.String).rename("value")
    nulls = series.null_count()
    counts = (
        series.drop_nulls()
        .value_counts(name="count")
        .with_columns(pl.col("count").cast(pl.Int64))
        .sort(["count", "value"], descending=[True, False])
    )
    return counts, nulls


def aligned_category_counts(
    ref: pl.DataFrame, cur: pl.DataFrame
) -> tuple[IntArray, IntArray, list[str]]:
    """Reference and current counts over the union of labels (reference labels first)."""
    joined = ref.join(cur, on="value", how="full", suffix="_cur", coalesce=True).with_columns(
        pl.col("count").fill_null(0), pl.col("count_cur").fill_null(0)
    )
    joined = joined.sort(["count", "count_cur", "value"], descending=[True, True, False])
    return (
        joined["count"].to_numpy().astype(np.int64),
        joined["count_cur"].to_numpy().astype(np.int64),
        joined["value"].to_list(),
    )


def _binned(reference: Values, current: Values, bins: int, kind: ColumnKind) -> tuple[
    IntArray, IntArray
]:
    if kind is ColumnKind.NUMERIC:
        ref, _ = finite_sorted(reference, "reference")
        cur, _ = finite_sorted(current, "current")
        edges = quantile_edges(ref, bins)
        return bin_counts(ref, edges), bin_counts(cur, edges)
    ref_counts, _ = category_counts(reference, "reference")
    cur_counts, _ = category_counts(current, "current")
    r, c, _labels = aligned_category_counts(ref_counts, cur_counts)
    return r, c


def psi(
    reference: Values, current: Values, *, bins: int = 10, kind: ColumnKind,
    eps: float = DEFAULT_EPS,
) -> float:
    """PSI of ``current`` against ``reference`` (quantile bins of the reference for numbers,
    one bin per label for categories; nulls ignored)."""
    ref_counts, cur_counts = _binned(reference, current, bins, kind)
    return psi_from_counts(ref_counts, cur_counts, eps=eps)


def jensen_shannon(
    reference: Values, current: Values, *, bins: int = 10, kind: ColumnKind
) -> float:
    """Jensen-Shannon distance of ``current`` against ``reference`` over the same bins as PSI."""
    ref_counts, cur_counts = _binned(reference, current, bins, kind)
    return js_from_counts(ref_counts, cur_counts)


__all__ = [
    "DEFAULT_EPS",
    "FloatArray",
    "IntArray",
    "Values",
    "aligned_category_counts",
    "as_counts",
    "bin_counts",
    "category_counts",
    "finite_sorted",
    "jensen_shannon",
    "js_from_counts",
    "psi",
    "psi_from_counts",
    "quantile_edges",
]
