"""Data-quality checks beyond the contract, against a reference profile.

- ``check_null_rates``  — a column's null rate jumped vs the reference
- ``check_ranges``      — numeric values beyond the reference's extremes
- ``check_duplicates``  — exact duplicate rows within the batch (later copies flagged)
- ``check_coercion``    — numbers stored as strings / values that fail to convert
- ``check_row_count``   — batch size far from the history of accepted batches

Thresholds come from a frozen :class:`QualityPolicy`; a failure above the
``block`` threshold is blocking, above ``warn`` a warning.  The statistical
checks (null rates, ranges) block only when their p-value — the probability of
so extreme a batch from the trusted population, with the reference's own
sampling noise accounted for, Bonferroni-corrected over the columns — is below
the policy's per-check level (its share of ``false_quarantine_target``), and
the effect is large enough to matter.

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
from scipy import stats as sps

from bastion.data_security.checks.report import (
    FALSE_QUARANTINE_TARGET,
    CheckResult,
    Decision,
    MetricValue,
    check_alpha,
)
from bastion.data_security.errors import AuditConfigError
from bastion.data_security.profile import DatasetProfile, LogicalType, logical_type
from bastion.data_security.stats.tails import TailFit, count_p_value

_CATEGORY = "quality"


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds for the quality checks (fractions are of the batch's rows)."""

    null_rate_warn_increase: float = 0.05
    null_rate_block_increase: float = 0.20
    #: values beyond the reference [min, max] widened by this fraction of its width are
    #: flagged (a warning); blocking needs the range test's p-value below ``alpha``
    range_margin: float = 0.1
    #: effect floor: the range check blocks only when more than this share of rows is
    #: beyond the reference extremes (and the excursion is improbable)
    range_block_fraction: float = 0.01
    #: per-batch false-quarantine target on clean data, split among the statistical checks
    false_quarantine_target: float = FALSE_QUARANTINE_TARGET
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
            "false_quarantine_target",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 and name != "range_margin":
                raise AuditConfigError(f"QualityPolicy.{name} must be in [0, 1], got {value}")
        if self.row_count_warn_ratio < 1 or self.row_count_block_ratio < 1:
            raise AuditConfigError("QualityPolicy row-count ratios must be >= 1")
        if self.false_quarantine_target <= 0:
            raise AuditConfigError("QualityPolicy.false_quarantine_target must be > 0")

    @property
    def alpha(self) -> float:
        """The level of each statistical quality test (its share of the batch target)."""
        return check_alpha(self.false_quarantine_target)


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
    decision: Decision | None = None,
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
        decision=decision,
    )


def check_null_rates(
    df: pl.DataFrame, reference: DatasetProfile, policy: QualityPolicy | None = None
) -> CheckResult:
    """Flag columns whose null rate rose vs the reference (and the rows with those nulls).

    Per column, the batch's null count is tested against the reference's null
    rate with its own uncertainty (beta-binomial: the reference saw
    ``null_count`` nulls in ``count`` rows); the smallest p-value, Bonferroni
    over the columns, must be below ``policy.alpha`` for a jump to block.
    """
    policy = policy or QualityPolicy()
    nulls = df.null_count().row(0, named=True) if df.width else {}
    details: list[str] = []
    metrics: dict[str, MetricValue] = {}
    jumped: list[str] = []
    big: list[float] = []
    n = max(df.height, 1)
    tested = [name for name in nulls if reference.get(name) is not None]
    for name in tested:
        ref = reference.column(name)
        count = nulls[name]
        rate, base = count / n, ref.null_rate
        if not count or rate - base < policy.null_rate_warn_increase:
            continue
        p = float(sps.betabinom.sf(count - 1, n, ref.null_count + 1, ref.non_null + 1))
        p_adj = min(1.0, p * len(tested))
        if p_adj >= 0.05:
            continue  # within the noise of a small batch or a small reference
        metrics[f"{name}.null_rate"] = rate
        metrics[f"{name}.reference_null_rate"] = base
        metrics[f"{name}.p_value"] = p_adj
        details.append(f"column {name!r}: null rate {base:.1%} -> {rate:.1%} (p {p_adj:.3g})")
        jumped.append(name)
        if rate - base >= policy.null_rate_block_increase:
            big.append(p_adj)
    p_min = min(big, default=1.0)
    block = p_min < policy.alpha
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
        decision=Decision("min_p_bonferroni", p_min, p_min, policy.alpha, policy.alpha),
    )


