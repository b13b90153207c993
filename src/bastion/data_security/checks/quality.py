"""Data-quality checks beyond the contract, against a reference profile.

- ``check_null_rates``  — a column's null rate jumped vs the reference
- ``check_ranges``      — numeric values outside the reference range (plus a margin)
- ``check_duplicates``  — exact duplicate rows within the batch (later copies flagged)
- ``check_coercion``    — numbers stored as strings / values that fail to convert
- ``check_row_count``   — batch size far from the history of accepted batches

Thresholds come from a frozen :class:`QualityPolicy`; a failure above the
``block`` threshold is blocking, above ``warn`` a warning.

Example::

    results = run_quality_checks(batch, reference_profile, history=(10_000, 9_800))
    report = AuditReport.of(batch.height, results)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.errors import AuditConfigError
from bastion.data_security.profile import DatasetProfile, LogicalType, logical_type

_CATEGORY = "quality"


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds for the quality checks (fractions are of the batch's rows)."""

    null_rate_warn_increase: float = 0.05
    null_rate_block_increase: float = 0.20
    #: allowed overshoot beyond the reference [min, max], as a fraction of its width
    range_margin: float = 0.1
    range_block_fraction: float = 0.01
    duplicate_block_fraction: float = 0.05
    coercion_block_fraction: float = 0.01
    #: a string column is "numbers as strings" when this share of values parses
    numeric_string_share: float = 0.95
    row_count_warn_ratio: float = 3.0
    row_count_block_ratio: float = 10.0
    max_flagged: int = 1000

    def __post_init__(self) -> None:
        for name in (
            "null_rate_warn_increase",
            "null_rate_block_increase",
            "range_margin",
            "range_block_fraction",
            "duplicate_block_fraction",
            "coercion_block_fraction",
            "numeric_string_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 and name != "range_margin":
                raise AuditConfigError(f"QualityPolicy.{name} must be in [0, 1], got {value}")
        if self.row_count_warn_ratio < 1 or self.row_count_block_ratio < 1:
            raise AuditConfigError("QualityPolicy row-count ratios must be >= 1")


def _rows(mask: pl.Series, cap: int) -> tuple[tuple[int, ...], int]:
    idx = mask.fill_null(False).arg_true()
    return tuple(idx.head(cap).to_list()), idx.len()


def _result(
    name: str,
    *,
    warn: bool,
    block: bool,
    summary: str,
    metrics: dict[str, MetricValue],
    rows: tuple[int, ...] = (),
    details: Sequence[str] = (),
) -> CheckResult:
    return CheckResult(
        name=name,
        category=_CATEGORY,
        passed=not (warn or block),
        blocking=block,
        summary=summary,
        metrics=metrics,
        flagged_rows=rows,
        details=tuple(details),
    )


def check_null_rates(
    df: pl.DataFrame, reference: DatasetProfile, policy: QualityPolicy | None = None
) -> CheckResult:
    """Flag columns whose null rate rose vs the reference (and the rows with those nulls)."""
    policy = policy or QualityPolicy()
    nulls = df.null_count().row(0, named=True) if df.width else {}
    details: list[str] = []
    metrics: dict[str, MetricValue] = {}
    jumped: list[str] = []
    block = False
    n = max(df.height, 1)
    for name, count in nulls.items():
        ref = reference.get(name)
        if ref is None:
            continue
        rate, base = count / n, ref.null_rate
        # A jump must also be statistically real, not the noise of a tiny batch.
        sd = math.sqrt(max(base, 1.0 / max(ref.count, 1)) * (1 - base) / n)
        if rate - base < policy.null_rate_warn_increase or rate - base < 3 * sd:
            continue
        metrics[f"{name}.null_rate"] = rate
        metrics[f"{name}.reference_null_rate"] = base
        details.append(f"column {name!r}: null rate {base:.1%} -> {rate:.1%}")
        jumped.append(name)
        block = block or rate - base >= policy.null_rate_block_increase
    rows: tuple[int, ...] = ()
    if jumped:
        rows, total = _rows(
            df.select(pl.any_horizontal(pl.col(jumped).is_null())).to_series(), policy.max_flagged
        )
        metrics["flagged_total"] = total
    summary = (
        f"null rate jumped in {len(jumped)} column(s)"
        if jumped
        else "null rates in line with the reference"
    )
    return _result(
        "null_rate_jump",
        warn=bool(jumped),
        block=block,
        summary=summary,
        metrics=metrics,
        rows=rows,
        details=details,
    )


def check_ranges(
    df: pl.DataFrame, reference: DatasetProfile, policy: QualityPolicy | None = None
) -> CheckResult:
    """Flag numeric values outside the reference [min, max] widened by the margin."""
    policy = policy or QualityPolicy()
    masks: list[pl.Expr] = []
    bounds: list[tuple[str, float, float]] = []
    for name, dtype in df.schema.items():
        ref = reference.get(name)
        lt = logical_type(dtype)
        if (
            ref is None
            or ref.numeric is None
            or ref.looks_like_identifier
            or lt not in (LogicalType.INTEGER, LogicalType.FLOAT)
        ):
            # Identifiers grow batch after batch; their range says nothing.
            continue
        lo, hi = ref.numeric.moments.minimum, ref.numeric.moments.maximum
        if lo is None or hi is None:
            continue
        pad = (hi - lo) * policy.range_margin
        lo, hi = lo - pad, hi + pad
        x = pl.col(name).cast(pl.Float64)
        masks.append(((x < lo) | (x > hi)).fill_null(False).alias(name))
        bounds.append((name, lo, hi))
    if not masks:
        return _result(
            "range",
            warn=False,
            block=False,
            metrics={},
            summary="no numeric columns to compare with the reference",
        )
    mask_df = df.select(masks)
    counts = mask_df.sum().row(0, named=True)
    details: list[str] = []
    metrics: dict[str, MetricValue] = {}
    for name, lo, hi in bounds:
        if counts[name]:
            metrics[f"{name}.out_of_range"] = int(counts[name])
            details.append(
                f"column {name!r}: {counts[name]} value(s) outside "
                f"[{lo:.6g}, {hi:.6g}] (reference range plus margin)"
            )
    rows, total = _rows(mask_df.select(pl.any_horizontal(pl.all())).to_series(), policy.max_flagged)
    metrics["flagged_total"] = total
    fraction = total / max(df.height, 1)
    metrics["fraction"] = fraction
    summary = (
        f"{total} row(s) with values outside the reference range"
        if total
        else "values within the reference ranges"
    )
    return _result(
        "range",
        warn=total > 0,
        block=fraction > policy.range_block_fraction,
        summary=summary,
        metrics=metrics,
        rows=rows,
        details=details,
    )


def check_duplicates(df: pl.DataFrame, policy: QualityPolicy | None = None) -> CheckResult:
    """Flag exact duplicate rows; the first occurrence is kept, later copies flagged."""
    policy = policy or QualityPolicy()
    if df.height == 0 or df.width == 0:
        return _result(
            "duplicate_rows",
            warn=False,
            block=False,
            metrics={"duplicates": 0},
            summary="empty batch",
        )
    mask = df.select(~pl.struct(pl.all()).is_first_distinct()).to_series()
    rows, total = _rows(mask, policy.max_flagged)
    fraction = total / df.height
    metrics: dict[str, MetricValue] = {
        "duplicates": total,
        "fraction": fraction,
        "flagged_total": total,
    }
    summary = (
        f"{total} duplicate row(s) ({fraction:.2%} of the batch)" if total else "no duplicate rows"
    )
    return _result(
        "duplicate_rows",
        warn=total > 0,
        block=fraction > policy.duplicate_block_fraction,
        summary=summary,
        metrics=metrics,
        rows=rows,
    )


def check_coercion(
    df: pl.DataFrame, reference: DatasetProfile | None = None, policy: QualityPolicy | None = None
) -> CheckResult:
    """Flag string values that fail to convert where the column is (or should be) numeric.

    A string column is checked when the reference says it is numeric, or when
    most of its values parse as numbers (numbers stored as strings).
    """
    policy = policy or QualityPolicy()
    strings = [n for n, d in df.schema.items() if logical_type(d) == LogicalType.STRING]
    if not strings:
        return _result("coercion", warn=False, block=False, metrics={}, summary="no string columns")
    parsed = [
        pl.col(n).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False) for n in strings
    ]
    fails = df.select(
        [
            (pl.col(n).is_not_null() & p.is_null()).alias(n)
            for n, p in zip(strings, parsed, strict=True)
        ]
    )
    fail_counts = fails.sum().row(0, named=True)
    present = df.select([pl.col(n).is_not_null().sum() for n in strings]).row(0, named=True)
    details: list[str] = []
    metrics: dict[str, MetricValue] = {}
    bad: list[str] = []
    for name in strings:
        ref = reference.get(name) if reference else None
        expect_numeric = ref is not None and ref.logical.is_numeric
        n_present, n_fail = present[name], fail_counts[name]
        share = 1 - n_fail / n_present if n_present else 0.0
        if not n_fail or not (expect_numeric or share >= policy.numeric_string_share):
            if expect_numeric and n_present:
                details.append(
                    f"column {name!r}: numeric in the reference, strings in the "
                    "batch (all values convert)"
                )
            continue
        bad.append(name)
        metrics[f"{name}.coercion_failures"] = int(n_fail)
        why = "numeric in the reference" if expect_numeric else f"{share:.1%} parse as numbers"
        details.append(f"column {name!r}: {n_fail} value(s) do not convert to a number ({why})")
    rows: tuple[int, ...] = ()
    total = 0
    if bad:
        rows, total = _rows(fails.select(pl.any_horizontal(bad)).to_series(), policy.max_flagged)
    metrics["flagged_total"] = total
    fraction = total / max(df.height, 1)
    summary = (
        f"{total} row(s) with values that fail numeric conversion"
        if total
        else "no coercion failures"
    )
    return _result(
        "coercion",
        warn=bool(details),
        block=fraction > policy.coercion_block_fraction,
        summary=summary,
        metrics=metrics,
        rows=rows,
        details=details,
    )


