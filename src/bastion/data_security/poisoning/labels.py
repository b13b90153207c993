"""Label-side detectors: label-mix shift, risk-conditional label rates, label flips.

All three compare the batch with how a model trained on trusted data behaves on
trusted rows it never saw (the reference's out-of-fold probabilities), so the
model's own error rate is the null, not zero.

- ``label_distribution_shift``: chi-square on the batch's label counts vs trusted,
  plus an effect floor; labels never seen in trusted data fail outright.
- ``risk_conditional_label_rate``: for each class ``c``, the rows the model finds
  least likely to be ``c`` (the trusted ``risk_quantile``) should carry label
  ``c`` about as often as in trusted data; a one-sided binomial test catches
  targeted flips such as high-risk applicants relabelled "good".
- ``label_flips``: a Neyman-Pearson likelihood-ratio statistic against a
  ``flip_design_rate`` share of random flips, residualized per row by its
  expectation under the model and standardized by the trusted out-of-fold null;
  cleanlab's ``find_label_issues`` names the confident label issues.

Example::

    view = BatchView.of(batch, reference)
    checks = [label_flips(view, reference, policy)]
"""

from __future__ import annotations

import numpy as np
from cleanlab.filter import find_label_issues
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning._schema import FloatArray, IntArray
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference
from bastion.data_security.stats.significance import chi_square_test

_CLIP = 1e-3


