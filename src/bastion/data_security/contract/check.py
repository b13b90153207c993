"""Check one batch against a data contract, naming violating columns and rows.

Every rule becomes a boolean polars expression ("this row violates rule R of
column C"); all are evaluated in one ``select`` so the check is vectorised
and parallel.  Column-level problems (missing / extra columns, dtype
mismatches, row-count bounds) are reported as details.

Hard rules (type, nulls, steward-written ``min``/``max``/``allowed_values``,
uniqueness, columns, row counts) block on any violation.  Soft evidence
(``inferred``: what the trusted sample showed) is tested: per column and side,
the number of values beyond the trusted extreme (exact exchangeability
probability) and the farthest one (fitted tail, see ``stats.tails``), and per
category column the number of rows with categories unseen in the sample
(Good-Turing unseen mass with its uncertainty, beta-binomial tail).  The smallest of these p-values,
Bonferroni-corrected over all the soft tests, blocks only below ``alpha``
(default: the batch false-quarantine budget's share, ``checks.report.check_alpha``);
otherwise excursions are a warning that states their probability.

Example::

    result = check_contract(batch, contract)
    if not result.passed:
        print(result.render_text())       # names columns, counts and rows
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from scipy import stats as sps

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue, check_alpha
from bastion.data_security.contract.model import ColumnContract, DataContract, SampleEvidence
from bastion.data_security.profile import LogicalType, logical_type
from bastion.data_security.stats.tails import count_p_value

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


def _soft_rules(col: ColumnContract, actual: LogicalType) -> list[tuple[str, pl.Expr]]:
    ev = col.inferred
    if ev is None:
        return []
    value, _bad = _as_contract_type(col, actual)
    rules: list[tuple[str, pl.Expr]] = []
    if ev.nulls == 0:
        # nulls where the sample had none; a null-rate rise otherwise is `null_rate_jump`'s
        rules.append(("unseen_null", pl.col(col.name).is_null()))
    if ev.observed_min is not None and ev.observed_max is not None:
        rules.append(("below_trusted_min", value < ev.observed_min))
        rules.append(("above_trusted_max", value > ev.observed_max))
    if ev.categories is not None:
        rules.append(("unseen_category", value.is_not_null() & ~value.is_in(list(ev.categories))))
    return rules


@dataclass(frozen=True)
class _Soft:
    """One soft test's outcome: its p-value and the sentence a steward reads."""

    p_value: float
    text: str


