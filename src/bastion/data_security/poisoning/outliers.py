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

Example::

    check = injected_outliers(BatchView.of(batch, reference), reference, policy)
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference


def injected_outliers(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    model, calibration = ref.derived.outliers(ref)
    m = calibration.size
    rank = max(1, int(np.ceil(policy.outlier_contamination * m)))
    threshold = float(np.sort(calibration)[rank - 1])
    base = rank / (m + 1)
    scores = model.scores(view.x)
    outliers = np.flatnonzero(scores < threshold)
    k, n = int(outliers.size), view.n
    # P(count >= k) when each clean row falls below with U ~ Beta(rank, m - rank + 1)
    p_value = float(sps.betabinom.sf(k - 1, n, rank, m - rank + 1)) if n else 1.0
    share = k / n if n else 0.0
    metrics: dict[str, MetricValue] = {
        "outliers": k,
        "outlier_share": round(share, 6),
        "trusted_share": round(base, 6),
        "p_value": p_value,
        "score_threshold": round(threshold, 6),
    }
    alpha = policy.level(policy.outlier_alpha)
    passed = not (p_value < alpha and share >= policy.outlier_min_ratio * base)
    summary = (
        f"outlier share {share:.1%} is ordinary (trusted {base:.1%})"
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
        Decision("outlier_share", share, p_value, alpha, policy.outlier_min_ratio * base),
    )


__all__ = ["injected_outliers"]