def label_distribution_shift(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    classes = ref.schema.classes
    unknown = np.flatnonzero(view.y < 0)
    ref_counts = np.bincount(ref.sample_labels, minlength=len(classes))
    cur_counts = np.bincount(view.y[view.y >= 0], minlength=len(classes))
    metrics: dict[str, MetricValue] = {"unknown_or_missing_labels": int(unknown.size)}
    p_value, delta = 1.0, 0.0
    if cur_counts.sum() > 0:
        p_value = chi_square_test(ref_counts, cur_counts).p_value
        shares = cur_counts / cur_counts.sum() - ref_counts / ref_counts.sum()
        delta = float(np.max(np.abs(shares)))
        for c, share in zip(classes, cur_counts / cur_counts.sum(), strict=True):
            metrics[f"share.{c}"] = round(float(share), 6)
    metrics.update(p_value=p_value, max_share_delta=round(delta, 6))
    shifted = p_value < policy.label_shift_alpha and delta >= policy.label_shift_min_delta
    passed = not shifted and unknown.size == 0
    details = (
        [f"{unknown.size} row(s) carry a label missing or unseen in trusted data"]
        if unknown.size
        else []
    )
    if shifted:
        details.append(f"label mix moved by up to {delta:.1%} (p {p_value:.2e})")
    summary = "label mix matches trusted data" if passed else "label mix differs from trusted data"
    return result(
        "label_distribution_shift",
        passed,
        policy.label_blocking,
        summary,
        metrics,
        unknown,
        details,
        policy,
    )


def risk_conditional_label_rate(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    classes = ref.schema.classes
    oof, y_ref = ref.oof_proba, ref.sample_labels
    metrics: dict[str, MetricValue] = {}
    details: list[str] = []
    flagged: list[int] = []
    known = view.known
    for c, name in enumerate(classes):
        cut = float(np.quantile(oof[:, c], policy.risk_quantile))
        trusted_region = oof[:, c] <= cut
        rate = float(np.mean(y_ref[trusted_region] == c)) if trusted_region.any() else 0.0
        region = known[view.proba[known, c] <= cut]
        hits = region[view.y[region] == c]
        n, k = int(region.size), int(hits.size)
        observed = k / n if n else 0.0
        p_value = (
            float(sps.binomtest(k, n, min(max(rate, 1e-6), 1 - 1e-6), alternative="greater").pvalue)
            if n
            else 1.0
        )
        p_adj = min(1.0, p_value * len(classes))
        metrics.update(
            {
                f"{name}.trusted_rate": round(rate, 6),
                f"{name}.batch_rate": round(observed, 6),
                f"{name}.rows_in_region": n,
                f"{name}.p_adjusted": p_adj,
            }
        )
        if p_adj < policy.risk_alpha and observed - rate >= policy.risk_min_delta:
            details.append(
                f"rows the trusted model finds least likely to be {name!r} carry that label "
                f"{observed:.1%} of the time (trusted: {rate:.1%}, adjusted p {p_adj:.2e})"
            )
            flagged.extend(int(i) for i in hits)
    passed = not details
    summary = (
        "labels in high-risk regions match trusted rates"
        if passed
        else "labels in high-risk regions were shifted (targeted relabelling)"
    )
    return result(
        "risk_conditional_label_rate",
        passed,
        policy.label_blocking,
        summary,
        metrics,
        flagged,
        details,
        policy,
    )


def _np_statistic(proba: FloatArray, labels: IntArray, rate: float) -> FloatArray:
    """Per-row log LR of "flipped at ``rate``" vs "as the model says", residualized."""
    k = proba.shape[1]
    p = np.clip(proba, _CLIP, 1.0)

    def term(lab: IntArray) -> FloatArray:
        own = p[np.arange(lab.size), lab]
        others = (p.sum(axis=1) - own) / (k - 1)
        return np.asarray(np.log(1.0 - rate + rate * others / own), dtype=np.float64)

    observed = term(labels)
    expected = sum(proba[:, c] * term(np.full(labels.size, c, dtype=np.int64)) for c in range(k))
    return np.asarray(observed - expected, dtype=np.float64)


def _flip_threshold(oof: FloatArray, y_ref: IntArray, recall: float) -> float:
    # self-confidence a randomly flipped trusted label would get; its `recall` quantile
    k = oof.shape[1]
    flipped = np.concatenate([oof[y_ref != c, c] for c in range(k)])
    return float(np.quantile(flipped, recall)) if flipped.size else 0.0


def label_flips(view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy) -> CheckResult:
    known = view.known
    proba, labels = view.proba[known], view.y[known]
    null = _np_statistic(ref.oof_proba, ref.sample_labels, policy.flip_design_rate)
    mu, sd = float(null.mean()), float(null.std()) or 1e-9
    n = int(known.size)
    stat = _np_statistic(proba, labels, policy.flip_design_rate) if n else np.zeros(0)
    z = (float(stat.mean()) - mu) / (sd / np.sqrt(n)) if n else 0.0
    p_value = float(sps.norm.sf(z))
    issues = _cleanlab_issues(proba, labels, len(ref.schema.classes))
    own = proba[np.arange(n), labels]
    threshold = _flip_threshold(ref.oof_proba, ref.sample_labels, policy.flip_row_recall)
    passed = p_value >= policy.flip_alpha
    flagged = known[issues] if passed else known[issues | (own < threshold)]
    metrics: dict[str, MetricValue] = {
        "z": round(z, 4),
        "p_value": p_value,
        "rows_tested": n,
        "self_confidence_flag_threshold": round(threshold, 6),
    }
    summary = (
        f"label disagreement with the trusted model is at its trusted level (z={z:.2f})"
        if passed
        else f"labels disagree with the trusted model far more than in trusted data "
        f"(z={z:.2f}, p={p_value:.2e}): likely label flips"
    )
    details = (
        []
        if passed
        else [
            f"{int(issues.sum())} confident label issue(s) (cleanlab); "
            f"{flagged.size} row(s) flagged with self-confidence below {threshold:.2f}"
        ]
    )
    return result(
        "label_flips",
        passed,
        policy.flip_blocking,
        summary,
        metrics,
        flagged if not passed else (),
        details,
        policy,
    )


def _cleanlab_issues(proba: FloatArray, labels: IntArray, n_classes: int) -> np.ndarray:
    # cleanlab needs every class present with a few examples; otherwise fall back to
    # "the model gives the given label under 10%" (flags nothing on ordinary rows).
    present = np.bincount(labels, minlength=n_classes)
    if labels.size < 10 or (present < 2).any():
        return np.asarray(proba[np.arange(labels.size), labels] < 0.1, dtype=bool)
    # n_jobs=1: cleanlab otherwise forks a multiprocessing pool, which deadlocks
    # when the caller is a thread of a multi-threaded server (fork copies held locks).
    mask = find_label_issues(labels=labels, pred_probs=proba, n_jobs=1)
    return np.asarray(mask, dtype=bool)


__all__ = ["label_distribution_shift", "label_flips", "risk_conditional_label_rate"]
