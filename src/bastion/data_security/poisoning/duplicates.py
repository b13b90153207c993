"""Duplicate injection: exact and near duplicates, within the batch and against history.

Exact duplicates compare stable 64-bit hashes of a row's features with every
history row's hash (so "same applicant, opposite label" is caught even outside
the bounded sample) and with the batch's own rows.  Near duplicates are rows
whose numeric features all lie within ``near_duplicate_tolerance`` trusted
standard deviations of another row's, with equal categories (rounding or tiny
noise).  Duplicated-and-flipped rows carry another label than their twin; both
rows of a conflicting pair inside the batch are flagged (either may be the copy).
The batch fails when the duplicate count is binomially significant over the
trusted sample's own duplicate rate, scaled to the number of rows a batch row is
compared with (a 1M-row batch has more chance twins than a 100k-row sample).
Everything is vectorised: hash joins for exact twins, grid joins for near ones.

Example::

    check = duplicate_injection(BatchView.of(batch, reference), reference, policy)
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning._models import build_near_index
from bastion.data_security.poisoning._schema import IntArray
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference

#: of a conflicting pair of twins, a row whose label the trusted model finds this many
#: times likelier than its twin's is taken for the original and not named
_PAIR_RATIO = 3.0


def _trusted_rates(ref: PoisoningReference, tolerance: float) -> tuple[float, float]:
    """Shares of trusted sample rows with an exact twin, and with an exact or near twin."""
    key_exact, key_any = ("dup_rate_exact", tolerance), ("dup_rate", tolerance)
    if key_any not in ref.derived.memo:
        pairs = ref.derived.near_index(ref, tolerance).pairs()
        twins = np.zeros(ref.sample.height, dtype=bool)
        twins[pairs.ravel()] = True
        hashes = ref.derived.sample_hashes(ref)
        _, inverse, sizes = np.unique(hashes, return_inverse=True, return_counts=True)
        exact = sizes[inverse] > 1
        ref.derived.memo[key_exact] = float(np.mean(exact))
        ref.derived.memo[key_any] = float(np.mean(twins | exact))
    return ref.derived.memo[key_exact], ref.derived.memo[key_any]


def _p_value(k: int, n: int, base: float) -> float:
    return float(sps.binomtest(k, n, base, alternative="greater").pvalue) if n else 1.0


def _expected_rate(trusted_rate: float, m: int, n: int) -> float:
    """Chance that an ordinary batch row has a twin among the rows it is compared with.

    The trusted rate is measured among ``m - 1`` other rows; a batch row meets
    ``n - 1`` batch rows and ``m`` trusted ones, and twins get likelier with more
    rows to meet: ``1 - (1 - r) ** (others / (m - 1))`` (a Poisson intensity per row).
    """
    floor = 1.0 / max(m, 1)
    r = min(max(trusted_rate, floor), 1.0 - 1e-9)
    scaled = 1.0 - (1.0 - r) ** ((n - 1 + m) / max(m - 1, 1))
    return float(min(max(scaled, floor), 1.0 - 1e-9))


def _groups(hashes: np.ndarray, y: IntArray) -> tuple[IntArray, IntArray, np.ndarray]:
    """Rows with equal (features, label): group of each row, first row of each group, copies."""
    order = np.lexsort((np.arange(y.size), y, hashes))
    h, lab = hashes[order], y[order]
    starts = np.ones(order.size, dtype=bool)
    starts[1:] = (h[1:] != h[:-1]) | (lab[1:] != lab[:-1])
    group = np.empty(order.size, dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    copies = np.zeros(order.size, dtype=bool)
    copies[order[~starts]] = True  # every row after the first of its group is a copy
    return group, order[starts].astype(np.int64), copies


def _history(
    view: BatchView, ref: PoisoningReference, hashes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose exact features are in the history: with their label / with another only."""
    rows = pl.DataFrame({"h": hashes, "y": view.y, "row": np.arange(view.n)})
    history = ref.derived.hash_labels(ref)
    seen = rows.join(history.select("h").unique(), on="h", how="semi").get_column("row")
    same = rows.join(history, on=["h", "y"], how="semi").get_column("row")
    replay = np.zeros(view.n, dtype=bool)
    flipped = np.zeros(view.n, dtype=bool)
    flipped[seen.to_numpy()] = True
    flipped[same.to_numpy()] = False
    replay[same.to_numpy()] = True
    return replay, flipped


