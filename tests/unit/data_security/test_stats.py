"""Drift statistics: correctness against scipy and hand computation, and detection power."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from bastion.core.errors import BastionError, InputError
from bastion.data_security.errors import StatsInputInvalid
from bastion.data_security.stats import (
    ColumnKind,
    ColumnSummary,
    DriftThresholds,
    Method,
    chi_square_test,
    choose_test,
    column_drift,
    compare_column,
    js_from_counts,
    ks_test,
    null_rate_test,
    psi,
    psi_from_counts,
)

NUM, CAT = ColumnKind.NUMERIC, ColumnKind.CATEGORICAL


# -- hand-computed and scipy-equal values ---------------------------------------------


def test_psi_matches_hand_computation_on_counts() -> None:
    # r = .4 .3 .2 .1, c = .25 each:
    # .15*ln(1.6) + .05*ln(1.2) + .05*ln(1.25) + .15*ln(2.5) = 0.2282175
    assert psi_from_counts([40, 30, 20, 10], [25, 25, 25, 25]) == pytest.approx(0.2282175, 1e-6)


def test_psi_matches_hand_computation_on_raw_values() -> None:
    # bins=2: the median edge of 1..10 ("lower") is 5 -> reference 4 | 6, current 6 | 4
    ref = list(range(1, 11))
    cur = [1, 1, 1, 1, 1, 1, 6, 7, 8, 9]
    expected = 2 * 0.2 * math.log(0.6 / 0.4)
    assert psi(ref, cur, bins=2, kind=NUM) == pytest.approx(expected, 1e-9)


def test_psi_empty_bin_is_smoothed_with_eps() -> None:
    # reference share 0 becomes 1e-4: .5*ln 2 + .4999*ln(5000)
    expected = 0.5 * math.log(2) + 0.4999 * math.log(0.5 / 1e-4)
    assert psi_from_counts([10, 0], [5, 5]) == pytest.approx(expected, 1e-9)


def test_psi_of_categories_aligns_labels_in_any_order() -> None:
    assert psi(["a", "b", "b"], ["b", "a", "b"], kind=CAT) == 0.0
    assert psi(["a", "a", "b", "b"], ["a", "b", "b", "b"], kind=CAT) > 0.1


@pytest.mark.parametrize("seed", range(5))
def test_chi_square_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.integers(1, 400, 6), rng.integers(1, 400, 6)
    ours = chi_square_test(ref, cur)
    chi2, p, _dof, _exp = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert ours.statistic == pytest.approx(chi2, rel=1e-10)
    assert ours.p_value == pytest.approx(p, rel=1e-8, abs=1e-300)


def test_chi_square_drops_empty_categories_and_handles_one_category() -> None:
    assert chi_square_test([10, 0, 5], [8, 0, 7]).p_value == pytest.approx(
        sps.chi2_contingency([[10, 5], [8, 7]], correction=False)[1])
    single = chi_square_test([10, 0], [5, 0])
    assert (single.statistic, single.p_value) == (0.0, 1.0)


@pytest.mark.parametrize(("n_ref", "n_cur", "shift", "ties"), [
    (80, 120, 0.3, False),        # scipy exact mode
    (300, 200, 0.0, True),        # exact mode with ties
    (20_000, 15_000, 0.03, False),  # asymptotic mode
    (12_000, 30_000, 0.0, True),  # asymptotic with ties
])
def test_ks_matches_scipy(n_ref: int, n_cur: int, shift: float, ties: bool) -> None:
    rng = np.random.default_rng(n_ref)
    ref, cur = rng.normal(size=n_ref), rng.normal(shift, size=n_cur)
    if ties:
        ref, cur = np.round(ref, 1), np.round(cur, 1)
    ours, theirs = ks_test(ref, cur), sps.ks_2samp(ref, cur)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-8, abs=1e-300)


def test_js_matches_scipy() -> None:
    p, q = np.array([10, 20, 30, 0]), np.array([5, 5, 30, 10])
    assert js_from_counts(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-10)


def test_null_rate_test_is_a_two_proportion_z_test() -> None:
    result = null_rate_test(10, 1000, 60, 1000)
    pooled = 70 / 2000
    z = (0.06 - 0.01) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(z))


# -- detection ------------------------------------------------------------------------


def test_no_false_alarms_on_same_distribution_over_seeds() -> None:
    alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        alarms += column_drift("x", rng.normal(size=2000), rng.normal(size=2000), NUM).drifted
        alarms += column_drift("c", rng.choice(list("abcd"), 2000),
                               rng.choice(list("abcd"), 2000), CAT).drifted
    # 40 tests at alpha 0.05 plus an effect floor: expect ~0, allow a couple
    assert alarms <= 2


def test_detects_mean_shift() -> None:
    rng = np.random.default_rng(1)
    result = column_drift("income", rng.normal(size=3000), rng.normal(0.3, size=3000), NUM)
    assert result.drifted and result.method is Method.KS
    assert result.p_value is not None and result.p_value < 1e-6


def test_detects_variance_change_with_same_mean() -> None:
    rng = np.random.default_rng(2)
    result = column_drift("x", rng.normal(0, 1, 3000), rng.normal(0, 1.6, 3000), NUM)
    assert result.distribution_drifted and result.psi > 0.1


def test_detects_category_frequency_change() -> None:
    rng = np.random.default_rng(3)
    ref = rng.choice(["low", "mid", "high"], 3000, p=[0.6, 0.3, 0.1])
    cur = rng.choice(["low", "mid", "high"], 3000, p=[0.4, 0.3, 0.3])
    result = column_drift("risk_band", ref, cur, CAT)
    assert result.drifted and result.method is Method.CHI_SQUARE
    assert result.new_categories == ()


def test_attack_new_category_injection_is_detected_and_named() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice(["rent", "own", "mortgage"], 3000)
    cur = np.concatenate([rng.choice(["rent", "own", "mortgage"], 2850), ["other_x"] * 150])
    result = column_drift("home", ref, cur, CAT)
    assert result.drifted
    assert result.new_categories == ("other_x",)
    assert result.new_category_share == pytest.approx(0.05)


def test_attack_null_injection_is_reported_separately() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(size=4000)
    cur = values.copy()
    cur[rng.random(4000) < 0.3] = np.nan  # same distribution, 30 % missing
    result = column_drift("debt", values, cur, NUM)
    assert result.drifted and result.nulls.drifted
    assert not result.distribution_drifted
    assert result.nulls.reference_rate == 0.0
    assert result.nulls.current_rate == pytest.approx(0.3, abs=0.03)


def test_large_sample_trivial_shift_is_significant_but_not_flagged() -> None:
    rng = np.random.default_rng(6)
    result = column_drift("x", rng.normal(size=200_000), rng.normal(0.02, size=200_000), NUM)
    assert result.p_value is not None and result.p_value < 0.05
    assert result.statistic < result.thresholds.ks_min_statistic
    assert not result.drifted


def test_infinities_count_as_missing() -> None:
    cur = pl.Series([1.0, 2.0, float("inf"), None, float("-inf"), 3.0])
    result = column_drift("x", [1.0, 2.0, 3.0, 4.0], cur, NUM,
                          thresholds=DriftThresholds(min_samples=2))
    assert result.nulls.current_rate == pytest.approx(0.5)
    assert result.n_current == 3


def test_low_cardinality_numbers_use_chi_square_and_name_new_values() -> None:
    rng = np.random.default_rng(7)
    ref = rng.integers(0, 4, 2000)
    cur = np.concatenate([rng.integers(0, 4, 1800), np.full(200, 9)])
    result = column_drift("n_loans", ref, cur, NUM)
    assert result.method is Method.CHI_SQUARE and result.drifted
    assert result.new_categories == ("9",)


def test_summary_with_sample_matches_full_reference_verdict() -> None:
    rng = np.random.default_rng(8)
    ref, cur = rng.normal(size=50_000), rng.normal(0.2, size=50_000)
    sampled = ColumnSummary.from_values("x", ref, NUM, sample_size=5_000)
    assert sampled.sample.size == 5_000 and np.all(np.diff(sampled.sample) >= 0)
    assert compare_column(sampled, cur).drifted
    assert column_drift("x", ref, cur, NUM).drifted


# -- choosing a method ------------------------------------------------------------------


def test_choose_test_explains_each_choice() -> None:
    method, reason = choose_test(NUM, 5000, 5000, 4000)
    assert method is Method.KS and "Kolmogorov" in reason and "4000" in reason
    method, reason = choose_test(NUM, 5000, 5000, 3)
    assert method is Method.CHI_SQUARE and "3 distinct" in reason
    method, reason = choose_test(CAT, 5000, 5000, 12)
    assert method is Method.CHI_SQUARE and "chi-square" in reason
    method, reason = choose_test(CAT, 5000, 5000, 400)
    assert method is Method.JENSEN_SHANNON and "sparse" in reason
    method, reason = choose_test(CAT, 40, 40, 12)  # 40 rows over 12 levels: sparse cells
    assert method is Method.JENSEN_SHANNON
    _, reason = choose_test(NUM, 10, 5000, 4000)
    assert reason.startswith("too few values")


def test_too_few_values_are_not_tested_nor_flagged() -> None:
    result = column_drift("x", [1.0, 2.0, 3.0], [10.0, 20.0, 30.0], NUM)
    assert not result.tested and not result.drifted
    assert result.to_dict()["statistic"] is None


def test_high_cardinality_categorical_uses_jensen_shannon() -> None:
    rng = np.random.default_rng(9)
    labels = np.array([f"zip{i}" for i in range(300)])
    ref = rng.choice(labels, 20_000)
    cur = rng.choice(labels[:150], 20_000)  # half of the zip codes vanish
    result = column_drift("zip", ref, cur, CAT)
    assert result.method is Method.JENSEN_SHANNON and result.drifted
    assert result.p_value is None


def test_forced_method_is_used_and_said() -> None:
    rng = np.random.default_rng(10)
    result = column_drift("x", rng.normal(size=1000), rng.normal(1, size=1000), NUM,
                          method=Method.PSI)
    assert result.method is Method.PSI and result.statistic == result.psi
    assert "forced" in result.reason


# -- bad input ------------------------------------------------------------------------


def test_strings_given_as_numeric_are_refused_clearly() -> None:
    with pytest.raises(StatsInputInvalid, match="expected numbers") as info:
        column_drift("x", ["a", "b"], ["c"], NUM)
    assert isinstance(info.value, InputError) and isinstance(info.value, BastionError)


@pytest.mark.parametrize(("ref", "cur"), [([1, 2], [1, 2, 3]), ([0, 0], [1, 1]),
                                          ([-1, 2], [1, 1]), ([[1]], [[1]])])
def test_bad_counts_are_refused(ref: list[int], cur: list[int]) -> None:
    with pytest.raises(StatsInputInvalid):
        psi_from_counts(ref, cur)


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(StatsInputInvalid):
        DriftThresholds(alpha=1.5)
    with pytest.raises(StatsInputInvalid):
        DriftThresholds(psi_moderate=0.5, psi_threshold=0.2)


def test_empty_current_batch_is_refused() -> None:
    summary = ColumnSummary.from_values("x", np.arange(100.0), NUM)
    with pytest.raises(StatsInputInvalid, match="no rows"):
        compare_column(summary, np.empty(0))


def test_column_drift_to_dict_is_json_safe() -> None:
    import json

    rng = np.random.default_rng(11)
    result = column_drift("x", rng.normal(size=500), rng.normal(size=500), NUM)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["method"] == "ks" and data["thresholds"]["alpha"] == 0.05
    assert len(data["histogram"]["labels"]) == len(data["histogram"]["current"])


def test_datetime_units_and_zones_do_not_fake_drift() -> None:
    import datetime as dt

    rng = np.random.default_rng(12)
    start = dt.datetime(2024, 1, 1)
    stamps = pl.Series([start + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 10**6, 500)])
    ref = stamps.cast(pl.Datetime("ms"))
    cur = stamps.cast(pl.Datetime("ns"))
    assert column_drift("t", ref, cur, NUM).statistic == 0.0
    aware = ref.dt.replace_time_zone("UTC")
    paris = aware.dt.convert_time_zone("Europe/Paris")
    assert column_drift("t", aware, paris, NUM).statistic == 0.0


def test_forcing_ks_on_labels_is_refused() -> None:
    with pytest.raises(StatsInputInvalid, match="KS needs ordered numbers"):
        column_drift("home", ["a", "b"] * 50, ["a", "b"] * 50, CAT, method=Method.KS)