def check_row_count(
    row_count: int, history: Sequence[int], policy: QualityPolicy | None = None
) -> CheckResult:
    """Compare a batch's row count with the median of previously accepted batches."""
    policy = policy or QualityPolicy()
    metrics: dict[str, MetricValue] = {"rows": row_count, "history_batches": len(history)}
    if not history:
        return _result(
            "row_count",
            warn=False,
            block=False,
            metrics=metrics,
            summary=f"{row_count} rows (no history to compare)",
        )
    median = float(statistics.median(history))
    ratio = row_count / median if median > 0 else math.inf
    metrics.update(history_median=median, ratio=ratio)
    off = max(ratio, 1 / ratio) if ratio > 0 else math.inf
    summary = f"{row_count} rows vs a median of {median:.0f} ({ratio:.2f}x)"
    return _result(
        "row_count",
        warn=off >= policy.row_count_warn_ratio,
        block=off >= policy.row_count_block_ratio,
        summary=summary,
        metrics=metrics,
    )


def run_quality_checks(
    df: pl.DataFrame,
    reference: DatasetProfile | None = None,
    *,
    policy: QualityPolicy | None = None,
    history: Sequence[int] = (),
) -> tuple[CheckResult, ...]:
    """All quality checks; those needing a reference are skipped without one."""
    policy = policy or QualityPolicy()
    results = [
        check_duplicates(df, policy),
        check_coercion(df, reference, policy),
        check_row_count(df.height, history, policy),
    ]
    if reference is not None:
        results[:0] = [check_null_rates(df, reference, policy), check_ranges(df, reference, policy)]
    return tuple(results)


__all__ = [
    "QualityPolicy",
    "check_coercion",
    "check_duplicates",
    "check_null_rates",
    "check_ranges",
    "check_row_count",
    "run_quality_checks",
]
