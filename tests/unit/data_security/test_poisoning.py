"""Poisoning detectors on synthetic credit-like data: every attack named, plus clean batches."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from poisoning_data import LABEL, make_rows

from bastion.data_security.errors import InvalidPoisoningReference, PoisoningInputError
from bastion.data_security.poisoning import (
    PoisoningPolicy,
    PoisoningReference,
    RecentWindow,
    detect_poisoning,
    quarantined,
    verify_source,
)


@pytest.fixture(scope="module")
def reference() -> PoisoningReference:
    return PoisoningReference.build(make_rows(3000, seed=1), label=LABEL)


def flagged(results: tuple) -> set[int]:
    rows: set[int] = set()
    for r in results:
        if not r.passed:
            rows.update(r.flagged_rows)
    return rows


def failed(results: tuple) -> set[str]:
    return {r.name for r in results if r.blocking and not r.passed}


def test_clean_batch_passes(reference: PoisoningReference) -> None:
    for seed in (10, 11, 12):
        results = detect_poisoning(make_rows(600, seed), reference, label=LABEL)
        assert not quarantined(results), failed(results)


def test_label_flip_attack_is_flagged(reference: PoisoningReference) -> None:
    batch = make_rows(600, 20)
    rows = np.random.default_rng(0).choice(600, 60, replace=False)
    labels = batch[LABEL].to_list()
    for r in rows:
        labels[r] = "bad" if labels[r] == "good" else "good"
    results = detect_poisoning(batch.with_columns(pl.Series(LABEL, labels)), reference, label=LABEL)
    assert "label_flips" in failed(results)
    flips = next(r for r in results if r.name == "label_flips")
    named = set(flips.flagged_rows)
    hit = len(named & set(rows.tolist()))
    # rows are named by their posterior of being flipped, as many as the estimated
    # number of flips: precision and recall both near the model's ranking quality,
    # not recall bought with a flood of clean rows
    assert hit / rows.size >= 0.4 and hit / len(named) >= 0.4
    assert flips.decision is not None and flips.decision.p_value is not None
    assert flips.decision.p_value < flips.decision.alpha  # type: ignore[operator]


def test_targeted_flip_attack_high_risk_relabelled_good(reference: PoisoningReference) -> None:
    batch = make_rows(600, 21)
    risky = np.flatnonzero(
        (batch["records"] == "yes").to_numpy() & (batch[LABEL] == "bad").to_numpy()
    )[:30]
    labels = batch[LABEL].to_list()
    for r in risky:
        labels[r] = "good"
    results = detect_poisoning(batch.with_columns(pl.Series(LABEL, labels)), reference, label=LABEL)
    assert quarantined(results)
    assert failed(results) & {"risk_conditional_label_rate", "label_flips"}


def test_backdoor_trigger_attack_is_flagged(reference: PoisoningReference) -> None:
    batch = make_rows(600, 22)
    rows = np.random.default_rng(1).choice(600, 15, replace=False)
    debt, labels = batch["debt"].to_list(), batch[LABEL].to_list()
    for r in rows:
        debt[r], labels[r] = 4321.0, "good"
    poisoned = batch.with_columns(pl.Series("debt", debt), pl.Series(LABEL, labels))
    results = detect_poisoning(poisoned, reference, label=LABEL)
    trigger = next(r for r in results if r.name == "backdoor_triggers")
    assert not trigger.passed and trigger.blocking
    assert set(trigger.flagged_rows) == set(rows.tolist())
    assert any("debt = 4321.0" in d for d in trigger.details)


def test_duplicate_and_flip_attack_is_flagged(reference: PoisoningReference) -> None:
    batch = make_rows(600, 23)
    trusted = reference.sample.head(30)
    copies = trusted.with_columns(
        pl.when(pl.col(LABEL) == "good").then(pl.lit("bad")).otherwise(pl.lit("good")).alias(LABEL)
    ).select(batch.columns)
    poisoned = pl.concat([batch, copies], how="vertical_relaxed")
    results = detect_poisoning(poisoned, reference, label=LABEL)
    dup = next(r for r in results if r.name == "duplicate_injection")
    assert not dup.passed
    assert dup.metrics["duplicated_and_flipped"] >= 30
    assert set(range(600, 630)) <= set(dup.flagged_rows)


def test_near_duplicate_with_tiny_noise_is_caught(reference: PoisoningReference) -> None:
    batch = make_rows(600, 24)
    copies = batch.head(20).with_columns(
        (pl.col("income") + 0.1).alias("income"),
        pl.when(pl.col(LABEL) == "good").then(pl.lit("bad")).otherwise(pl.lit("good")).alias(LABEL),
    )
    results = detect_poisoning(pl.concat([batch, copies]), reference, label=LABEL)
    dup = next(r for r in results if r.name == "duplicate_injection")
    assert not dup.passed
    named = set(dup.flagged_rows)
    # of each conflicting pair the row whose label the trusted model finds clearly less
    # likely is named (both when it cannot tell): the flipped copies, not the originals
    assert len(named & set(range(600, 620))) >= 18
    assert len(named & set(range(20))) <= 10


def test_slow_drift_attack_caught_cumulatively(reference: PoisoningReference) -> None:
    window = RecentWindow.empty()
    alone_alarms, caught = 0, False
    for step in range(10):
        batch = make_rows(150, 100 + step, income_shift=12.0)
        alone = detect_poisoning(batch, reference, label=LABEL)
        alone_alarms += int(quarantined(alone))
        cumulative = detect_poisoning(batch, reference, label=LABEL, recent=window)
        caught = caught or "cumulative_feature_shift" in failed(cumulative)
        window = window.with_batch(batch)
    assert alone_alarms <= 2
    assert caught


def test_outlier_injection_is_flagged(reference: PoisoningReference) -> None:
    batch = make_rows(600, 25)
    outliers = make_rows(40, 26).with_columns(
        (pl.col("income") * 40).alias("income"), (pl.col("debt") * 50).alias("debt")
    )
    results = detect_poisoning(pl.concat([batch, outliers]), reference, label=LABEL)
    assert "injected_outliers" in failed(results)


def test_unregistered_source_is_refused() -> None:
    digest = hashlib.sha256(b"rows").hexdigest()
    bad = verify_source("usb-stick", {"core-banking"}, digest, digest, row_count=3)
    assert not bad.passed and bad.blocking and bad.flagged_rows == (0, 1, 2)
    tampered = verify_source("core-banking", {"core-banking"}, "0" * 64, digest)
    assert not tampered.passed
    assert verify_source("core-banking", {"core-banking"}, digest, digest).passed


def test_reference_round_trips_without_pickle(reference: PoisoningReference) -> None:
    blob = reference.to_bytes()
    loaded = PoisoningReference.from_bytes(blob)
    batch = make_rows(300, 30)
    a = detect_poisoning(batch, reference, label=LABEL)
    b = detect_poisoning(batch, loaded, label=LABEL)
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]
    damaged = bytearray(blob)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(InvalidPoisoningReference):
        PoisoningReference.from_bytes(bytes(damaged))


def test_recent_window_round_trips() -> None:
    window = RecentWindow.empty(max_rows=100).with_batch(make_rows(80, 1))
    window = window.with_batch(make_rows(80, 2))
    assert window.height == 100 and window.batches == 2
    again = RecentWindow.from_bytes(window.to_bytes())
    assert again.batches == 2 and again.rows.equals(window.rows)


def test_bad_input_is_refused(reference: PoisoningReference) -> None:
    with pytest.raises(PoisoningInputError):
        detect_poisoning(make_rows(50, 3).drop("income"), reference, label=LABEL)
    with pytest.raises(PoisoningInputError):
        detect_poisoning(make_rows(50, 3), reference, label="other")
    with pytest.raises(PoisoningInputError):
        PoisoningPolicy(flip_alpha=2.0)
    with pytest.raises(PoisoningInputError):
        PoisoningReference.build(make_rows(100, 3), label="missing")


def test_results_are_json_safe_and_progress_is_reported(reference: PoisoningReference) -> None:
    import json

    seen: list[tuple[str, int, int]] = []
    results = detect_poisoning(
        make_rows(200, 4), reference, label=LABEL, progress=lambda s, d, t: seen.append((s, d, t))
    )
    json.dumps([r.to_dict() for r in results])
    assert seen and seen[-1][1] == seen[-1][2]
    assert all(r.category == "poisoning" for r in results)


def test_five_percent_targeted_flips_in_a_150_row_batch_over_1000_trusted_rows() -> None:
    # Issue 10: the attack that motivates Bastion, on a small table.
    reference = PoisoningReference.build(make_rows(1000, seed=3), label=LABEL)
    caught, named, hits = 0, 0, 0
    for seed in range(6):
        batch = make_rows(150, 40 + seed)
        from bastion.data_security.poisoning._batch import BatchView

        proba = BatchView.of(batch, reference).proba[:, reference.schema.classes.index("good")]
        bad = np.flatnonzero(batch[LABEL].to_numpy() == "bad")
        rows = bad[np.argsort(proba[bad])][:8]  # the riskiest applicants relabelled good
        labels = batch[LABEL].to_numpy().astype(object)
        labels[rows] = "good"
        results = detect_poisoning(
            batch.with_columns(pl.Series(LABEL, labels, pl.String)), reference, label=LABEL
        )
        poisoning = {r.name for r in results if r.blocking and not r.passed}
        caught += int(bool(poisoning & {"label_flips", "risk_conditional_label_rate"}))
        rows_named = flagged(results)
        named += len(rows_named)
        hits += len(rows_named & set(rows.tolist()))
    # With its null exact (fold-model scoring, permutation against held-out trusted
    # rows) label_flips catches 2 of these 6 batches (p 0.0025-0.22); the earlier
    # null caught 6 of 6 but blocked 12 % of clean batches on a near-deterministic
    # table (test_poisoning_calibration): power here is the open part of issue 10.
    assert caught >= 2, caught
    assert hits / max(named, 1) >= 0.5, (hits, named)


def _mostly_good(n: int, seed: int) -> pl.DataFrame:
    rows = make_rows(n, seed)
    good = np.random.default_rng(seed).random(n) < 0.97
    return rows.with_columns(pl.Series(LABEL, np.where(good, "good", "bad")))


def test_backdoor_into_the_majority_class_with_a_never_seen_value_is_caught() -> None:
    # A trigger stamped on random rows labelled with a 97 % majority class has an
    # ordinary label purity; the never-seen value repeated 30 times gives it away.
    reference = PoisoningReference.build(_mostly_good(3000, 5), label=LABEL)
    clean = detect_poisoning(_mostly_good(600, 6), reference, label=LABEL)
    assert "backdoor_triggers" not in failed(clean)
    batch = _mostly_good(600, 7)
    rows = np.random.default_rng(1).choice(600, 30, replace=False)
    income = batch["income"].to_numpy().copy()
    income[rows] = 123.4567
    labels = batch[LABEL].to_numpy().astype(object)
    labels[rows] = "good"
    stamped = batch.with_columns(pl.Series("income", income), pl.Series(LABEL, labels, pl.String))
    results = detect_poisoning(stamped, reference, label=LABEL)
    assert "backdoor_triggers" in failed(results)
    trig = next(r for r in results if r.name == "backdoor_triggers")
    assert set(rows.tolist()) <= set(trig.flagged_rows)


def test_flips_out_of_a_confident_majority_are_named_when_the_top_statistic_points_back() -> None:
    # Random flips on an imbalanced table: 20 rows go majority -> minority, 1 row the
    # other way with a near-impossible label.  The strongest statistic may point into
    # the majority class, whose count shrank; the rows named must still be the 20.
    from bastion.data_security.poisoning.labels import _rows_to_name

    confident_0, confident_1 = [0.99, 0.01], [0.01, 0.99]
    proba = np.array([confident_0] * 360 + [confident_1] * 40)
    labels = np.array([0] * 360 + [1] * 40, dtype=np.int64)
    labels[:20] = 1  # majority rows flipped into the minority class
    labels[360] = 0  # one confident minority row flipped into the majority
    null = np.array([confident_0] * 1800 + [confident_1] * 200)
    null_y = np.array([0] * 1800 + [1] * 200, dtype=np.int64)
    z = np.array([2.0, 6.0, 1.0])  # strongest: into class 0, which shrank
    named, which, rate = _rows_to_name(proba, labels, null, null_y, z, PoisoningPolicy())
    assert which == 0 and rate > 0.04  # fell back to the direction-free estimate
    assert set(named.tolist()) == {*range(20), 360}


def test_shifted_label_mix_names_the_grown_class_excess_rows(
    reference: PoisoningReference,
) -> None:
    # a batch whose "good" share jumps: the check names about as many "good" rows as
    # the mix gained, those the trusted model finds least likely to be good first
    batch = make_rows(600, 23)
    labels = batch[LABEL].to_numpy().astype(object)
    bad = np.flatnonzero(labels == "bad")
    moved = bad[:120]
    labels[moved] = "good"
    results = detect_poisoning(
        batch.with_columns(pl.Series(LABEL, labels, pl.String)), reference, label=LABEL
    )
    mix = next(r for r in results if r.name == "label_distribution_shift")
    assert not mix.passed and mix.flagged_rows
    named = set(mix.flagged_rows)
    assert 60 <= len(named) <= 180
    assert all(labels[i] == "good" for i in named)
    assert len(named & set(moved.tolist())) / len(named) >= 0.5


def test_random_flips_both_ways_are_all_named_not_just_the_net_growth() -> None:
    # 20 labels flipped 0 -> 1 and 10 flipped 1 -> 0: class 1 grew by only 10, yet 30
    # labels moved; both directions are active, so all 30 flipped rows are named
    from bastion.data_security.poisoning.labels import _rows_to_name

    proba = np.array([[0.9, 0.1]] * 200 + [[0.1, 0.9]] * 200)
    labels = np.array([0] * 200 + [1] * 200, dtype=np.int64)
    labels[:20] = 1
    labels[200:210] = 0
    null = np.array([[0.9, 0.1]] * 1000 + [[0.1, 0.9]] * 1000)
    null_y = np.array([0] * 1000 + [1] * 1000, dtype=np.int64)
    z = np.array([3.0, 3.0, 4.5])  # strongest into class 1, class 0 active too
    named, _which, _rate = _rows_to_name(proba, labels, null, null_y, z, PoisoningPolicy())
    assert set(named.tolist()) == {*range(20), *range(200, 210)}
    # targeted (only class 1 active): just the net growth is named, in class 1 only
    z_targeted = np.array([3.0, 0.5, 4.5])
    named, which, _ = _rows_to_name(proba, labels, null, null_y, z_targeted, PoisoningPolicy())
    assert which == 2 and len(named) == 10 and set(named.tolist()) <= set(range(20))


def test_outlier_p_values_are_calibrated_on_clean_batches_of_a_small_table() -> None:
    # The forest's threshold came from scores on its own training rows (new clean rows
    # look rarer than those) and the batch count was tested as if that threshold's rate
    # were known exactly: over 30 400-row tables x 12 clean batches, 3.9 % of the
    # batches had p < 0.01 and 1.4 % were blocked (nominal 0.1 %).  Split-conformal
    # threshold + beta-binomial count: 0.6 % below 0.01, none blocked.
    from bastion.data_security.poisoning._batch import BatchView
    from bastion.data_security.poisoning.outliers import injected_outliers

    pool = make_rows(30_000, seed=77)
    p_values, blocked = [], 0
    for rep in range(20):
        reference = PoisoningReference.build(make_rows(400, seed=200 + rep), label=LABEL)
        for b in range(12):
            batch = pool.slice((rep * 12 + b) * 100, 100)
            check = injected_outliers(BatchView.of(batch, reference), reference, PoisoningPolicy())
            blocked += int(not check.passed)
            p_values.append(check.metrics["p_value"])
    assert blocked == 0
    assert sum(p < 0.01 for p in p_values) <= 5, sorted(p_values)[:10]
