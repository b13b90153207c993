"""Outlier injection: an Isolation Forest fitted on trusted rows, tested at batch level.

Split conformal: the forest is fitted on half of the trusted sample and the
threshold is the ``outlier_contamination`` quantile (the k-th smallest) of its
scores on the other half, rows it never saw, so a clean batch row falls below it
with a probability ``U`` that is Beta(k, m - k + 1) distributed over the
calibration sample (m rows).  The batch's count of rows below the threshold is
therefore beta-binomial under the null, not binomial at a known rate: the
threshold's own sampling noise (large on small tables) is in the p-value.  The
batch fails when that p-value is below ``outlier_alpha`` and its share is at
least ``outlier_min_ratio`` times the expected share ``k / (m + 1)``; the rows
below the threshold are flagged.

Both conditions only grow with the batch's count, so the batch fails exactly
when its count reaches a critical count ``c``.  A large batch is first screened:
a uniform subsample of ``_SCREEN_ROWS`` rows, drawn from the operating system's
entropy (a batch cannot be arranged around it), is scored, and when its count
is so low that a batch holding ``c`` such rows would give it with probability at
most ``_SCREEN_MISS`` (hypergeometric lower tail) the batch passes without
scoring every row.  Otherwise every row is scored and decided as above.  So a
failing batch is always decided (and its rows named) on every row, a passing
one can only pass more rarely than on the full count, and a batch the full count
fails passes the screen with probability at most ``_SCREEN_MISS``.

Example::

    check = injected_outliers(BatchView.of(batch, reference), reference, policy)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning._models import OutlierModel
from bastion.data_security.poisoning._schema import IntArray
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference

#: rows scored by the screen of a large batch
_SCREEN_ROWS = 1 << 16
#: batches at least this large are screened first (smaller ones: every row is scored)
_SCREEN_MIN_ROWS = 4 * _SCREEN_ROWS
#: largest chance that the screen passes a batch whose full count fails
_SCREEN_MISS = 1e-9


@dataclass(frozen=True)
class _Null:
    """The beta-binomial null of a batch's count below the threshold and the decision on it."""

    rank: int
    m: int
    alpha: float
    min_share: float

    @property
    def base(self) -> float:
        return self.rank / (self.m + 1)

    def p_value(self, k: int, n: int) -> float:
        # P(count >= k) when each clean row falls below with U ~ Beta(rank, m - rank + 1)
        return float(sps.betabinom.sf(k - 1, n, self.rank, self.m - self.rank + 1)) if n else 1.0

    def fails(self, k: int, n: int) -> bool:
        share = k / n if n else 0.0
        return self.p_value(k, n) < self.alpha and share >= self.min_share

    def critical(self, n: int) -> int:
        """The smallest count of ``n`` rows that fails (``n + 1`` when none does)."""
        if not self.fails(n, n):
            return n + 1
        lo, hi = 0, n  # fails(hi) holds; both conditions are monotone in the count
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.fails(mid, n) else (mid + 1, hi)
        return lo


def _screen(
    view: BatchView, model: OutlierModel, threshold: float, null: _Null
) -> tuple[int, float] | None:
    """(count, miss chance) of the subsample when it clears the batch; None: score every row."""
    n = view.n
    if n < _SCREEN_MIN_ROWS:
        return None
    rows = np.sort(np.random.default_rng().choice(n, _SCREEN_ROWS, replace=False))
    k = int(np.count_nonzero(model.scores(view.x[rows]) < threshold))
    miss = float(sps.hypergeom.cdf(k, n, null.critical(n), _SCREEN_ROWS))
    return (k, miss) if miss <= _SCREEN_MISS else None


def injected_outliers(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    model, calibration = ref.derived.outliers(ref)
    m = calibration.size
    rank = max(1, int(np.ceil(policy.outlier_contamination * m)))
    threshold = float(np.sort(calibration)[rank - 1])
    alpha = policy.level(policy.outlier_alpha)
    null = _Null(rank, m, alpha, policy.outlier_min_ratio * rank / (m + 1))
    base = null.base
    screened = _screen(view, model, threshold, null)
    if screened is not None:
        k, n = screened[0], _SCREEN_ROWS
        outliers: IntArray = np.zeros(0, dtype=np.int64)
    else:
        outliers = np.flatnonzero(model.scores(view.x) < threshold)
        k, n = int(outliers.size), view.n
    p_value = null.p_value(k, n)
    share = k / n if n else 0.0
    metrics: dict[str, MetricValue] = {
        "outliers": k,
        "outlier_share": round(share, 6),
        "trusted_share": round(base, 6),
        "p_value": p_value,
        "score_threshold": round(threshold, 6),
        "rows_scored": n,
    }
    if screened is not None:
        metrics["screen_miss_chance"] = screened[1]
    passed = screened is not None or not null.fails(k, n)
    scope = f" in a random {n:,} of {view.n:,} rows" if screened is not None else ""
    summary = (
        f"outlier share {share:.1%}{scope} is ordinary (trusted {base:.1%})"
        if passed
        else f"outlier share {share:.1%} far above trusted {base:.1%} (p={p_value:.2e})"
    )
    return result(
        "injected_outliers",
        passed,
        policy.outlier_blocking,
        summary,
        metrics,
        outliers if not passed else (),
        [],
        policy,
        Decision("outlier_share", share, p_value, alpha, null.min_share),
    )


__all__ = ["injected_outliers"]
