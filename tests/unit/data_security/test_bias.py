"""Bias audit: base rates, parity via fairlearn, four-fifths rule, poisoning-like shifts."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

from bastion.data_security.checks.bias import (
    BiasBaseline,
    BiasPolicy,
    BiasSpec,
    SensitiveAttribute,
    bias_baseline,
    check_bias,
)
from bastion.data_security.errors import AuditConfigError

SPEC = BiasSpec(
    label="approved", sensitive=(SensitiveAttribute("gender"), SensitiveAttribute("age"))
)


def _frame(n: int = 6_000, seed: int = 0, rate_f: float = 0.3, rate_m: float = 0.3) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    gender = r.choice(["F", "M"], n)
    rate = np.where(gender == "F", rate_f, rate_m)
    return pl.DataFrame(
        {
            "gender": gender,
            "age": r.integers(18, 90, n),
            "approved": (r.random(n) < rate).astype(np.int64),
        }
    )


def test_fair_batch_passes_and_states_binning() -> None:
    ref = _frame()
    results = check_bias(_frame(seed=1), SPEC, baseline=bias_baseline(ref, SPEC))
    assert all(r.passed for r in results), [r.render_text() for r in results]
    age = results[1]
    assert "binned at [25, 35, 45, 55, 65]" in age.details[0]
    assert age.metrics["age[>=65].count"] > 0


def test_parity_matches_fairlearn_on_raw_rows() -> None:
    df = _frame(rate_f=0.2, rate_m=0.4)
    result = check_bias(df, SPEC)[0]
    y = df["approved"].to_numpy()
    g = df["gender"].to_numpy()
    assert result.metrics["gender.demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, y, sensitive_features=g), abs=1e-6
    )
    assert result.metrics["gender.disparate_impact_ratio"] == pytest.approx(
        demographic_parity_ratio(y, y, sensitive_features=g), abs=1e-6
    )
    assert not result.passed and not result.blocking  # historic disparity warns by default
    assert "four-fifths rule fails" in result.summary
    strict = check_bias(df, SPEC, policy=BiasPolicy(disparate_impact_blocking=True))[0]
    assert strict.blocking


def test_label_flip_poisoning_on_one_group_is_blocking_and_flags_rows() -> None:
    baseline = bias_baseline(_frame(), SPEC)
    batch = _frame(seed=2).with_row_index("i")
    # Attack: approve most applicants over 65 (high-risk group) in this batch.
    flip = (pl.col("age") >= 65) & (pl.col("i") % 4 != 0)
    batch = batch.with_columns(
        pl.when(flip).then(1).otherwise(pl.col("approved")).alias("approved")
    )
    flipped = set(batch.filter(flip)["i"].to_list())
    results = {r.name: r for r in check_bias(batch.drop("i"), SPEC, baseline=baseline)}
    age = results["bias_age"]
    assert not age.passed and age.blocking
    assert "'>=65' label base rate" in age.summary
    assert set(age.flagged_rows) <= set(
        batch.filter((pl.col("age") >= 65) & (pl.col("approved") == 1))["i"].to_list()
    )
    assert len(flipped & set(age.flagged_rows)) > 0.9 * min(len(flipped), 1000)


def test_group_disappearing_and_representation_shift_warn() -> None:
    baseline = bias_baseline(_frame(), SPEC)
    only_m = _frame(seed=3).filter(pl.col("gender") == "M")
    result = check_bias(only_m, SPEC, baseline=baseline)[0]
    assert not result.passed and "'F'" in result.summary


def test_missing_columns_fail_closed() -> None:
    results = check_bias(_frame().drop("approved"), SPEC)
    assert len(results) == 1 and not results[0].passed and results[0].blocking
    with pytest.raises(AuditConfigError):
        bias_baseline(_frame().drop("gender"), SPEC)


def test_baseline_round_trip_and_merge() -> None:
    a, b = bias_baseline(_frame(seed=4), SPEC), bias_baseline(_frame(seed=5), SPEC)
    assert BiasBaseline.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    merged = a.merge(b)
    assert merged.rows == 12_000
    whole = bias_baseline(pl.concat([_frame(seed=4), _frame(seed=5)]), SPEC)
    assert merged == whole


def test_numeric_attribute_uses_reference_quartiles_and_string_labels() -> None:
    r = np.random.default_rng(6)
    df = pl.DataFrame(
        {"income": r.normal(5e4, 1e4, 2_000), "decision": r.choice(["yes", "no"], 2_000)}
    )
    spec = BiasSpec(
        label="decision", positive_label="yes", sensitive=(SensitiveAttribute("income"),)
    )
    result = check_bias(df, spec)[0]
    assert "binned at" in result.details[0]
    groups = [k for k in result.metrics if k.endswith(".count")]
    assert len(groups) == 4


def _small_group_batch(f_rows: int, f_positives: int) -> pl.DataFrame:
    r = np.random.default_rng(7)
    m_rows = 400
    return pl.DataFrame(
        {
            "gender": ["F"] * f_rows + ["M"] * m_rows,
            "age": r.integers(18, 90, f_rows + m_rows),
            "approved": [1] * f_positives
            + [0] * (f_rows - f_positives)
            + [1] * 120
            + [0] * (m_rows - 120),
        }
    )


def test_chance_base_rate_jump_in_a_small_group_warns_within_the_batch_budget() -> None:
    # 22/40 = 55 % against a trusted 30 %: z about 3.4 (two-sided p about 6e-4), yet over
    # the ~8 groups compared that is p about 5e-3, above the bias share (0.001) of the 2 %
    # batch budget: a warning with its p-value, not a quarantine by chance
    baseline = bias_baseline(_frame(), SPEC)
    gender = check_bias(_small_group_batch(40, 22), SPEC, baseline=baseline)[0]
    assert not gender.passed and not gender.blocking, gender.render_text()
    assert gender.decision is not None and gender.decision.alpha == BiasPolicy().alpha
    assert gender.decision.p_value is not None
    assert BiasPolicy().alpha < gender.decision.p_value < 0.05
    assert gender.decision.statistic > 3.0


def test_poisoning_sized_base_rate_jump_still_blocks_within_the_budget() -> None:
    baseline = bias_baseline(_frame(), SPEC)
    gender = check_bias(_small_group_batch(200, 150), SPEC, baseline=baseline)[0]
    assert not gender.passed and gender.blocking
    assert gender.decision is not None and gender.decision.p_value is not None
    assert gender.decision.p_value < BiasPolicy().alpha


def test_every_blocking_statistical_level_of_a_batch_fits_the_false_quarantine_target() -> None:
    from bastion.data_security.checks.quality import QualityPolicy
    from bastion.data_security.checks.report import FALSE_QUARANTINE_TARGET, check_alpha
    from bastion.data_security.poisoning import PoisoningPolicy

    p = PoisoningPolicy()
    poisoning = (
        2 * p.shift_alpha  # batch and cumulative feature shift
        + p.label_shift_alpha
        + p.risk_alpha
        + p.flip_alpha
        + p.outlier_alpha
        + p.duplicate_alpha
        + p.trigger_alpha
    )
    contract = check_alpha()  # the soft contract tests
    quality = 2 * QualityPolicy().alpha  # null-rate jump, range
    total = poisoning + contract + quality + BiasPolicy().alpha
    assert total <= FALSE_QUARANTINE_TARGET, total
    halved = BiasPolicy(false_quarantine_target=0.01).alpha
    assert halved == pytest.approx(BiasPolicy().alpha / 2)