def duplicate_injection(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    tol = policy.near_duplicate_tolerance
    hashes = view.row_hashes
    replay, flipped = _history(view, ref, hashes)
    in_history = replay | flipped  # the rows whose exact features the history holds
    # identical rows (features and label) are indexed once; their copies are batch repeats
    group, first, in_batch = _groups(hashes, view.y)
    trusted = ref.derived.near_index(ref, tol)
    reps = build_near_index(ref.schema, view.x[first], trusted.scale, trusted.grid)
    y_rep = view.y[first]
    # near twins in the trusted sample (exact ones are already covered by the hashes)
    cross = reps.cross(trusted)
    mismatch = np.zeros(first.size, dtype=bool)
    has_twin = np.zeros(first.size, dtype=bool)
    has_twin[cross[:, 0]] = True
    np.logical_or.at(mismatch, cross[:, 0], ref.sample_labels[cross[:, 1]] != y_rep[cross[:, 0]])
    fresh = ~(replay | flipped)
    flipped |= fresh & has_twin[group] & mismatch[group]
    replay |= fresh & has_twin[group] & ~mismatch[group]
    # twins inside the batch: both rows of a conflicting pair count (either may be the
    # poisoned one), and the one whose label the trusted model finds clearly less likely
    # is named; an agreeing pair keeps the earlier row and flags the copy
    pairs = reps.pairs()
    a, b = pairs[:, 0], pairs[:, 1]
    conflict = y_rep[a] != y_rep[b]
    flip_group = np.zeros(first.size, dtype=bool)
    flip_group[a[conflict]] = True
    flip_group[b[conflict]] = True
    own = view.proba[first, np.maximum(y_rep, 0)]
    a_c, b_c = a[conflict], b[conflict]
    named_group = np.zeros(first.size, dtype=bool)
    # both when the model cannot tell them apart (neither label 3x less likely)
    named_group[a_c[own[a_c] <= _PAIR_RATIO * own[b_c]]] = True
    named_group[b_c[own[b_c] <= _PAIR_RATIO * own[a_c]]] = True
    later = np.where(first[a] > first[b], a, b)[~conflict]
    copy_group = np.zeros(first.size, dtype=bool)
    copy_group[later] = True
    named_flipped = flipped | named_group[group]
    flipped |= flip_group[group]
    in_batch |= copy_group[group]
    suspicious = replay | flipped | in_batch
    # exact copies are far rarer by chance than near twins: each kind is tested against
    # its own trusted rate, so a few exact copies are not drowned by ordinary near twins
    _, inverse, sizes = np.unique(hashes, return_inverse=True, return_counts=True)
    exact = in_history | (sizes[inverse] > 1)
    rate_exact, rate_any = _trusted_rates(ref, tol)
    m, n = ref.sample.height, view.n
    k_exact, k_near = int((suspicious & exact).sum()), int((suspicious & ~exact).sum())
    p_exact = _p_value(k_exact, n, _expected_rate(rate_exact, m, n))
    p_near = _p_value(k_near, n, _expected_rate(rate_any, m, n))
    k = k_exact + k_near
    p_value = min(1.0, 2 * min(p_exact, p_near))
    base = _expected_rate(rate_any, m, n)
    metrics: dict[str, MetricValue] = {
        "replayed_rows": int(replay.sum()),
        "duplicated_and_flipped": int(flipped.sum()),
        "duplicates_in_batch": int(in_batch.sum()),
        "exact_copies": k_exact,
        "trusted_duplicate_rate": round(rate_any, 6),
        "expected_duplicate_rate": round(base, 6),
        "p_value": p_value,
    }
    alpha = policy.level(policy.duplicate_alpha)
    passed = not (
        (k_exact >= policy.duplicate_min_rows and 2 * p_exact < alpha)
        or (k_near >= policy.duplicate_min_rows and 2 * p_near < alpha)
    )
    summary = (
        f"{k} duplicate row(s), an ordinary count"
        if passed
        else f"{k} injected duplicate row(s) ({int(flipped.sum())} with a flipped label)"
    )
    details = (
        []
        if passed
        else [
            f"{int(flipped.sum())} row(s) repeat another row's features with a different label",
            f"{int(replay.sum())} row(s) replay trusted rows, "
            f"{int(in_batch.sum())} repeat batch rows",
        ]
    )
    return result(
        "duplicate_injection",
        passed,
        policy.duplicate_blocking,
        summary,
        metrics,
        _named(named_flipped, replay | in_batch, n, base, alpha),
        details,
        policy,
        Decision("suspicious_duplicates", float(k), p_value, alpha, policy.duplicate_min_rows),
    )


def _named(
    flipped: np.ndarray, agreeing: np.ndarray, n: int, base: float, alpha: float
) -> IntArray:
    """Rows to name: every row repeating another with a different label, and the
    agreeing copies only when they too are more than an ordinary batch holds
    (ordinary near twins of a dense table would drown the injected rows)."""
    rows = flipped.copy()
    if _p_value(int(agreeing.sum()), n, base) < alpha:
        rows |= agreeing
    return np.asarray(np.flatnonzero(rows), dtype=np.int64)


__all__ = ["duplicate_injection"]
