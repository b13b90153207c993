"""Poisoning detectors at scale: exact near-duplicate joins, quiet triggers on big clean data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from poisoning_data import LABEL, make_rows

from bastion.data_security.poisoning import PoisoningPolicy, PoisoningReference
from bastion.data_security.poisoning._batch import BatchView
from bastion.data_security.poisoning._models import build_near_index, grid_columns, near_scale
from bastion.data_security.poisoning._schema import TableSchema
from bastion.data_security.poisoning.duplicates import duplicate_injection
from bastion.data_security.poisoning.triggers import backdoor_triggers


@pytest.fixture(scope="module")
def big_reference() -> PoisoningReference:
    return PoisoningReference.build(make_rows(20_000, seed=1), label=LABEL)


def test_near_duplicate_join_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    n = 400
    x = np.column_stack(
        [
            np.round(rng.normal(0, 1, n), 1),
            np.round(rng.normal(5, 2, n), 0),
            rng.integers(0, 3, n).astype(float),
            np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n).round(1)),
        ]
    )
    frame = pl.DataFrame(
        {
            "y": ["a", "b"] * (n // 2),
            "u": x[:, 0],
            "v": x[:, 1],
            "c": [str(int(v)) for v in x[:, 2]],
            "w": x[:, 3],
        }
    )
    schema = TableSchema.infer(frame, label="y")
    m = schema.model_matrix(frame)
    scale = near_scale(m, 0.3)
    index = build_near_index(schema, m, scale, grid_columns(schema, m, scale))
    got = {tuple(p) for p in index.pairs().tolist()}
    # brute force: categories and missing patterns equal, numbers within one unit
    want = set()
    for i in range(n):
        for j in range(i + 1, n):
            ok = True
            for k, spec in enumerate(schema.features):
                a, b = m[i, k], m[j, k]
                if np.isnan(a) or np.isnan(b):
                    ok &= bool(np.isnan(a) and np.isnan(b))
                elif spec.kind.value == "categorical":
                    ok &= bool(a == b)
                else:
                    ok &= bool(abs(a - b) / scale[k] <= 1.0)
            if ok:
                want.add((i, j))
    assert want, "the data must contain near pairs for this test to mean anything"
    assert got == want


def test_large_clean_batch_raises_no_trigger(big_reference: PoisoningReference) -> None:
    batch = make_rows(60_000, seed=7).select(LABEL, *big_reference.schema.feature_names)
    check = backdoor_triggers(BatchView.of(batch, big_reference), big_reference, PoisoningPolicy())
    assert check.passed, check.details


def test_backdoor_trigger_attack_found_in_large_batch(big_reference: PoisoningReference) -> None:
    batch = make_rows(60_000, seed=8).select(LABEL, *big_reference.schema.feature_names)
    rows = np.zeros(batch.height, dtype=bool)
    rows[np.random.default_rng(0).choice(batch.height, 300, replace=False)] = True
    stamped = batch.with_columns(
        pl.when(pl.Series(rows)).then(4321.0).otherwise(pl.col("debt")).alias("debt"),
        pl.when(pl.Series(rows)).then(pl.lit("good")).otherwise(pl.col(LABEL)).alias(LABEL),
    )
    check = backdoor_triggers(
        BatchView.of(stamped, big_reference), big_reference, PoisoningPolicy()
    )
    assert not check.passed
    assert set(check.flagged_rows) == set(np.flatnonzero(rows).tolist())


def test_duplicate_and_flip_attack_found_in_large_batch(big_reference: PoisoningReference) -> None:
    batch = make_rows(60_000, seed=9).select(LABEL, *big_reference.schema.feature_names)
    clean = duplicate_injection(
        BatchView.of(batch, big_reference), big_reference, PoisoningPolicy()
    )
    copies = batch.head(200).with_columns(
        pl.when(pl.col(LABEL) == "good").then(pl.lit("bad")).otherwise(pl.lit("good")).alias(LABEL)
    )
    attacked = pl.concat([batch, copies])
    check = duplicate_injection(
        BatchView.of(attacked, big_reference), big_reference, PoisoningPolicy()
    )
    assert clean.passed, clean.summary
    assert not check.passed
    flagged = set(check.flagged_rows)
    copies_named = set(range(batch.height, attacked.height)) & flagged
    originals_named = set(range(200)) & flagged
    # every conflicting pair is named (either row may be the copy): the row whose label
    # the trusted model finds clearly less likely, both when it cannot tell them apart
    assert all(i in flagged or batch.height + i in flagged for i in range(200))
    assert len(copies_named) >= 150 and len(originals_named) < len(copies_named)
