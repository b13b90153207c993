"""The subsample screen of ``injected_outliers`` on large batches (issue 10).

A large batch is first scored on a random subsample; it passes on that alone
only when a batch the full count would fail could hardly give such a subsample.
These tests hold the screen to that: injected outliers in a large batch are
still decided (and named) on every row, a clean one is cleared on the subsample
and the full count agrees, and the critical count is where the full decision turns.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from poisoning_data import LABEL, make_rows

from bastion.data_security.poisoning import PoisoningPolicy, PoisoningReference
from bastion.data_security.poisoning._batch import BatchView
from bastion.data_security.poisoning.outliers import (
    _SCREEN_MIN_ROWS,
    _SCREEN_ROWS,
    _Null,
    injected_outliers,
)

_BATCH = _SCREEN_MIN_ROWS + 10_000


@pytest.fixture(scope="module")
def reference() -> PoisoningReference:
    return PoisoningReference.build(make_rows(6_000, seed=1), label=LABEL)


def _view(frame: pl.DataFrame, ref: PoisoningReference) -> BatchView:
    """The batch as the detector sees it (label probabilities are not used by this detector)."""
    frame = frame.select(LABEL, *ref.schema.feature_names)
    x = ref.schema.model_matrix(frame)
    proba = np.zeros((frame.height, len(ref.schema.classes)))
    return BatchView(frame, x, ref.schema.label_codes(frame), proba, ref.schema)


def _full_count(view: BatchView, ref: PoisoningReference) -> tuple[int, _Null]:
    """The count below the threshold over every row, as the unscreened check computes it."""
    model, calibration = ref.derived.outliers(ref)
    policy = PoisoningPolicy()
    rank = max(1, int(np.ceil(policy.outlier_contamination * calibration.size)))
    threshold = float(np.sort(calibration)[rank - 1])
    null = _Null(
        rank,
        calibration.size,
        policy.level(policy.outlier_alpha),
        policy.outlier_min_ratio * rank / (calibration.size + 1),
    )
    return int(np.count_nonzero(model.scores(view.x) < threshold)), null


def _with_outliers(rows: int, share: float, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    batch = make_rows(rows, seed)
    hit = np.zeros(rows, dtype=bool)
    hit[np.random.default_rng(seed).choice(rows, int(share * rows), replace=False)] = True
    far = batch.with_columns(
        pl.when(pl.Series(hit)).then(pl.col("income") * 40).otherwise(pl.col("income")),
        pl.when(pl.Series(hit)).then(pl.col("debt") * 50).otherwise(pl.col("debt")),
    )
    return far, np.flatnonzero(hit)


def test_outliers_injected_into_a_large_batch_are_not_screened_out(
    reference: PoisoningReference,
) -> None:
    batch, injected = _with_outliers(_BATCH, 0.03, seed=31)
    check = injected_outliers(_view(batch, reference), reference, PoisoningPolicy())
    assert not check.passed
    # decided on every row, and the injected rows are the ones named
    assert check.metrics["rows_scored"] == _BATCH
    named = set(check.flagged_rows)
    assert len(named & set(injected.tolist())) >= 0.95 * injected.size


def test_large_clean_batch_is_cleared_by_the_screen_and_the_full_count_agrees(
    reference: PoisoningReference,
) -> None:
    view = _view(make_rows(_BATCH, seed=32), reference)
    check = injected_outliers(view, reference, PoisoningPolicy())
    assert check.passed
    assert check.metrics["rows_scored"] == _SCREEN_ROWS
    miss = check.metrics["screen_miss_chance"]
    assert isinstance(miss, float) and miss <= 1e-9
    k, null = _full_count(view, reference)
    assert not null.fails(k, view.n)


def test_outliers_just_above_the_critical_count_are_never_screened_out(
    reference: PoisoningReference,
) -> None:
    # The weakest batch the full count fails: the screen may clear it with chance at most
    # 1e-9, so the batch is scored in full and fails every time (fresh subsample each run).
    view = _view(make_rows(_BATCH, seed=33), reference)
    k_clean, null = _full_count(view, reference)
    critical = null.critical(view.n)
    assert k_clean < critical
    # replace just enough rows with far outliers to reach the critical count (plus a margin
    # for injected rows that were already below the threshold)
    extra = critical - k_clean + 50
    batch, _ = _with_outliers(_BATCH, extra / _BATCH, seed=33)
    view = _view(batch, reference)
    k, _ = _full_count(view, reference)
    assert critical <= k <= critical + 200, (k, critical)
    for _ in range(2):
        check = injected_outliers(view, reference, PoisoningPolicy())
        assert not check.passed
        assert check.metrics["rows_scored"] == _BATCH


@pytest.mark.parametrize("n", [100, 5_000, _BATCH, 1_000_000])
def test_critical_count_is_where_the_full_decision_turns(
    reference: PoisoningReference, n: int
) -> None:
    _, calibration = reference.derived.outliers(reference)
    policy = PoisoningPolicy()
    rank = max(1, int(np.ceil(policy.outlier_contamination * calibration.size)))
    null = _Null(
        rank,
        calibration.size,
        policy.level(policy.outlier_alpha),
        policy.outlier_min_ratio * rank / (calibration.size + 1),
    )
    c = null.critical(n)
    assert 0 < c <= n
    assert null.fails(c, n) and not null.fails(c - 1, n)
    # monotone: every larger count fails, every smaller one passes
    for k in (c + 1, min(n, c + 17), n):
        assert null.fails(k, n)
    for k in (0, c // 2, max(0, c - 9)):
        assert not null.fails(k, n)