def check_ranges(
    df: pl.DataFrame, reference: DatasetProfile, policy: QualityPolicy | None = None
) -> CheckResult:
    """Flag numeric values beyond the reference's extremes; block only when improbable.

    Rows beyond the reference [min, max] widened by ``range_margin`` are
    flagged (a warning).  Per column and side, the number of values beyond the
    extreme (exact exchangeability probability) and the farthest one (the
    reference's fitted tail) give a p-value (see ``stats.tails``); the
    smallest, Bonferroni over all sides tested, blocks when below
    ``policy.alpha`` and more than ``range_block_fraction`` of the rows are
    beyond the extremes.  A real outlier of the trusted population is a warning.
    """
    policy = policy or QualityPolicy()
    sides: list[tuple[str, TailFit, bool]] = []
    masks: list[pl.Expr] = []
    exprs: list[pl.Expr] = []
    for name, dtype in df.schema.items():
        ref = reference.get(name)
        if (
            ref is None
            or ref.numeric is None
            or ref.looks_like_identifier
            or logical_type(dtype) not in (LogicalType.INTEGER, LogicalType.FLOAT)
        ):
            # Identifiers grow batch after batch; their range says nothing.
            continue
        tails = ref.numeric.tails()
        if tails is None:
            continue
        lower, upper = tails
        lo, hi = -lower.edge, upper.edge
        pad = (hi - lo) * policy.range_margin
        x = pl.col(name).cast(pl.Float64)
        masks.append(((x < lo - pad) | (x > hi + pad)).fill_null(False).alias(name))
        k = len(sides)
        exprs += [
            (x < lo).sum().alias(f"c{k}"),
            x.min().alias(f"e{k}"),
            (x > hi).sum().alias(f"c{k + 1}"),
            x.max().alias(f"e{k + 1}"),
            x.is_not_null().sum().alias(f"n{k}"),
            x.is_not_null().sum().alias(f"n{k + 1}"),
        ]
        sides += [(name, lower, False), (name, upper, True)]
    if not masks:
        return _result(
            "range",
            warn=False,
            block=False,
            metrics={},
            summary="no numeric columns to compare with the reference",
        )
    stats = df.select(exprs).row(0, named=True)
    mask_df = df.select(masks)
    details: list[str] = []
    metrics: dict[str, MetricValue] = {}
    p_values: list[float] = []
    beyond = 0
    for k, (name, tail, is_upper) in enumerate(sides):
        count, extreme, m = int(stats[f"c{k}"] or 0), stats[f"e{k}"], int(stats[f"n{k}"] or 0)
        if not count or not isinstance(extreme, int | float):
            continue
        beyond = max(beyond, count)
        far = tail.max_p_value(float(extreme) if is_upper else -float(extreme), m=m)
        p = min(1.0, 2 * min(count_p_value(count, n=tail.n, m=m), far))
        p_values.append(p)
        side = "above the reference maximum" if is_upper else "below the reference minimum"
        edge = tail.edge if is_upper else -tail.edge
        metrics[f"{name}.{'above' if is_upper else 'below'}"] = count
        details.append(
            f"column {name!r}: {count} value(s) {side} {edge:.6g}, farthest {extreme:.6g} "
            f"(probability in a clean batch of {m} rows: {p:.3g})"
        )
    rows, total = _rows(mask_df.select(pl.any_horizontal(pl.all())).to_series(), policy.max_flagged)
    p_batch = min(1.0, min(p_values, default=1.0) * len(sides))
    metrics.update(flagged_total=total, fraction=total / max(df.height, 1), p_value=p_batch)
    block = p_batch < policy.alpha and beyond / max(df.height, 1) > policy.range_block_fraction
    summary = (
        f"{total} row(s) with values outside the reference range (p={p_batch:.3g})"
        if total
        else "values within the reference ranges"
    )
    return _result(
        "range",
        warn=total > 0,
        block=block,
        summary=summary,
        metrics=metrics,
        rows=rows,
        details=details if total else (),
        decision=Decision("min_p_bonferroni", p_batch, p_batch, policy.alpha, policy.alpha),
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
    row_count: int | None = None,
) -> tuple[CheckResult, ...]:
    """All quality checks; those needing a reference are skipped without one.

    ``row_count`` is the whole batch's size when ``df`` is one chunk of it
    (the row-count check judges the batch, not the chunk).
    """
    policy = policy or QualityPolicy()
    results = [
        check_duplicates(df, policy),
        check_coercion(df, reference, policy),
        check_row_count(df.height if row_count is None else row_count, history, policy),
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
