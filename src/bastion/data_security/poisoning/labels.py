"""Label-side detectors: label-mix shift, risk-conditional label rates, label flips.

All three compare the batch with how a model trained on trusted data behaves on
trusted rows it never saw (the reference's out-of-fold probabilities), so the
model's own error rate is the null, not zero.  A batch row is scored by the
same out-of-fold models (``FoldModels``: row ``i`` by fold ``i mod k``), so
batch and trusted values come from one procedure, and each test is two-sample:
the trusted side is a sample too, and small trusted sets widen the null.

- ``label_distribution_shift``: the batch's label counts vs trusted (Fisher's
  exact test for two classes, else chi-square), plus an effect floor; labels
  never seen in trusted data fail outright.
- ``risk_conditional_label_rate``: for each class ``c``, the rows the model finds
  least likely to be ``c`` (the trusted ``risk_quantile``) should carry label
  ``c`` about as often as in trusted data; a one-sided Fisher test catches
  targeted flips such as high-risk applicants relabelled "good".
- ``label_flips``: per row, the model's probability blended with the labels of
  the nearest trusted rows (``neighbours``); Neyman-Pearson likelihood-ratio
  statistics against a ``flip_design_rate`` share of flips (any direction, and
  into each class: targeted relabelling moves one class), residualized per row
  by their expectation, plus a count of near-impossible labels, tested jointly
  by a permutation null against each fold model's held-out trusted rows; as
  many rows are named as the moments say moved, least likely under the trusted
  data first.  A shifted label mix names the grown class's excess rows the same
  way.

Example::

    view = BatchView.of(batch, reference)
    checks = [label_flips(view, reference, policy)]
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning._schema import FloatArray, IntArray
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference
from bastion.data_security.stats.significance import chi_square_test

_CLIP = 0.02


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
        p_value = _mix_p_value(ref_counts, cur_counts)
        shares = cur_counts / cur_counts.sum() - ref_counts / ref_counts.sum()
        delta = float(np.max(np.abs(shares)))
        for c, share in zip(classes, cur_counts / cur_counts.sum(), strict=True):
            metrics[f"share.{c}"] = round(float(share), 6)
    metrics.update(p_value=p_value, max_share_delta=round(delta, 6))
    alpha = policy.level(policy.label_shift_alpha)
    shifted = p_value < alpha and delta >= policy.label_shift_min_delta
    passed = not shifted and unknown.size == 0
    excess_rows = _excess_label_rows(view, ref_counts, cur_counts) if shifted else np.zeros(0)
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
        np.union1d(unknown, excess_rows),
        details,
        policy,
        Decision("max_share_delta", delta, p_value, alpha, policy.label_shift_min_delta),
    )


def _mix_p_value(ref_counts: IntArray, cur_counts: IntArray) -> float:
    """Two-sample test of the label mix: Fisher's exact test for two classes, else chi-square.

    Both sides are samples (the trusted counts' own noise is in the null); with two
    classes the exact test holds on small tables where the chi-square tail does not.
    """
    if ref_counts.size == 2:
        table = [[int(ref_counts[0]), int(ref_counts[1])], [int(cur_counts[0]), int(cur_counts[1])]]
        return float(sps.fisher_exact(table).pvalue)
    return chi_square_test(ref_counts, cur_counts).p_value


def _excess_label_rows(view: BatchView, ref_counts: IntArray, cur_counts: IntArray) -> IntArray:
    """The rows a shifted label mix added: the grown class's excess, least likely first.

    The class whose share grew most has ``count - n * trusted share`` more rows
    than trusted data predicts; those of its rows the trusted model finds least
    likely to carry it are named (flipped rows; for a swap of whole real rows the
    names are the best guess the labels allow).
    """
    n = int(cur_counts.sum())
    shares = cur_counts / max(n, 1) - ref_counts / max(int(ref_counts.sum()), 1)
    c = int(np.argmax(shares))
    excess = round(float(cur_counts[c]) - n * ref_counts[c] / max(int(ref_counts.sum()), 1))
    rows = np.flatnonzero(view.y == c)
    if excess < 1 or rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = rows[np.argsort(view.proba[rows, c], kind="stable")]
    return np.asarray(order[:excess], dtype=np.int64)


def risk_conditional_label_rate(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    classes = ref.schema.classes
    oof, y_ref = ref.oof_proba, ref.sample_labels
    metrics: dict[str, MetricValue] = {}
    details: list[str] = []
    flagged: list[int] = []
    known = view.known
    alpha = policy.level(policy.risk_alpha)
    best_p, best_delta = 1.0, 0.0
    for c, name in enumerate(classes):
        cut = float(np.quantile(oof[:, c], policy.risk_quantile))
        trusted_region = oof[:, c] <= cut
        m = int(trusted_region.sum())
        m_hits = int((y_ref[trusted_region] == c).sum())
        rate = m_hits / m if m else 0.0
        region = known[view.proba[known, c] <= cut]
        hits = region[view.y[region] == c]
        n, k = int(region.size), int(hits.size)
        observed = k / n if n else 0.0
        # two-sample (Fisher, one-sided): the trusted rate is itself estimated from m rows
        table = [[k, n - k], [m_hits, m - m_hits]]
        p_value = float(sps.fisher_exact(table, alternative="greater").pvalue) if n and m else 1.0
        p_adj = min(1.0, p_value * len(classes))
        metrics.update(
            {
                f"{name}.trusted_rate": round(rate, 6),
                f"{name}.batch_rate": round(observed, 6),
                f"{name}.rows_in_region": n,
                f"{name}.p_adjusted": p_adj,
            }
        )
        if p_adj < best_p:
            best_p, best_delta = p_adj, observed - rate
        if p_adj < alpha and observed - rate >= policy.risk_min_delta:
            details.append(
                f"rows the trusted model finds least likely to be {name!r} carry that label "
                f"{observed:.1%} of the time (trusted: {rate:.1%}, adjusted p {p_adj:.2e})"
            )
            # name the excess over the trusted rate, least likely to carry c first
            excess = int(np.clip(round(k - n * rate), 1, hits.size))
            flagged.extend(int(i) for i in hits[np.argsort(view.proba[hits, c])][:excess])
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
        Decision("risk_region_rate_delta", best_delta, best_p, alpha, policy.risk_min_delta),
    )


def _terms(proba: FloatArray, rate: float) -> FloatArray:
    """Per row and class c: log LR of "label c was imposed at ``rate``" vs "as predicted"."""
    k = proba.shape[1]
    p = np.clip(proba, _CLIP, 1.0)
    others = (p.sum(axis=1, keepdims=True) - p) / (k - 1)
    return np.asarray(np.log(1.0 - rate + rate * others / p), dtype=np.float64)


def _row_values(proba: FloatArray, labels: IntArray, rate: float) -> FloatArray:
    """Rows x (1 + classes): the residualized flip evidence, overall and into each class.

    Column 0 is the evidence that the row's label was flipped at all, column
    1 + c that label c was imposed; each minus its expectation when the label
    is drawn from ``proba`` (so a calibrated model gives mean zero).
    """
    t = _terms(proba, rate)
    n, k = proba.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    per_class = (onehot - proba) * t
    return np.column_stack([per_class.sum(axis=1), per_class])


#: pooled fold sizes x draws up to this are permuted exactly; beyond, resampled (corrected)
_EXACT_PERMUTATION_CELLS = 3_200_000


def _subset_sums(
    centred: FloatArray, size: int, draws: int, rng: np.random.Generator
) -> tuple[FloatArray, float]:
    """Sums of ``draws`` random ``size``-row subsets of ``centred`` and the factor making them a
    permutation's: drawn without replacement when affordable (exact: a few extreme rows
    keep their weight), else with replacement scaled by the finite-population correction."""
    pool, cols = centred.shape
    total = np.zeros((draws, cols))
    if pool * draws <= _EXACT_PERMUTATION_CELLS:
        chunk = max(1, 2_000_000 // pool)
        for lo in range(0, draws, chunk):
            keys = rng.random((min(chunk, draws - lo), pool))
            # size < pool: the pool holds the batch's rows and at least two trusted ones
            idx = np.argpartition(keys, size - 1, axis=1)[:, :size]
            total[lo : lo + keys.shape[0]] = centred[idx].sum(axis=1)
        return total, 1.0
    for lo in range(0, size, 256):  # bounded memory: accumulate sums over row chunks
        idx = rng.integers(0, pool, size=(draws, min(256, size - lo)))
        total += centred[idx].sum(axis=1)
    return total, float(np.sqrt((pool - size) / max(pool - 1, 1)))


def _two_sample_p_value(
    null: FloatArray,
    strata: tuple[IntArray, ...],
    observed: FloatArray,
    fold: IntArray,
    draws: int,
) -> tuple[float, FloatArray]:
    """P(max standardized batch-minus-trusted difference >= observed): a permutation null.

    Batch rows scored by fold model ``k`` (``fold == k``) are compared with the
    trusted rows that model never saw (``strata[k]``), which it scored the same
    way: given the model, both are draws from the trusted population, so their
    values are exchangeable and a permutation test is exact.  Per column (any
    direction, into each class) the statistic is the fold-weighted difference
    of means over its two-sample standard deviation (the trusted mean's own
    noise counts: small trusted sets widen the null instead of alarming).  The
    null permutes each fold's pooled batch + held-out values ``draws`` times,
    so a heavy tail -- a few genuine rows the model finds near impossible -- is
    in the null whether it landed in the batch or in the trusted rows.  Large
    batches use the normal approximation with Bonferroni.
    """
    n, cols = observed.shape
    diff, var = np.zeros(cols), np.zeros(cols)
    parts: list[tuple[FloatArray, int, float]] = []
    for k, rows in enumerate(strata):
        batch = observed[fold == k]
        nk, mk = batch.shape[0], rows.size
        if nk == 0 or mk < 2:
            continue
        calib = null[rows]
        pooled = np.vstack([batch, calib])
        w = nk / n
        diff += w * (batch.mean(axis=0) - calib.mean(axis=0))
        var += w**2 * pooled.var(axis=0) * (1.0 / nk + 1.0 / mk)
        # permuted: batch mean - rest mean = (subset mean - pooled mean) * (1 + nk / mk)
        parts.append((pooled - pooled.mean(axis=0), nk, w * (1.0 + nk / mk)))
    sd = np.sqrt(var) + 1e-12
    z = diff / sd
    if not parts:
        return 1.0, z
    if n * draws > 40_000_000:
        return min(1.0, float(sps.norm.sf(z.max())) * z.size), z
    rng = np.random.default_rng(n)
    boot = np.zeros((draws, cols))
    for centred, nk, scale in parts:
        sums, correction = _subset_sums(centred, nk, draws, rng)
        boot += scale * correction * sums / nk
    exceed = int(((boot / sd).max(axis=1) >= z.max()).sum())
    return (exceed + 1) / (draws + 1), z


#: own-label probabilities below which a row's label counts as "unlikely"
_TAIL_CUTS = (0.05,)


def _with_tail_counts(
    observed: FloatArray, own_batch: FloatArray, null: FloatArray, own_null: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Add one indicator column per cut: the row's own-label probability is below it.

    The mean of an indicator is a count of unlikely labels: when a few genuine
    rows already look near impossible (a label almost determined by the
    features), a count of them is a sharper statistic than a mean of
    log-ratios -- Fisher's exact test inside the joint permutation null.
    """
    batch_cols = [(own_batch < c).astype(np.float64) for c in _TAIL_CUTS]
    null_cols = [(own_null < c).astype(np.float64) for c in _TAIL_CUTS]
    return np.column_stack([observed, *batch_cols]), np.column_stack([null, *null_cols])


