"""The ingestion speed work (issue 10) keeps every poisoning decision exactly as it was.

Each faster path is compared with the slow computation it replaces: sklearn's
sequential Isolation Forest scoring, a brute-force near-twin search, the trigger tests run on
every pattern, the per-row BLAKE2b of the history hashes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from poisoning_data import LABEL, make_rows

from bastion.data_security.poisoning import PoisoningPolicy, PoisoningReference, _models
from bastion.data_security.poisoning._batch import BatchView
from bastion.data_security.poisoning._models import (
    _SCORE_BLOCK,
    build_near_index,
    fit_outlier_model,
    grid_columns,
    near_scale,
)
from bastion.data_security.poisoning._schema import TableSchema
from bastion.data_security.poisoning.triggers import _candidates, _Patterns, _significant


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_outlier_scores_are_sklearns_sequential_bits_on_any_thread_count(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = make_rows(2 * _SCORE_BLOCK + 77, seed=4)
    schema = TableSchema.infer(frame, label=LABEL)
    x = schema.model_matrix(frame)
    x[::7, 0] = np.nan  # imputation is part of what is scored
    model = fit_outlier_model(schema, x[:1_000])
    want = model.forest.score_samples(model.prepare(x))  # sequential: trees in forest order
    monkeypatch.setattr(_models, "_threads", lambda rows: threads)
    assert np.array_equal(model.scores(x), want)


def _brute_cross(schema: TableSchema, a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> set:
    found = set()
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            ok = True
            for k, spec in enumerate(schema.features):
                u, v = a[i, k], b[j, k]
                if np.isnan(u) or np.isnan(v):
                    ok &= bool(np.isnan(u) and np.isnan(v))
                elif spec.kind.value == "categorical":
                    ok &= bool(u == v)
                else:
                    ok &= bool(abs(u - v) / scale[k] <= 1.0)
            if ok:
                found.add((i, j))
    return found


def test_near_twin_cross_join_matches_brute_force() -> None:
    rng = np.random.default_rng(11)
    n = 300

    def rows(m: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "y": ["a", "b"] * (m // 2),
                "u": np.round(rng.normal(0, 1, m), 1),
                "v": np.round(rng.normal(5, 2, m), 0),
                "c": [str(v) for v in rng.integers(0, 3, m)],
                "w": np.where(rng.random(m) < 0.1, np.nan, rng.normal(0, 1, m).round(1)),
            }
        )

    trusted, batch = rows(n), rows(n)
    schema = TableSchema.infer(trusted, label="y")
    xt, xb = schema.model_matrix(trusted), schema.model_matrix(batch)
    scale = near_scale(xt, 0.3)
    grid = grid_columns(schema, xt, scale)
    left = build_near_index(schema, xb, scale, grid)
    right = build_near_index(schema, xt, scale, grid)
    got = left.cross(right)
    want = _brute_cross(schema, xb, xt, scale)
    assert want, "the data must contain near pairs for this test to mean anything"
    assert {tuple(p) for p in got.tolist()} == want
    assert len(got) == len(want)  # each pair once
    pairs = left.pairs()
    self_want = {(i, j) for i, j in _brute_cross(schema, xb, xb, scale) if i < j}
    assert {tuple(p) for p in pairs.tolist()} == self_want and len(pairs) == len(self_want)


@pytest.mark.parametrize("seed", range(4))
def test_trigger_pruning_never_drops_a_pattern_the_tests_would_call_a_trigger(seed: int) -> None:
    """Every pattern ``_significant`` calls a trigger survives ``_candidates``."""
    rng = np.random.default_rng(seed)
    k = 20_000
    support = rng.integers(5, 400, k)
    hits = np.minimum(support, np.ceil(support * rng.uniform(0.9, 1.0, k))).astype(np.int64)
    label = rng.integers(0, 2, k)
    # trusted counts: half never seen (stamped candidates), half rare or common
    m = np.where(rng.random(k) < 0.5, 0, rng.integers(0, 3_000, k))
    m_label = np.minimum(m, (m * rng.uniform(0, 1, k)).astype(np.int64))
    prior = np.array([0.8, 0.2]) if seed % 2 else np.array([0.3, 0.7])
    n, m_total, alpha, policy = 200_000, 100_000, 1e-6, PoisoningPolicy()
    pat = _Patterns([("c",)] * k, [("v",)] * k, np.arange(k), support, label, hits)
    chosen = _significant(pat, m, m_label, n, m_total, prior, alpha, policy)
    frame = pl.DataFrame({"key": np.arange(k), "__label": label, "hits": hits, "support": support})
    kept = set(_candidates(frame, n, m_total, prior, alpha, policy).get_column("key").to_list())
    assert chosen.sum() > 50, "the draw must contain triggers for this test to mean anything"
    assert set(np.flatnonzero(chosen).tolist()) <= kept
    assert len(kept) < k  # and it does prune


def test_batch_row_hashes_are_the_history_blake2b() -> None:
    frame = make_rows(500, seed=2).with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise(pl.col("debt")).alias("debt")
    )
    schema = TableSchema.infer(frame, label=LABEL)
    cells = schema.cell_strings(frame)
    joined = cells.select(pl.concat_str(pl.all(), separator="\x1f")).to_series().to_list()
    want = [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest()) for s in joined]
    assert schema.row_hashes(frame).tolist() == want
    ref = PoisoningReference.build(frame, label=LABEL)
    view = BatchView.of(frame.select(LABEL, *schema.feature_names), ref)
    assert view.row_hashes.tolist() == want


def test_dense_pair_counts_equal_the_group_by(monkeypatch: pytest.MonkeyPatch) -> None:
    from bastion.data_security.poisoning import triggers

    rng = np.random.default_rng(8)
    n = 5_000
    coded = pl.DataFrame(
        {
            "a": pl.Series(rng.integers(0, 7, n)).set(pl.Series(rng.random(n) < 0.1), None),
            "b": pl.Series(rng.integers(0, 4, n)),
            "c": pl.Series(rng.integers(0, 30, n)).set(pl.Series(rng.random(n) < 0.3), None),
            "__label": rng.integers(0, 3, n),
        }
    )
    cards = {"a": list("0123456"), "b": list("0123"), "c": list(map(str, range(30)))}
    vocab = triggers._Coded(cards)
    policy = PoisoningPolicy(trigger_min_purity=0.5)

    def run() -> tuple[dict[tuple[str, str], list[tuple[int, ...]]], int]:
        found, tested = triggers._pairs(coded, vocab, ("a", "b", "c"), 3, policy)
        return {p: sorted(f.rows()) for p, f in found}, tested

    dense = run()
    monkeypatch.setattr(triggers, "_DENSE_CELLS", 0)  # every pair through the polars group-by
    grouped = run()
    assert dense[1] > 0 and dense[0], "patterns must be found for this test to mean anything"
    assert dense == grouped
