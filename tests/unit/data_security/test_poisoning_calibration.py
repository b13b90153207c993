"""Calibration of the label checks: clean batches are not blocked beyond their stated level.

The null of ``label_flips`` used to be the trusted rows' out-of-fold values while
the batch was scored by a model refitted on all trusted rows, and the trusted
side's own sampling noise was ignored; on tables whose label is nearly a
function of the features (a few genuine rows look impossible) clean batches
alarmed several times more often than the nominal level.  These tests draw
many clean batches from the trusted generator and count.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from poisoning_data import LABEL, make_rows

from bastion.data_security.poisoning import PoisoningPolicy, PoisoningReference
from bastion.data_security.poisoning._batch import BatchView
from bastion.data_security.poisoning._models import predict_proba
from bastion.data_security.poisoning.labels import (
    label_distribution_shift,
    label_flips,
    risk_conditional_label_rate,
)


def _card_rows(n: int, seed: int, noise: float = 0.02) -> pl.DataFrame:
    """A card-approval table whose label is almost a function of spending (2 % exceptions)."""
    r = np.random.default_rng(seed)
    spend = np.round(np.where(r.random(n) < 0.7, r.gamma(2.0, 100.0, n), 0.0), 1)
    income = np.round(r.gamma(4.0, 30.0, n), 1)
    age = r.integers(18, 75, n).astype(float)
    card = (spend > 0) ^ (r.random(n) < noise)
    return pl.DataFrame(
        {"card": np.where(card, "yes", "no"), "spend": spend, "income": income, "age": age}
    )


def test_batch_rows_are_scored_by_the_models_that_made_the_trusted_null() -> None:
    # The null of label_flips is only exact if a batch row is scored the way trusted
    # rows were: by a fold model that never saw it.  A trusted row sent as a batch row
    # in the position of its own fold gets exactly its stored out-of-fold value, also
    # after the reference is reloaded from bytes (models refitted from the sample).
    built = PoisoningReference.build(make_rows(600, seed=4), label=LABEL)
    for reference in (built, PoisoningReference.from_bytes(built.to_bytes())):
        folds = reference.derived.label_model(reference)
        assert len(folds.models) == 5
        x = reference.derived.matrix(reference)
        for k, rows in enumerate(folds.held_out):
            got = predict_proba(folds.models[k], x[rows], 2)
            np.testing.assert_allclose(got, reference.oof_proba[rows], atol=1e-12)
        n = 50
        assert np.array_equal(folds.fold_of_rows(n), np.arange(n) % 5)


def test_clean_batches_of_a_near_deterministic_table_do_not_trip_label_flips() -> None:
    # 8 small tables (400 trusted rows) x 10 clean 100-row batches.  Old null (model
    # refitted on all rows vs trusted out-of-fold values, one-sample bootstrap): 21 of
    # 80 batches below p 0.05 and 10 below the blocking level 0.005 (12 %, nominal
    # 0.5 %).  Fold-model scoring + permutation null: 6 and 1 (on 30 x 10: 10 and 2 of
    # 300 batches, the old null 40 and 17).
    policy = PoisoningPolicy()
    p_values = []
    for rep in range(8):
        reference = PoisoningReference.build(_card_rows(400, 500 + rep), label="card")
        for b in range(10):
            batch = _card_rows(100, 10_000 + rep * 100 + b)
            check = label_flips(BatchView.of(batch, reference), reference, policy)
            p_values.append(float(check.metrics["p_value"]))  # type: ignore[arg-type]
    p = np.array(p_values)
    assert (p < policy.level(policy.flip_alpha)).sum() <= 2, np.sort(p)[:8]
    assert (p < 0.05).sum() <= 10, np.sort(p)[:15]


def test_planted_flips_on_a_near_deterministic_table_are_still_caught() -> None:
    # the permutation null pools the batch's own rows: 5 % random flips must still alarm
    reference = PoisoningReference.build(_card_rows(1000, 7), label="card")
    caught = 0
    for b in range(5):
        batch = _card_rows(150, 900 + b)
        rows = np.random.default_rng(b).choice(150, 8, replace=False)
        labels = batch["card"].to_numpy().astype(object)
        labels[rows] = np.where(labels[rows] == "yes", "no", "yes")
        flipped = batch.with_columns(pl.Series("card", labels, pl.String))
        check = label_flips(BatchView.of(flipped, reference), reference, PoisoningPolicy())
        caught += int(not check.passed)
        if not check.passed:
            named = set(check.flagged_rows)
            assert len(named & set(rows.tolist())) / len(named) >= 0.5
    assert caught >= 4, caught


def test_label_mix_and_risk_region_tests_hold_their_level_on_a_small_trusted_table() -> None:
    # Both tests are two-sample: the trusted share or rate is itself estimated from a
    # few hundred rows.  Over 12 tables of 250 trusted rows x 12 clean 100-row batches
    # the one-sample binomial against the trusted risk region's rate gave 12 p < 0.05
    # and 7 p < 0.01 (nominal 7 and 1.4); Fisher's two-sample test gives 6 and 0.
    policy = PoisoningPolicy()
    mix, risk = [], []
    pool = make_rows(12 * 12 * 100, seed=99)
    for rep in range(12):
        reference = PoisoningReference.build(make_rows(250, 300 + rep), label=LABEL)
        for b in range(12):
            view = BatchView.of(pool.slice((rep * 12 + b) * 100, 100), reference)
            mix.append(label_distribution_shift(view, reference, policy).metrics["p_value"])
            check = risk_conditional_label_rate(view, reference, policy)
            risk.append(min(v for k, v in check.metrics.items() if k.endswith("p_adjusted")))
    assert sum(p < 0.01 for p in mix) <= 4, sorted(mix)[:8]  # type: ignore[operator]
    assert sum(p < 0.01 for p in risk) <= 3, sorted(risk)[:8]  # type: ignore[operator]


def test_large_reference_keeps_one_fold_and_still_scores_batches_like_its_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Above ALL_FOLDS_MAX_ROWS trusted rows one fold model is kept (one fit on load,
    # as cheap as the single full model it replaced): every batch row is scored by it
    # and compared with its own held-out rows; flips planted in a batch still alarm.
    # The nearest-neighbour opinion (75 % of the blend here) must follow the same
    # folds: with leave-one-out neighbours over all trusted rows this clean batch got
    # p 0.0005 (6 of 10 clean batches below 0.05), as trusted rows answer for each other.
    from bastion.data_security.poisoning import _models

    monkeypatch.setattr(_models, "ALL_FOLDS_MAX_ROWS", 500)
    built = PoisoningReference.build(make_rows(1500, seed=8), label=LABEL)
    reference = PoisoningReference.from_bytes(built.to_bytes())
    folds = reference.derived.label_model(reference)
    assert len(folds.models) == 1 and len(folds.held_out) == 1
    x = reference.derived.matrix(reference)
    rows = folds.held_out[0]
    np.testing.assert_allclose(
        predict_proba(folds, x[rows], 2), reference.oof_proba[rows], atol=1e-12
    )
    clean = make_rows(400, seed=81)
    assert label_flips(BatchView.of(clean, reference), reference, PoisoningPolicy()).passed
    labels = clean[LABEL].to_numpy().astype(object)
    moved = np.random.default_rng(3).choice(400, 60, replace=False)
    labels[moved] = np.where(labels[moved] == "good", "bad", "good")
    flipped = clean.with_columns(pl.Series(LABEL, labels, pl.String))
    assert not label_flips(BatchView.of(flipped, reference), reference, PoisoningPolicy()).passed
