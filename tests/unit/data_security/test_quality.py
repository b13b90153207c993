"""Quality checks against a reference profile, and the shared report types."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from bastion.data_security.checks import AuditReport, CheckResult, Severity
from bastion.data_security.checks.quality import (
    QualityPolicy,
    check_coercion,
    check_duplicates,
    check_null_rates,
    check_ranges,
    check_row_count,
    run_quality_checks,
)
from bastion.data_security.errors import AuditConfigError
from bastion.data_security.profile import DatasetProfile, profile_frame


def _frame(n: int = 2_000, seed: int = 0) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "loan_id": np.arange(n) + seed * n,
            "income": r.normal(50_000, 5_000, n),
            "age": r.integers(18, 90, n),
            "amount": [str(v) for v in r.integers(100, 900, n)],
        }
    )


@pytest.fixture(scope="module")
def reference() -> DatasetProfile:
    return profile_frame(_frame())


def test_clean_batch_passes_everything(reference: DatasetProfile) -> None:
    results = run_quality_checks(_frame(seed=1), reference, history=(2_000, 2_100))
    report = AuditReport.of(2_000, results)
    assert report.passed and not report.warnings, report.render_text()


def test_null_rate_jump_is_blocking_and_flags_rows(reference: DatasetProfile) -> None:
    df = _frame(seed=1).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(None)
        .otherwise(pl.col("income"))
        .alias("income")
    )
    result = check_null_rates(df, reference)
    assert not result.passed and result.blocking
    assert result.flagged_rows[:3] == (0, 2, 4)
    assert result.metrics["income.null_rate"] == pytest.approx(0.5)


def _with_nulls(df: pl.DataFrame, every: int) -> pl.DataFrame:
    return df.with_columns(
        pl.when(pl.int_range(pl.len()) % every == 0)
        .then(None)
        .otherwise(pl.col("income"))
        .alias("income")
    )


def test_small_null_noise_is_not_a_jump() -> None:
    reference = profile_frame(_with_nulls(_frame(), 10))  # 10% nulls
    small = _with_nulls(_frame(n=10, seed=1), 5)  # 2 of 10: noise at this size
    assert check_null_rates(small, reference).passed
    assert not check_null_rates(_with_nulls(_frame(seed=1), 3), reference).passed


def test_range_violation_names_rows_and_ignores_identifiers(reference: DatasetProfile) -> None:
    df = _frame(seed=5).with_columns(
        pl.when(pl.int_range(pl.len()) == 17)
        .then(10_000_000.0)
        .otherwise(pl.col("income"))
        .alias("income")
    )
    result = check_ranges(df, reference)
    assert not result.passed and not result.blocking  # 1 row of 2000 < 1%
    assert result.flagged_rows == (17,)
    assert "loan_id" not in " ".join(result.details)


def test_duplicate_rows_flag_later_copies() -> None:
    df = _frame(n=100)
    dup = pl.concat([df, df[5:8]])
    result = check_duplicates(dup)
    assert result.flagged_rows == (100, 101, 102)
    assert result.metrics["duplicates"] == 3 and not result.blocking
    assert check_duplicates(pl.concat([df, df])).blocking


def test_numbers_as_strings_coercion_failures(reference: DatasetProfile) -> None:
    df = _frame(seed=1).with_columns(
        pl.when(pl.int_range(pl.len()) == 9)
        .then(pl.lit("12O"))
        .otherwise(pl.col("amount"))
        .alias("amount"),
        pl.col("income").cast(pl.String),
    )
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("income"))
        .alias("income")
    )
    result = check_coercion(df, reference)
    assert not result.passed
    assert set(result.flagged_rows) == {4, 9}
    assert result.metrics["income.coercion_failures"] == 1


def test_row_count_anomaly_vs_history() -> None:
    assert check_row_count(1_000, (1_000, 1_100, 900)).passed
    warn = check_row_count(300, (1_000, 1_100, 900))
    assert not warn.passed and not warn.blocking
    assert check_row_count(50_000, (1_000, 1_100, 900)).blocking
    assert check_row_count(5, ()).passed


def test_policy_validation() -> None:
    with pytest.raises(AuditConfigError):
        QualityPolicy(null_rate_block_increase=2.0)


def test_report_render_and_json() -> None:
    block = CheckResult(
        "a",
        "quality",
        False,
        True,
        "bad",
        {"x": float("nan"), "flagged_total": 5000},
        tuple(range(30)),
        ("d1",),
    )
    warn = CheckResult("b", "pii", False, False, "meh")
    ok = CheckResult("c", "bias", True, True, "fine")
    report = AuditReport.of(10_000, [ok, warn, block])
    assert not report.passed and report.blocking_failures == (block,)
    assert block.severity is Severity.BLOCKING and ok.severity is Severity.INFO
    text = report.render_text()
    assert text.startswith("Audit QUARANTINE") and "at least 30" in text
    assert "(5000 rows in total)" in text and text.index("[FAIL]") < text.index("[PASS]")
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["checks"][2]["metrics"]["x"] is None and d["blocking_failures"] == ["a"]


def _population(n: int, seed: int) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    return pl.DataFrame(
        {"income": r.lognormal(10, 0.8, n), "score": r.normal(600, 50, n), "kids": r.poisson(1, n)}
    )


def test_single_real_outlier_in_a_90_row_batch_is_not_quarantined() -> None:
    # Issue 10: `range` blocked once 1% of a batch was out of range, i.e. one row in 90,
    # on values that were real outliers of the same population.
    reference = profile_frame(_population(1_000, seed=0))
    big = _population(200_000, seed=1)
    outlier = float(big["income"].max())  # a real, very rare value of the population
    for seed in range(5):
        batch = _population(90, seed=10 + seed).with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(outlier)
            .otherwise(pl.col("income"))
            .alias("income")
        )
        result = check_ranges(batch, reference)
        assert not result.blocking, result.render_text()
        assert 0 in result.flagged_rows and "probability in a clean batch" in result.details[0]


def test_many_rows_far_beyond_the_reference_block_with_a_p_value() -> None:
    reference = profile_frame(_population(1_000, seed=0))
    batch = _population(200, seed=3).with_columns(
        pl.when(pl.int_range(pl.len()) < 20)
        .then(pl.col("score") + 500)
        .otherwise(pl.col("score"))
        .alias("score")
    )
    result = check_ranges(batch, reference)
    assert result.blocking and not result.passed
    assert result.decision is not None and result.decision.p_value is not None
    assert result.decision.p_value < QualityPolicy().alpha


def test_clean_batches_of_any_size_pass_the_range_check() -> None:
    reference = profile_frame(_population(1_000, seed=0))
    for seed, m in enumerate((90, 1_000, 20_000)):
        assert not check_ranges(_population(m, seed=20 + seed), reference).blocking


def test_verdict_separates_poisoning_from_contract_and_quality() -> None:
    poison = CheckResult("label_flips", "poisoning", False, True, "flips", flagged_rows=(4, 9))
    contract = CheckResult("data_contract", "quality", False, True, "contract")
    quality = CheckResult("range", "quality", False, True, "range")
    warn = CheckResult("null_rate_jump", "quality", False, False, "nulls")
    assert AuditReport.of(10, [warn]).verdict.value == "accepted"
    assert AuditReport.of(10, [quality, warn]).verdict.value == "quality_violation"
    assert AuditReport.of(10, [contract, quality]).verdict.value == "contract_violation"
    report = AuditReport.of(10, [contract, poison])
    assert report.verdict.value == "poisoning_suspected"
    d = report.to_dict()
    assert d["verdict"] == "poisoning_suspected" and d["poisoning_rows"] == [4, 9]
    assert d["reasons"]["contract_violation"] == ["data_contract"]  # type: ignore[index]
    assert "QUARANTINE (poisoning_suspected)" in report.render_text()
