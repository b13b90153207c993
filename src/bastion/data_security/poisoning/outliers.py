"""Outlier injection: an Isolation Forest fitted on trusted rows, tested at batch level.

The outlier threshold is the trusted ``outlier_contamination`` quantile of the
forest's scores, so by construction about that share of ordinary rows falls
below it.  The batch fails when its share of such rows is binomially
significant (``outlier_alpha``) and at least ``outlier_min_ratio`` times the
contamination; the rows below the threshold are flagged.

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
    model, trusted_scores = ref.derived.outliers(ref)
    threshold = float(np.quantile(trusted_scores, policy.outlier_contamination))
    base = max(float(np.mean(trusted_scores < threshold)), 1e-6)
    scores = model.scores(view.x)
    outliers = np.flatnonzero(scores < threshold)
    k, n = int(outliers.size), view.n
    p_value = float(sps.binomtest(k, n, base, alternative="greater").pvalue) if n else 1.0
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
