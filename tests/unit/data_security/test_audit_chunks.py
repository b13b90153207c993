"""A chunked audit says what a one-piece audit says: decisions kept, batch-sized checks whole."""

from __future__ import annotations

import numpy as np
import polars as pl

from bastion.data_security.checks.report import CheckResult, Decision
from bastion.data_security.contract import DataContract, check_contract, infer_contract
from bastion.data_security.ingest.audit import AuditInputs, audit_chunks, merge_chunks
from bastion.data_security.ingest.policy import DatasetPolicy
from bastion.data_security.profile import profile_frame

_LINEAGE = CheckResult("source_lineage", "lineage", True, True, "registered source")


def _frame(n: int, seed: int = 0) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    return pl.DataFrame({"age": r.integers(18, 90, n), "income": r.normal(50_000, 5_000, n)})


def _check(passed: bool, p: float, rows: tuple[int, ...] = ()) -> CheckResult:
    return CheckResult(
        "range",
        "quality",
        passed,
        not passed,
        "x",
        flagged_rows=rows,
        decision=Decision("min_p_bonferroni", p, p, 0.001, 0.001),
    )


def test_merged_chunks_keep_the_decision_that_quarantined_the_batch() -> None:
    merged = merge_chunks(
        [(0, [_check(True, 0.4)]), (100, [_check(False, 1e-6, (3,))]), (200, [_check(True, 0.9)])]
    )
    (check,) = merged
    assert not check.passed and check.flagged_rows == (103,)
    assert check.decision is not None and check.decision.p_value == 1e-6
    assert "failed in 1 of 3 chunks" in check.summary


def test_merged_passing_chunks_report_the_most_significant_p_value() -> None:
    (check,) = merge_chunks([(0, [_check(True, 0.4)]), (100, [_check(True, 0.03)])])
    assert check.passed and check.decision is not None and check.decision.p_value == 0.03


def test_chunked_audit_report_carries_per_check_decisions() -> None:
    trusted = _frame(2_000)
    profile = profile_frame(trusted)
    inputs = AuditInputs(
        policy=DatasetPolicy(),
        lineage=_LINEAGE,
        contract=infer_contract(profile),
        reference_profile=profile,
    )
    batch = _frame(900, seed=1)
    report = audit_chunks(batch.iter_slices(300), inputs, total_rows=batch.height)
    decided = {c.name: c.decision for c in report.checks}
    assert decided["data_contract"] is not None and decided["range"] is not None
    assert decided["null_rate_jump"] is not None
    assert report.to_dict()["checks"][1]["decision"] is not None  # type: ignore[index]


def test_a_batch_split_in_chunks_cannot_slip_past_the_contract_row_maximum() -> None:
    # each 300-row chunk is under the steward's 500-row maximum; the 900-row batch is not
    contract = DataContract(
        version=2,
        columns=infer_contract(profile_frame(_frame(500))).columns,
        min_rows=1,
        max_rows=500,
    )
    inputs = AuditInputs(policy=DatasetPolicy(), lineage=_LINEAGE, contract=contract)
    batch = _frame(900, seed=1)
    report = audit_chunks(batch.iter_slices(300), inputs, total_rows=batch.height)
    (check,) = report.by_category("quality")[:1]
    assert check.name == "data_contract" and not check.passed and check.blocking
    assert "row count 900 is above the contract maximum 500" in check.details


def test_row_count_check_judges_the_whole_batch_not_a_chunk() -> None:
    inputs = AuditInputs(policy=DatasetPolicy(), lineage=_LINEAGE, history_rows=(100, 100))
    batch = _frame(1_500, seed=1)
    report = audit_chunks(batch.iter_slices(500), inputs, total_rows=batch.height)
    (rows,) = [c for c in report.checks if c.name == "row_count"]
    assert not rows.passed and rows.blocking and rows.metrics["rows"] == 1_500


def test_inferred_contract_sets_no_row_maximum_from_one_small_first_batch() -> None:
    # a 150-row pilot must not refuse a 5,000-row delivery forever: volume is row_count's job
    contract = infer_contract(profile_frame(_frame(150)))
    assert contract.max_rows is None and contract.min_rows == 1
    assert check_contract(_frame(5_000, seed=2), contract).blocking is False