def _excess_flips(
    proba: FloatArray, labels: IntArray, null: FloatArray, null_y: IntArray, which: int
) -> float:
    """How many labels moved, by moments: observed minus expected, calibrated on trusted rows.

    Into class c (``which = 1 + c``): rows labelled c minus the model's expected
    count of c, less the same excess on trusted rows (residual miscalibration).
    Any direction (``which = 0``): the excess disagreement with the model over
    its trusted level, divided by the disagreement one flip adds on average.
    """
    n = labels.size
    if which > 0:
        c = which - 1
        bias = float(np.mean((null_y == c) - null[:, c]))
        return float((labels == c).sum() - proba[:, c].sum() - n * bias)
    own = proba[np.arange(n), labels]
    trusted_own = null[np.arange(null_y.size), null_y]
    per_flip = max(float(np.mean(2 * trusted_own - 1)), 0.1)
    return float((np.mean(trusted_own) - own.mean()) * n / per_flip)


#: a direction (flips into one class) counts as active when its statistic reaches this z
_ACTIVE_Z = 2.5


def _rows_to_name(
    proba: FloatArray,
    labels: IntArray,
    null: FloatArray,
    null_y: IntArray,
    z: FloatArray,
    policy: PoisoningPolicy,
) -> tuple[IntArray, int, float]:
    """(rows to name, direction reported, estimated flip rate among its candidates).

    ``z`` holds the standardized flip statistics: any direction, then into each
    class.  Targeted relabelling moves labels into one class: the rows named are
    as many of that class's rows as its count grew (observed minus expected,
    calibrated on trusted rows), least likely under the trusted data first.
    When flips go both ways (random flips: two directional statistics reach
    ``_ACTIVE_Z``) the class counts cancel, so the direction-free estimate of how
    many labels moved is shared among the active classes, each class's net growth
    first.  When the strongest statistic points into a class whose count did not
    grow, the direction-free estimate names rows in any class.  Rows the trusted
    data finds far more likely flipped than not are always named.
    """
    n = labels.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0, 0.0
    own = proba[np.arange(n), labels]
    which = int(np.argmax(z))
    growth = [_excess_flips(proba, labels, null, null_y, 1 + c) for c in range(proba.shape[1])]
    active = [c for c in range(proba.shape[1]) if z[1 + c] >= _ACTIVE_Z]
    if which > 0 and growth[which - 1] < 1.0:
        which = 0
    counts: dict[int, float]
    if which == 0:
        counts = {-1: _excess_flips(proba, labels, null, null_y, 0)}
    elif len(active) >= 2:
        net = {c: max(growth[c], 0.0) for c in active}
        total = max(_excess_flips(proba, labels, null, null_y, 0), sum(net.values()))
        share = (total - sum(net.values())) / len(active)
        counts = {c: net[c] + share for c in active}
        which = 0
    else:
        counts = {which - 1: growth[which - 1]}
    sure_below = policy.flip_row_posterior * policy.flip_design_rate
    named: list[IntArray] = []
    expected_total, candidates_total = 0, 0
    for c, count in counts.items():
        candidates = np.arange(n) if c < 0 else np.flatnonzero(labels == c)
        expected = int(np.clip(round(count), 0, candidates.size))
        order = candidates[np.argsort(own[candidates], kind="stable")]
        sure = int((own[candidates] < sure_below).sum())
        named.append(order[: max(expected, sure)])
        expected_total += expected
        candidates_total += candidates.size
    rows = np.unique(np.concatenate(named)).astype(np.int64)
    return rows, which, expected_total / max(candidates_total, 1)


