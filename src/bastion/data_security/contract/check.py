"""Check one batch against a data contract, naming violating columns and rows.

Every rule becomes a boolean polars expression ("this row violates rule R of
column C"); all are evaluated in one ``select`` so the check is vectorised
and parallel.  Column-level problems (missing / extra columns, dtype
mismatches, row-count bounds) are reported as details.

Example::

    result = check_contract(batch, contract)
    if not result.passed:
        print(result.render_text())       # names columns, counts and rows
"""

from __future__ import annotations

import polars as pl

from bastion.data_security.checks.report import CheckResult, MetricValue
from bastion.data_security.contract.model import ColumnContract, DataContract
from bastion.data_security.profile import LogicalType, logical_type

_TARGET: dict[LogicalType, pl.DataType] = {
    LogicalType.INTEGER: pl.Int64(),
    LogicalType.FLOAT: pl.Float64(),
    LogicalType.BOOLEAN: pl.Boolean(),
    LogicalType.STRING: pl.String(),
    LogicalType.DATE: pl.Date(),
    LogicalType.DATETIME: pl.Datetime("us"),
}


def _as_contract_type(col: ColumnContract, actual: LogicalType) -> tuple[pl.Expr, pl.Expr | None]:
    """(value expr in the contract's type, expr flagging rows that do not convert)."""
    src = pl.col(col.name)
    if actual == col.logical or col.logical == LogicalType.OTHER:
        return src, None
    if actual == LogicalType.INTEGER and col.logical == LogicalType.FLOAT:
        return src.cast(pl.Float64), None
    if actual == LogicalType.FLOAT and col.logical == LogicalType.INTEGER:
        # A strict cast would truncate 1.5 to 1; non-integral values are violations.
        bad = src.is_not_null() & (~src.is_finite() | (src.round(0) != src))
        return pl.when(bad).then(None).otherwise(src).cast(pl.Int64, strict=False), bad
    target = _TARGET[col.logical]
    if actual == LogicalType.STRING and col.logical in (LogicalType.INTEGER, LogicalType.FLOAT):
        converted = src.str.strip_chars().cast(target, strict=False)
    else:
        converted = src.cast(target, strict=False)
    return converted, src.is_not_null() & converted.is_null()


def _rules(col: ColumnContract, actual: LogicalType) -> list[tuple[str, pl.Expr]]:
    value, bad_type = _as_contract_type(col, actual)
    rules: list[tuple[str, pl.Expr]] = []
    if bad_type is not None:
        rules.append(("type_mismatch", bad_type))
    if not col.nullable:
        rules.append(("null", pl.col(col.name).is_null()))
    if col.minimum is not None:
        rules.append(("below_min", value < col.minimum))
    if col.maximum is not None:
        rules.append(("above_max", value > col.maximum))
    if col.allowed is not None:
        rules.append(("unknown_category", value.is_not_null() & ~value.is_in(list(col.allowed))))
    if col.unique:
        rules.append(("duplicate", value.is_not_null() & value.is_duplicated()))
    return rules


_RULE_TEXT = {
    "type_mismatch": "values not convertible to {type}",
    "null": "nulls in a non-nullable column",
    "below_min": "values below min {min}",
    "above_max": "values above max {max}",
    "unknown_category": "values outside the allowed categories",
    "duplicate": "duplicate values in a unique column",
}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def check_contract(
    df: pl.DataFrame,
    contract: DataContract,
    *,
    blocking: bool = True,
    max_flagged: int = 1000,
) -> CheckResult:
    """Check ``df`` against ``contract``; the result names columns, rule counts and rows.

    ``flagged_rows`` holds at most ``max_flagged`` row indices (the first ones);
    ``metrics["flagged_total"]`` is the full count.
    """
    details: list[str] = []
    metrics: dict[str, MetricValue] = {"contract_version": contract.version, "rows": df.height}
    schema = df.schema
    expected = [c.name for c in contract.columns]
    missing = [n for n in expected if n not in schema]
    extra = [n for n in schema if contract.column(n) is None]
    for name in missing:
        details.append(f"column {name!r}: missing from the batch")
    if extra and not contract.allow_extra_columns:
        details.append(f"unexpected columns not in the contract: {', '.join(map(repr, extra))}")
    if contract.min_rows is not None and df.height < contract.min_rows:
        details.append(f"row count {df.height} is below the contract minimum {contract.min_rows}")
    if contract.max_rows is not None and df.height > contract.max_rows:
        details.append(f"row count {df.height} is above the contract maximum {contract.max_rows}")

    masks: list[pl.Expr] = []
    labels: list[tuple[ColumnContract, str]] = []
    for col in contract.columns:
        if col.name not in schema:
            continue
        actual = logical_type(schema[col.name])
        if actual != col.logical and not (
            actual == LogicalType.INTEGER and col.logical == LogicalType.FLOAT
        ):
            details.append(
                f"column {col.name!r}: type is {actual.value} ({schema[col.name]}), "
                f"contract says {col.logical.value}"
            )
        for rule, expr in _rules(col, actual):
            masks.append(expr.fill_null(False).alias(f"m{len(masks)}"))
            labels.append((col, rule))

    flagged: list[int] = []
    total_flagged = 0
    if masks:
        mask_df = df.select(masks)
        counts = mask_df.sum().row(0)
        for (col, rule), count in zip(labels, counts, strict=True):
            if not count:
                continue
            metrics[f"{col.name}.{rule}"] = int(count)
            text = _RULE_TEXT[rule].format(
                type=col.logical.value, min=_fmt(col.minimum), max=_fmt(col.maximum)
            )
            details.append(f"column {col.name!r}: {int(count)} {text}")
        any_bad = mask_df.select(pl.any_horizontal(pl.all()).arg_true()).to_series()
        total_flagged = any_bad.len()
        flagged = any_bad.head(max_flagged).to_list()
    metrics["flagged_total"] = total_flagged
    passed = not details
    summary = (
        f"batch satisfies contract v{contract.version}"
        if passed
        else f"{len(details)} contract violation(s), {total_flagged} row(s) affected"
    )
    return CheckResult(
        name="data_contract",
        category="quality",
        passed=passed,
        blocking=blocking,
        summary=summary,
        metrics=metrics,
        flagged_rows=tuple(flagged),
        details=tuple(details),
    )


__all__ = ["check_contract"]
