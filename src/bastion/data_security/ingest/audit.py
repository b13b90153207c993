"""The ingestion audit of one batch: every check, one report.

Checks run per chunk of at most ``chunk_rows`` rows (one chunk for ordinary
batches), so a batch larger than memory is audited in bounded memory; the
results of the chunks are merged per check (a check fails if it failed in
any chunk, flagged rows are re-based onto the whole batch, and the merged
check keeps the decision of its most significant chunk, so a steward still
sees the statistic, threshold and p-value behind a chunked verdict).  Checks
of the batch's size (contract row bounds, ``row_count``) judge the whole
batch's row count, never one chunk's.

Example::

    report = audit_chunks(chunks, AuditInputs(contract=..., policy=DatasetPolicy()))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from bastion.data_security.checks.bias import BiasSpec, SensitiveAttribute, check_bias
from bastion.data_security.checks.bias_stats import BiasBaseline
from bastion.data_security.checks.pii import check_pii
from bastion.data_security.checks.quality import run_quality_checks
from bastion.data_security.checks.report import AuditReport, CheckResult
from bastion.data_security.contract.check import check_contract
from bastion.data_security.contract.model import DataContract
from bastion.data_security.ingest.policy import DatasetPolicy
from bastion.data_security.poisoning import PoisoningReference, RecentWindow, detect_poisoning
from bastion.data_security.profile.dataset import DatasetProfile

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AuditInputs:
    policy: DatasetPolicy
    lineage: CheckResult
    label: str | None = None
    sensitive: tuple[str, ...] = ()
    contract: DataContract | None = None
    reference_profile: DatasetProfile | None = None
    poisoning_reference: PoisoningReference | None = None
    recent: RecentWindow | None = None
    bias_baseline: BiasBaseline | None = None
    history_rows: tuple[int, ...] = ()


def bias_spec(
    policy: DatasetPolicy, label: str | None, sensitive: Sequence[str]
) -> BiasSpec | None:
    if not label or not sensitive:
        return None
    positive = policy.positive_label
    return BiasSpec(
        label=label,
        sensitive=tuple(SensitiveAttribute(name) for name in sensitive),
        positive_label=1 if positive is None else positive,
    )


def audit_frame(
    df: pl.DataFrame,
    inputs: AuditInputs,
    progress: Progress | None = None,
    *,
    batch_rows: int | None = None,
) -> list[CheckResult]:
    """Every check over one in-memory chunk of a batch of ``batch_rows`` rows (default: df's)."""
    tick = progress or (lambda _stage: None)
    results: list[CheckResult] = []
    if inputs.contract is not None:
        results.append(check_contract(df, inputs.contract, row_count=batch_rows))
    tick("quality")
    results.extend(
        run_quality_checks(
            df,
            inputs.reference_profile,
            policy=inputs.policy.quality_policy(),
            history=inputs.history_rows,
            row_count=batch_rows,
        )
    )
    tick("pii")
    results.append(check_pii(df, inputs.policy.pii_policy()))
    spec = bias_spec(inputs.policy, inputs.label, inputs.sensitive)
    if spec is not None:
        tick("bias")
        results.extend(
            check_bias(
                df,
                spec,
                policy=inputs.policy.bias_policy(),
                baseline=inputs.bias_baseline,
                reference=inputs.reference_profile,
            )
        )
    if inputs.poisoning_reference is not None and inputs.label:
        tick("poisoning")
        results.extend(
            detect_poisoning(
                df,
                inputs.poisoning_reference,
                label=inputs.label,
                policy=inputs.policy.poisoning_policy(),
                recent=inputs.recent,
                # each detector reports when it is done: callers see where the time goes
                progress=lambda stage, _done, _total: tick(f"poisoning/{stage}"),
            )
        )
    return results


def merge_chunks(chunks: Sequence[tuple[int, list[CheckResult]]]) -> list[CheckResult]:
    """Merge per-chunk results by check name; ``chunks`` holds (row offset, results)."""
    if len(chunks) == 1 and chunks[0][0] == 0:
        return chunks[0][1]
    order: list[str] = []
    grouped: dict[str, list[tuple[int, CheckResult]]] = {}
    for offset, results in chunks:
        for r in results:
            if r.name not in grouped:
                order.append(r.name)
                grouped[r.name] = []
            grouped[r.name].append((offset, r))
    merged: list[CheckResult] = []
    for name in order:
        parts = grouped[name]
        worst = _worst(r for _, r in parts)
        failed = sum(1 for _, r in parts if not r.passed)
        rows = tuple(off + i for off, r in parts for i in r.flagged_rows)
        merged.append(
            CheckResult(
                name=name,
                category=worst.category,
                passed=failed == 0,
                blocking=any(r.blocking for _, r in parts),
                summary=worst.summary
                + (f" (failed in {failed} of {len(parts)} chunks)" if len(parts) > 1 else ""),
                metrics=worst.metrics,
                flagged_rows=rows,
                details=worst.details,
                decision=worst.decision,
            )
        )
    return merged


def _worst(parts: Iterable[CheckResult]) -> CheckResult:
    """The chunk result that speaks for the merged check.

    A blocking failure first, then any failure, then the smallest p-value: the
    merged check then reports the decision that actually quarantined (or came
    closest to quarantining) the batch.
    """

    def rank(r: CheckResult) -> tuple[int, float]:
        failed = 0 if not r.passed and r.blocking else 1 if not r.passed else 2
        p = r.decision.p_value if r.decision is not None else None
        return failed, 1.0 if p is None else p

    return min(parts, key=rank)


def audit_chunks(
    chunks: Iterable[pl.DataFrame],
    inputs: AuditInputs,
    *,
    total_rows: int,
    progress: Progress | None = None,
) -> AuditReport:
    parts: list[tuple[int, list[CheckResult]]] = []
    offset = 0
    for chunk in chunks:
        parts.append((offset, audit_frame(chunk, inputs, progress, batch_rows=total_rows)))
        offset += chunk.height
    results = [inputs.lineage, *merge_chunks(parts)] if parts else [inputs.lineage]
    return AuditReport.of(total_rows, results)


__all__ = ["AuditInputs", "audit_chunks", "audit_frame", "bias_spec", "merge_chunks"]