def label_flips(view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy) -> CheckResult:
    known = view.known
    n = int(known.size)
    classes = ref.schema.classes
    blend = ref.derived.blend(ref)
    folds = ref.derived.label_model(ref)
    fold = folds.fold_of_rows(view.n)[known]
    proba = blend.batch_proba(view.x[known], view.proba[known], fold)
    labels = view.y[known]
    null_p = blend.null_proba(n, ref.oof_proba)
    null = _row_values(null_p, ref.sample_labels, policy.flip_design_rate)
    alpha = policy.level(policy.flip_alpha)
    if n:
        observed = _row_values(proba, labels, policy.flip_design_rate)
        own_batch = proba[np.arange(n), labels]
        own_null = null_p[np.arange(null_p.shape[0]), ref.sample_labels]
        observed, with_counts = _with_tail_counts(observed, own_batch, null, own_null)
        p_value, z_all = _two_sample_p_value(
            with_counts, folds.held_out, observed, fold, policy.flip_bootstrap
        )
        z = z_all[: 1 + len(classes)]
        tail_z = float(z_all[1 + len(classes) :].max())
    else:
        p_value, z, tail_z = 1.0, np.zeros(1 + len(classes)), 0.0
    passed = p_value >= alpha
    named, which, rate = _rows_to_name(proba, labels, null_p, ref.sample_labels, z, policy)
    direction = "any" if which == 0 else classes[which - 1]
    candidates = np.arange(n) if which == 0 else np.flatnonzero(labels == which - 1)
    flagged = known[named] if not passed else np.zeros(0, dtype=np.int64)
    metrics: dict[str, MetricValue] = {
        "z": round(float(z.max()), 4),
        "p_value": p_value,
        "alpha": alpha,
        "direction": direction,
        "rows_tested": n,
        "estimated_flip_rate": round(rate, 6),
        "model_weight": blend.weight,
        **{f"z.{c}": round(float(z[i + 1]), 4) for i, c in enumerate(classes)},
        "z.unlikely_labels": round(tail_z, 4),
    }
    summary = (
        f"label disagreement with trusted data is at its trusted level (z={z.max():.2f})"
        if passed
        else f"labels disagree with the trusted model and neighbours far more than trusted rows "
        f"do (z={z.max():.2f}, p={p_value:.2e}, into {direction!r}): likely label flips"
    )
    details = (
        []
        if passed
        else [
            f"estimated flip rate {rate:.1%} among {candidates.size} row(s) labelled "
            f"{direction!r}; {flagged.size} row(s) more likely flipped than not"
        ]
    )
    return result(
        "label_flips",
        passed,
        policy.flip_blocking,
        summary,
        metrics,
        flagged,
        details,
        policy,
        Decision("max_standardized_flip_statistic", max(float(z.max()), tail_z), p_value, alpha),
    )


__all__ = ["label_distribution_shift", "label_flips", "risk_conditional_label_rate"]
