"""Compare a current batch with a stored drift reference.

Each monitored column is tested against its reference summary with the method
``choose_test`` picks (or the policy forces); the prediction column, when the
reference has one and the batch carries it, is compared with the
Jensen-Shannon distance of its distribution.  Columns run in parallel threads:
the heavy steps (sorting, searching, polars value counts) release the GIL.

Example::

    from bastion.model_security.monitoring import DriftPolicy, DriftReference, detect_drift
    reference = DriftReference.from_bytes(stored_bytes)
    report = detect_drift(reference, todays_batch, policy=DriftPolicy(drift_share=0.3))
    print(report.render_text())
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from bastion.data_security.stats import ColumnDrift, ColumnKind, ColumnSummary, compare_column
from bastion.model_security.errors import MonitoringInputInvalid
from bastion.model_security.monitoring.policy import DriftPolicy
from bastion.model_security.monitoring.progress import MonitoringProgress, ProgressCallback
from bastion.model_security.monitoring.reference import DriftReference, kind_of
from bastion.model_security.monitoring.report import DriftReport


def _check_frame(reference: DriftReference, current: pl.DataFrame) -> None:
    if not isinstance(current, pl.DataFrame):
        raise MonitoringInputInvalid(
            f"current batch must be a polars DataFrame, got {type(current).__name__}"
        )
    missing = [c for c in reference.column_names if c not in current.columns]
    if missing:
        # fail closed: a monitored feature that vanished is not "no drift"
        raise MonitoringInputInvalid(
            f"current batch lacks monitored columns {missing}",
            hint="send every feature the reference was built with",
        )
    if current.height == 0:
        raise MonitoringInputInvalid("the current batch is empty")
    for summary in reference.columns:
        dtype = current.schema[summary.name]
        kind = kind_of(dtype, summary.name) if dtype != pl.Null else summary.kind
        if summary.kind is ColumnKind.NUMERIC and kind is not ColumnKind.NUMERIC:
            raise MonitoringInputInvalid(
                f"column {summary.name!r} was numeric in the reference but is {dtype} now",
                hint="cast the batch to the training schema before monitoring",
            )


def _prediction(reference: DriftReference, current: pl.DataFrame,
                policy: DriftPolicy) -> ColumnDrift | None:
    summary = reference.prediction
    if summary is None or summary.name not in current.columns:
        return None
    method = policy.prediction_method
    reason = (
        f"prediction distribution: {method.value} over the reference's "
        + ("score quantile bins" if summary.kind is ColumnKind.NUMERIC else "label frequencies")
        + "; a distance rather than a p-value, so large batches do not flag trivial moves"
        + f" (threshold {policy.prediction_js_threshold:g})"
    )
    return compare_column(summary, current.get_column(summary.name),
                          thresholds=policy.prediction_thresholds, method=method,
                          method_reason=reason)


def detect_drift(
    reference: DriftReference, current: pl.DataFrame, *, policy: DriftPolicy | None = None,
    progress: ProgressCallback | None = None,
) -> DriftReport:
    """Test every monitored column (and the prediction) of ``current`` against ``reference``."""
    policy = policy or DriftPolicy()
    _check_frame(reference, current)
    started = time.perf_counter()
    total = len(reference.columns)

    def one(summary: ColumnSummary) -> ColumnDrift:
        forced = policy.method_overrides.get(summary.name)
        return compare_column(summary, current.get_column(summary.name),
                              thresholds=policy.thresholds, method=forced)

    results: list[ColumnDrift] = []
    with ThreadPoolExecutor(max_workers=policy.workers) as pool:
        for done, result in enumerate(pool.map(one, reference.columns), start=1):
            results.append(result)
            if progress is not None:
                progress(MonitoringProgress("drift", done, total, result.name))
    prediction = _prediction(reference, current, policy)
    return DriftReport(
        features=tuple(results), prediction=prediction, n_reference_rows=reference.n_rows,
        n_current_rows=current.height, policy=policy,
        elapsed_seconds=time.perf_counter() - started,
    )


__all__ = ["detect_drift"]