def _soft_p(
    ev: SampleEvidence, rule: str, count: int, extreme: float | None, present: int
) -> tuple[float, str]:
    """(p-value, what it means) for ``count`` batch rows breaking a soft rule."""
    if rule == "unseen_null":
        # null rate ~ Beta(1, rows + 1) after a sample without nulls
        p = float(sps.betabinom.sf(count - 1, present, 1, ev.rows + 1))
        return p, f"null, none among the {ev.rows} trusted rows"
    if rule == "unseen_category":
        # The unseen mass is itself uncertain: Beta(singletons + 1, rows - singletons + 1)
        # around the Good-Turing estimate, so the count is beta-binomial, not binomial.
        a, b = ev.singletons + 1, max(ev.rows - ev.singletons, 0) + 1
        p = float(sps.betabinom.sf(count - 1, present, a, b))
        return p, f"categories unseen in the {ev.rows} trusted rows"
    upper = rule == "above_trusted_max"
    tail = ev.upper if upper else ev.lower
    assert tail is not None
    p_count = count_p_value(count, n=ev.rows, m=present)
    p_far = 1.0
    if extreme is not None:
        p_far = tail.max_p_value(extreme if upper else -extreme, m=present)
    edge = ev.observed_max if upper else ev.observed_min
    side = "above the trusted maximum" if upper else "below the trusted minimum"
    far = f"; farthest {extreme:.6g}" if extreme is not None else ""
    # two tests of one excursion: Bonferroni over them
    return min(1.0, 2 * min(p_count, p_far)), f"{side} {_fmt(edge)}{far}"


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
    alpha: float | None = None,
    row_count: int | None = None,
) -> CheckResult:
    """Check ``df`` against ``contract``; the result names columns, rule counts and rows.

    ``flagged_rows`` holds at most ``max_flagged`` row indices (the first ones);
    ``metrics["flagged_total"]`` is the full count.  ``alpha`` is the level of
    the soft tests (default :func:`~bastion.data_security.checks.report.check_alpha`).
    ``row_count`` is the whole batch's size when ``df`` is one chunk of it: the
    contract's row bounds apply to the batch, not to a chunk.
    """
    alpha = check_alpha() if alpha is None else alpha
    rows = df.height if row_count is None else row_count
    details: list[str] = []
    metrics: dict[str, MetricValue] = {"contract_version": contract.version, "rows": rows}
    schema = df.schema
    expected = [c.name for c in contract.columns]
    missing = [n for n in expected if n not in schema]
    extra = [n for n in schema if contract.column(n) is None]
    for name in missing:
        details.append(f"column {name!r}: missing from the batch")
    if extra and not contract.allow_extra_columns:
        details.append(f"unexpected columns not in the contract: {', '.join(map(repr, extra))}")
    if contract.min_rows is not None and rows < contract.min_rows:
        details.append(f"row count {rows} is below the contract minimum {contract.min_rows}")
    if contract.max_rows is not None and rows > contract.max_rows:
        details.append(f"row count {rows} is above the contract maximum {contract.max_rows}")

    masks: list[pl.Expr] = []
    labels: list[tuple[ColumnContract, str]] = []
    soft_masks: list[pl.Expr] = []
    soft_labels: list[tuple[ColumnContract, str, pl.Expr | None]] = []
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
        for rule, expr in _soft_rules(col, actual):
            soft_masks.append(expr.fill_null(False).alias(f"s{len(soft_masks)}"))
            soft_labels.append((col, rule, _extreme_expr(col, actual, rule)))

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
    soft = _evaluate_soft(df, soft_masks, soft_labels, metrics, max_flagged)
    hard = bool(details)
    tests = max(1, len(soft_labels))
    p_batch = min(1.0, min((t.p_value for t in soft.tests), default=1.0) * tests)
    soft_block = p_batch < alpha
    metrics.update(soft_tests=len(soft_labels), soft_p_value=p_batch, alpha=alpha)
    if soft.tests and (soft_block or not hard):
        # rows beyond the sample's extremes are named when they are the finding
        flagged = sorted(set(flagged) | set(soft.rows))[:max_flagged]
        metrics["flagged_total"] = max(total_flagged, soft.total)
    details.extend(t.text for t in soft.tests)
    passed = not details
    if passed:
        summary = f"batch satisfies contract v{contract.version}"
    elif hard:
        summary = f"{len(details)} contract violation(s), {total_flagged} row(s) affected"
    else:
        kind = "improbable" if soft_block else "within sampling noise"
        summary = (
            f"values beyond what the trusted sample showed ({kind}: "
            f"p={p_batch:.3g} over {tests} soft test(s), blocks below {alpha:.3g})"
        )
    return CheckResult(
        name="data_contract",
        category="quality",
        passed=passed,
        blocking=blocking and (hard or soft_block),
        summary=summary,
        metrics=metrics,
        flagged_rows=tuple(flagged),
        details=tuple(details),
        decision=Decision("soft_min_p_bonferroni", p_batch, p_batch, alpha, alpha),
    )


@dataclass(frozen=True)
class _SoftOutcome:
    tests: tuple[_Soft, ...]
    rows: tuple[int, ...]
    total: int


def _extreme_expr(col: ColumnContract, actual: LogicalType, rule: str) -> pl.Expr | None:
    if rule in ("unseen_category", "unseen_null"):
        return None
    value, _bad = _as_contract_type(col, actual)
    x = value.cast(pl.Float64)
    return x.max() if rule == "above_trusted_max" else x.min()


def _evaluate_soft(
    df: pl.DataFrame,
    masks: list[pl.Expr],
    labels: list[tuple[ColumnContract, str, pl.Expr | None]],
    metrics: dict[str, MetricValue],
    max_flagged: int,
) -> _SoftOutcome:
    if not masks:
        return _SoftOutcome((), (), 0)
    mask_df = df.select(masks)
    counts = mask_df.sum().row(0)
    extremes = df.select(
        [
            (e if e is not None else pl.lit(None)).alias(f"e{i}")
            for i, (_, _, e) in enumerate(labels)
        ]
    ).row(0)
    present = df.select(
        [
            (pl.len() if rule == "unseen_null" else pl.col(c.name).is_not_null().sum()).alias(
                f"n{i}"
            )
            for i, (c, rule, _) in enumerate(labels)
        ]
    ).row(0)
    tests: list[_Soft] = []
    for (col, rule, _), count, extreme, m in zip(labels, counts, extremes, present, strict=True):
        if not count:
            continue
        assert col.inferred is not None
        value = float(extreme) if isinstance(extreme, int | float) else None
        p, what = _soft_p(col.inferred, rule, int(count), value, int(m))
        metrics[f"{col.name}.{rule}"] = int(count)
        metrics[f"{col.name}.{rule}.p_value"] = p
        tests.append(
            _Soft(
                p,
                f"column {col.name!r}: {int(count)} value(s) {what} "
                f"(probability in a clean batch of {int(m)} rows: {p:.3g})",
            )
        )
    any_bad = mask_df.select(pl.any_horizontal(pl.all()).arg_true()).to_series()
    return _SoftOutcome(tuple(tests), tuple(any_bad.head(max_flagged).to_list()), any_bad.len())


__all__ = ["check_contract"]
