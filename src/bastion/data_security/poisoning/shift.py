"""Per-feature distribution shift of a batch (and of recent + batch) vs the pinned reference.

Numeric features: two-sample KS test plus PSI over the reference's quantile bins
(missing values get their own bin).  Categorical features: chi-square test of
homogeneity plus PSI over the trusted categories, "other" and missing.  A
feature drifts when its Bonferroni-corrected p-value is below ``shift_alpha``
AND its PSI reaches the policy floor; the test statistics come from
:mod:`bastion.data_security.stats`.  The cumulative variant tests the recent
window plus the batch, so a slow drift spread over many small batches shows.

Example::

    check = feature_shift(batch, reference, policy, name="feature_shift")
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._batch import result
from bastion.data_security.poisoning._schema import FeatureKind, FeatureSpec, IntArray
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference
from bastion.data_security.stats.distances import bin_counts, psi_from_counts, quantile_edges
from bastion.data_security.stats.significance import chi_square_test, ks_test_sorted

#: a bin holding this many times its reference share marks its rows as the drifted ones
_OVER_SHARE = 1.5
_OTHER = "\x00other"


def _numeric(ref_col: pl.Series, cur_col: pl.Series, bins: int) -> tuple[float, float, IntArray]:
    ref = np.sort(ref_col.cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy())
    cur_all = cur_col.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
    cur = np.sort(cur_all[~np.isnan(cur_all)])
    p_value = ks_test_sorted(ref, cur).p_value if ref.size and cur.size else 1.0
    edges = quantile_edges(ref, bins)
    ref_counts = np.append(bin_counts(ref, edges), ref_col.len() - ref.size)
    cur_counts = np.append(bin_counts(cur, edges), cur_all.size - cur.size)
    # bin of every current row (missing = last bin) so the over-represented rows can be named
    row_bins = np.where(
        np.isnan(cur_all),
        edges.size + 1,
        np.searchsorted(edges, np.nan_to_num(cur_all), side="right"),
    )
    over = _over_bins(ref_counts, cur_counts)
    return psi_from_counts(ref_counts, cur_counts), p_value, np.flatnonzero(np.isin(row_bins, over))


def _categorical(
    spec: FeatureSpec, ref_col: pl.Series, cur_col: pl.Series
) -> tuple[float, float, IntArray]:
    levels = [*spec.categories, _OTHER, None]

    def codes(col: pl.Series) -> IntArray:
        # category i -> i, any other value -> "other", missing -> the last level
        text = col.cast(pl.String)
        known = text.replace_strict(
            list(spec.categories),
            list(range(len(spec.categories))),
            default=len(spec.categories),
            return_dtype=pl.Int64,
        )
        missing = len(spec.categories) + 1
        return np.where(text.is_null().to_numpy(), missing, known.to_numpy()).astype(np.int64)

    ref_codes, cur_codes = codes(ref_col), codes(cur_col)
    ref_counts = np.bincount(ref_codes, minlength=len(levels))
    cur_counts = np.bincount(cur_codes, minlength=len(levels))
    p_value = chi_square_test(ref_counts, cur_counts).p_value
    over = _over_bins(ref_counts, cur_counts)
    rows = np.flatnonzero(np.isin(cur_codes, over))
    return psi_from_counts(ref_counts, cur_counts), p_value, rows


def _over_bins(ref_counts: IntArray, cur_counts: IntArray) -> IntArray:
    ref_share = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * ref_counts.size)
    cur_share = cur_counts / max(int(cur_counts.sum()), 1)
    return np.flatnonzero(cur_share >= _OVER_SHARE * ref_share)


def feature_shift(
    current: pl.DataFrame,
    ref: PoisoningReference,
    policy: PoisoningPolicy,
    *,
    name: str,
    batch_rows: int | None = None,
    min_psi: float | None = None,
) -> CheckResult:
    """Test every feature of ``current``; only its last ``batch_rows`` rows are flagged.

    For the cumulative test ``current`` is recent + batch and ``batch_rows`` the
    batch's height, so flagged indices are batch row numbers.
    """
    n_batch = current.height if batch_rows is None else batch_rows
    offset = current.height - n_batch
    floor = policy.shift_min_psi if min_psi is None else min_psi
    n_tests = len(ref.schema.features)
    metrics: dict[str, MetricValue] = {"rows_tested": current.height, "features": n_tests}
    details: list[str] = []
    flagged: set[int] = set()
    drifted = 0
    alpha = policy.level(policy.shift_alpha)
    best_p, best_psi = 1.0, 0.0
    for spec in ref.schema.features:
        ref_col, cur_col = ref.sample.get_column(spec.name), current.get_column(spec.name)
        if spec.kind is FeatureKind.NUMERIC:
            psi_value, p_value, rows = _numeric(ref_col, cur_col, policy.shift_bins)
        else:
            psi_value, p_value, rows = _categorical(spec, ref_col, cur_col)
        p_adj = min(1.0, p_value * n_tests)
        metrics[f"{spec.name}.psi"] = round(psi_value, 6)
        metrics[f"{spec.name}.p_adjusted"] = p_adj
        if p_adj < best_p:
            best_p, best_psi = p_adj, psi_value
        if p_adj < alpha and psi_value >= floor:
            drifted += 1
            details.append(f"{spec.name}: PSI {psi_value:.3f}, adjusted p {p_adj:.2e}")
            flagged.update(int(r) - offset for r in rows if r >= offset)
    metrics["drifted_features"] = drifted
    passed = drifted == 0
    scope = "recent + batch" if offset else "batch"
    summary = (
        f"no feature of the {scope} drifted from the pinned reference"
        if passed
        else f"{drifted} feature(s) of the {scope} drifted from the pinned reference"
    )
    return result(
        name,
        passed,
        policy.shift_blocking,
        summary,
        metrics,
        sorted(flagged) if not passed else (),
        details,
        policy,
        Decision("psi_of_most_significant_feature", best_psi, best_p, alpha, floor),
    )


__all__ = ["feature_shift"]
