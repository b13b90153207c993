"""Type inference from text and the per-cell checks every format shares.

All checks are vectorised polars operations over a whole block; only the *first*
problem (in row order, then column order) is reported, so errors are deterministic.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NoReturn

import polars as pl

from bastion.data_security.errors import (
    FormulaInjection,
    MixedTypeColumn,
    NonFiniteValue,
    OversizedValue,
    TableReadError,
)
from bastion.data_security.readers.types import Column, LogicalType, ReadOptions, TableSchema

_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_LEADING_ZERO_RE = r"^[+-]?0\d"
# OWASP "CSV injection": a spreadsheet evaluates cells starting with these characters.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NON_FINITE_WORDS = frozenset({"nan", "inf", "infinity"})
#: blocks at least this long have their columns checked on up to _CHECK_THREADS threads
_THREADED_ROWS = 20_000
_CHECK_THREADS = 4


class ProblemKind(enum.Enum):
    MIXED_TYPE = "mixed_type"
    NON_FINITE = "non_finite"
    FORMULA = "formula"
    OVERSIZED = "oversized"


@dataclass(frozen=True)
class CellProblem:
    """The first bad cell of a block: 0-based ``row`` inside the block."""

    row: int
    column: str
    kind: ProblemKind
    value: str
    type: LogicalType


def infer_text_type(sample: pl.Series) -> LogicalType:
    """The narrowest logical type every non-null text value of ``sample`` fits."""
    values = sample.drop_nulls()
    if values.len() == 0:
        return LogicalType.STRING
    as_int = values.cast(pl.Int64, strict=False)
    if bool((as_int.cast(pl.String) == values).fill_null(False).all()):
        return LogicalType.INT
    if values.cast(pl.Float64, strict=False).null_count() == 0 and not bool(
        values.str.contains(_LEADING_ZERO_RE).any()
    ):
        return LogicalType.FLOAT
    if bool(values.str.to_lowercase().is_in(["true", "false"]).all()):
        return LogicalType.BOOL
    if bool(values.str.contains(_DATE_RE).all()) and _to_date(values).null_count() == 0:
        return LogicalType.DATE
    if bool(values.str.contains(_DATETIME_RE).all()) and _to_datetime(values).null_count() == 0:
        return LogicalType.DATETIME
    return LogicalType.STRING


def _to_date(raw: pl.Series) -> pl.Series:
    return raw.str.to_date("%Y-%m-%d", strict=False)


def _to_datetime(raw: pl.Series) -> pl.Series:
    frame = pl.DataFrame({"r": raw})
    return frame.select(
        pl.coalesce(
            pl.col("r").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False),
            pl.col("r").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False),
        )
    ).to_series()


def convert_text(raw: pl.Series, target: LogicalType) -> tuple[pl.Series, pl.Series | None]:
    """Convert text to ``target``; returns the column and a mask of values that do not fit.

    Integers must round-trip exactly (``007`` or ``+5`` do not fit an int column: they
    would silently lose their text); floats must parse; booleans are true/false.
    """
    name = raw.name
    if target is LogicalType.STRING:
        return raw, None
    if target is LogicalType.INT:
        conv = raw.cast(pl.Int64, strict=False)
        bad = (conv.cast(pl.String) != raw).fill_null(True) & raw.is_not_null()
        return conv.alias(name), bad
    if target is LogicalType.FLOAT:
        conv = raw.cast(pl.Float64, strict=False)
    elif target is LogicalType.BOOL:
        conv = raw.str.to_lowercase().replace_strict(
            {"true": True, "false": False}, default=None, return_dtype=pl.Boolean
        )
    elif target is LogicalType.DATE:
        conv = _to_date(raw)
    else:
        conv = _to_datetime(raw)
    bad = conv.is_null() & raw.is_not_null()
    return conv.alias(name), bad


def _first(mask: pl.Series | None) -> int | None:
    if mask is None:
        return None
    mask = mask.fill_null(False)
    if not bool(mask.any()):
        return None
    return int(mask.arg_max() or 0)


def formula_mask(values: pl.Series) -> pl.Series:
    """Cells a spreadsheet would evaluate: a formula prefix that is not a plain number."""
    candidates = values.str.slice(0, 1).is_in(list(FORMULA_PREFIXES)).fill_null(False)
    if not bool(candidates.any()):
        return candidates
    numeric = values.cast(pl.Float64, strict=False).is_not_null()
    return candidates & ~numeric


def _check_column(
    raw: pl.DataFrame,
    col: Column,
    options: ReadOptions,
    text_columns: Collection[str],
) -> tuple[pl.Series, list[tuple[int, ProblemKind]]]:
    """One column of ``check_block``: the converted column and the first row of each problem."""
    series = raw.get_column(col.name)
    masks: list[tuple[ProblemKind, pl.Series | None]] = []
    if series.dtype == pl.String:
        masks.append((ProblemKind.OVERSIZED, series.str.len_bytes() > options.max_cell_bytes))
    if col.name in text_columns and col.type is not LogicalType.STRING:
        series, bad = convert_text(series, col.type)
        masks.append((ProblemKind.MIXED_TYPE, bad))
    elif series.dtype != col.type.polars_dtype():
        series = series.cast(col.type.polars_dtype())
    if col.type is LogicalType.FLOAT and not options.allow_non_finite:
        masks.append((ProblemKind.NON_FINITE, series.is_nan() | series.is_infinite()))
    if col.type is LogicalType.STRING and not options.unsafe_allow_formula_cells:
        masks.append((ProblemKind.FORMULA, formula_mask(series)))
    found: list[tuple[int, ProblemKind]] = []
    for kind, mask in masks:
        row = _first(mask)
        if row is not None:
            found.append((row, kind))
    return series, found


def check_block(
    raw: pl.DataFrame,
    schema: TableSchema,
    options: ReadOptions,
    text_columns: Collection[str],
) -> tuple[pl.DataFrame, CellProblem | None]:
    """Convert the ``text_columns`` of ``raw`` and check every cell.

    Returns the block with the schema's dtypes and the first problem found (if any).
    Columns are checked on threads (polars releases the GIL): each column's result
    is the same as alone, and the first problem is chosen in row, then column order.
    """
    columns = schema.columns
    threads = min(_CHECK_THREADS, len(columns), os.cpu_count() or 1)
    if threads > 1 and raw.height >= _THREADED_ROWS:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            done = list(pool.map(lambda c: _check_column(raw, c, options, text_columns), columns))
    else:
        done = [_check_column(raw, c, options, text_columns) for c in columns]
    out = [series for series, _ in done]
    # ties on a cell keep the order the checks ran in (oversized, type, non-finite, formula)
    found = [
        (row, index, kind, col.name, col.type)
        for index, (col, (_, problems)) in enumerate(zip(columns, done, strict=True))
        for row, kind in problems
    ]
    if not found:
        return pl.DataFrame(out), None
    row, _, kind, name, ltype = min(found, key=lambda f: (f[0], f[1]))
    cell = raw.get_column(name)[row]
    return pl.DataFrame(out), CellProblem(row, name, kind, _show(cell), ltype)


def _show(value: object, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


_SEEN = {
    LogicalType.INT: "integers",
    LogicalType.FLOAT: "numbers",
    LogicalType.BOOL: "true/false values",
    LogicalType.DATE: "dates (YYYY-MM-DD)",
    LogicalType.DATETIME: "date-times (YYYY-MM-DDTHH:MM:SS)",
    LogicalType.STRING: "text",
}


def describe(problem: CellProblem, options: ReadOptions, declared: bool) -> tuple[str, str]:
    """(what, hint) for a cell problem, in words a data engineer acts on."""
    v, col = problem.value, problem.column
    if problem.kind is ProblemKind.MIXED_TYPE:
        where = (f"where the declared type is {problem.type.value}" if declared
                 else f"where {_SEEN[problem.type]} were seen")
        return (f"mixed-type column {col!r}: has {v!r} {where}",
                f"clean the file or declare the column as string "
                f"(ReadOptions.column_types={{{col!r}: LogicalType.STRING}})")
    if problem.kind is ProblemKind.NON_FINITE:
        word = v.strip().lstrip("+-").lower()
        what = ("is not a finite number" if word in _NON_FINITE_WORDS
                else "overflows a 64-bit float (becomes infinity)")
        return (f"numeric column {col!r} has {v!r}, which {what}",
                "replace it with an empty cell (missing value) or a real number; "
                "set allow_non_finite=True only if NaN/inf are meaningful")
    if problem.kind is ProblemKind.FORMULA:
        return (f"cell {v!r} starts like a spreadsheet formula (CSV/formula injection)",
                "remove the leading = + - @ character, or read with "
                "unsafe_allow_formula_cells=True to keep it as plain text")
    return (f"cell is longer than the limit of {options.max_cell_bytes} bytes",
            "raise ReadOptions.max_cell_bytes if such large cells are expected")


_ERROR_FOR: dict[ProblemKind, type[TableReadError]] = {
    ProblemKind.MIXED_TYPE: MixedTypeColumn,
    ProblemKind.NON_FINITE: NonFiniteValue,
    ProblemKind.FORMULA: FormulaInjection,
    ProblemKind.OVERSIZED: OversizedValue,
}


def raise_problem(
    problem: CellProblem,
    options: ReadOptions,
    path: str,
    *,
    line: int | None = None,
    row_group: int | None = None,
    row: int | None = None,
) -> NoReturn:
    """Raise the typed error for ``problem`` at the given location."""
    what, hint = describe(problem, options, problem.column in options.column_types)
    raise _ERROR_FOR[problem.kind](what, path=path, line=line, column=problem.column,
                                   row_group=row_group, row=row, hint=hint)
