"""Duplicate injection: exact and near duplicates, within the batch and against history.

Exact duplicates compare stable 64-bit hashes of a row's features with every
history row's hash (so "same applicant, opposite label" is caught even outside
the bounded sample) and with the batch's own rows.  Near duplicates are rows
whose numeric features all lie within ``near_duplicate_tolerance`` trusted
standard deviations of another row's, with equal categories (rounding or tiny
noise).  Duplicated-and-flipped rows carry another label than their twin; both
rows of a conflicting pair inside the batch are flagged (either may be the copy).
The batch fails when the duplicate count is binomially significant over the
trusted sample's own duplicate rate.

Example::

    check = duplicate_injection(BatchView.of(batch, reference), reference, policy)
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning._models import build_near_index
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference


def _trusted_rate(ref: PoisoningReference, tolerance: float) -> float:
    """Share of trusted sample rows that have an exact or near twin in the sample."""
    key = ("dup_rate", tolerance)
    if key not in ref.derived.memo:
        index = ref.derived.near_index(ref, tolerance)
        counts = np.array([r.size for r in index.neighbours(ref.derived.matrix(ref))])
        hashes = ref.derived.sample_hashes(ref)
        _, inverse, sizes = np.unique(hashes, return_inverse=True, return_counts=True)
        twins = (counts > 1) | (sizes[inverse] > 1)
        ref.derived.memo[key] = float(np.mean(twins))
    return ref.derived.memo[key]


def duplicate_injection(
    view: BatchView, ref: PoisoningReference, policy: PoisoningPolicy
) -> CheckResult:
    tol = policy.near_duplicate_tolerance
    hashes = ref.schema.row_hashes(view.frame)
    history = ref.derived.hash_labels(ref)
    replay: set[int] = set()
    flipped: set[int] = set()
    in_batch: set[int] = set()
    for i, h in enumerate(hashes.tolist()):
        mask = history.get(h)
        if mask is not None:
            (replay if view.y[i] >= 0 and mask >> int(view.y[i]) & 1 else flipped).add(i)
    # near twins in the trusted sample (exact ones are already covered by the hashes)
    sample_y = ref.sample_labels
    for i, twins in enumerate(ref.derived.near_index(ref, tol).neighbours(view.x)):
        if twins.size and i not in replay and i not in flipped:
            (replay if (sample_y[twins] == view.y[i]).all() else flipped).add(i)
    # twins inside the batch: exact hash groups and near neighbours
    batch_index = build_near_index(ref.schema, view.x, tol)
    for i, twins in enumerate(batch_index.neighbours(view.x)):
        for j in twins.tolist():
            if j <= i:
                continue
            if view.y[i] == view.y[j]:
                in_batch.add(j)  # keep the first, flag the copy
            else:
                # either twin may be the poisoned one: both go to review
                flipped.update((i, j))
    for group in _hash_groups(hashes):
        for j in group[1:]:
            if view.y[j] == view.y[group[0]]:
                in_batch.add(j)
    suspicious = replay | flipped | in_batch
    k, n = len(suspicious), view.n
    base = max(_trusted_rate(ref, tol), 1.0 / max(ref.sample.height, 1))
    p_value = float(sps.binomtest(k, n, base, alternative="greater").pvalue) if n else 1.0
    metrics: dict[str, MetricValue] = {
        "replayed_rows": len(replay),
        "duplicated_and_flipped": len(flipped),
        "duplicates_in_batch": len(in_batch),
        "trusted_duplicate_rate": round(base, 6),
        "p_value": p_value,
    }
    passed = not (k >= policy.duplicate_min_rows and p_value < policy.duplicate_alpha)
    summary = (
        f"{k} duplicate row(s), an ordinary count"
        if passed
        else f"{k} injected duplicate row(s) ({len(flipped)} with a flipped label)"
    )
    details = (
        []
        if passed
        else [
            f"{len(flipped)} row(s) repeat another row's features with a different label",
            f"{len(replay)} row(s) replay trusted rows, {len(in_batch)} repeat batch rows",
        ]
    )
    return result(
        "duplicate_injection",
        passed,
        policy.duplicate_blocking,
        summary,
        metrics,
        sorted(suspicious),
        details,
        policy,
    )


def _hash_groups(hashes: np.ndarray) -> list[list[int]]:
    order = np.argsort(hashes, kind="stable")
    groups: list[list[int]] = []
    start = 0
    for pos in range(1, order.size + 1):
        if pos == order.size or hashes[order[pos]] != hashes[order[start]]:
            if pos - start > 1:
                groups.append(sorted(int(i) for i in order[start:pos]))
            start = pos
    return groups


__all__ = ["duplicate_injection"]
