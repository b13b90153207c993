"""The exact (slow) JSON Lines path: ``json`` module per line, for inference and errors."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from bastion.core.canonical import nesting_depth
from bastion.data_security.errors import (
    MalformedTable,
    MixedTypeColumn,
    NonFiniteValue,
    TableReadError,
    UnsupportedColumnType,
)
from bastion.data_security.readers._cells import infer_text_type
from bastion.data_security.readers.types import LogicalType, ReadOptions, TableSchema

_INT64 = (-(2**63), 2**63 - 1)


class _Number(float):
    """A float that remembers its JSON text (to name ``1e309`` in an error)."""

    text: str

    def __new__(cls, text: str) -> _Number:
        obj = super().__new__(cls, text)
        obj.text = text
        return obj


def lines_of(first_line: int, chunk: bytes, limit: int | None) -> Iterator[tuple[int, bytes]]:
    """Non-blank ``(line number, bytes)`` of a chunk, at most ``limit`` of them."""
    count = 0
    for number, raw in enumerate(chunk.split(b"\n"), start=first_line):
        if limit is not None and count >= limit:
            return
        if raw.strip():
            count += 1
            yield number, raw


def line_of_row(first_line: int, chunk: bytes, row: int) -> int | None:
    """The line of the ``row``-th (0-based) non-blank line of a chunk."""
    for seen, (number, _raw) in enumerate(lines_of(first_line, chunk, None)):
        if seen == row:
            return number
    return None


def parse_line(number: int, raw: bytes, path: Path, max_depth: int) -> dict[str, object]:
    """One line as a flat JSON object, or a typed error naming the line.

    Nesting deeper than ``max_depth`` is refused before parsing: the ``json`` module
    recurses per level and a 50,000-deep line would end in ``RecursionError``.
    """
    if nesting_depth(raw, max_depth) > max_depth:
        raise UnsupportedColumnType(
            f"the line nests JSON values more than {max_depth} levels deep", path=str(path),
            line=number, hint="each line must be one flat JSON object like {\"col\": value}")
    try:
        value = json.loads(raw, parse_float=_Number)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MalformedTable(f"invalid JSON: {e}", path=str(path), line=number,
                             hint="each line must be one complete JSON object") from e
    if not isinstance(value, dict):
        raise MalformedTable(
            f"the line is a JSON {type(value).__name__}, not an object", path=str(path),
            line=number, hint='each line must be one JSON object like {"col": value}')
    for key, cell in value.items():
        if isinstance(cell, dict | list):
            raise UnsupportedColumnType(
                f"nested JSON {'object' if isinstance(cell, dict) else 'array'} values are "
                "not supported", path=str(path), line=number, column=key,
                hint="flatten nested values first, e.g. jq -c '{a_b: .a.b, ...}', or "
                     "encode them as JSON strings")
    return value


def _kind(value: object) -> LogicalType | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return LogicalType.BOOL
    if isinstance(value, int):
        return LogicalType.INT
    if isinstance(value, float):
        return LogicalType.FLOAT
    return LogicalType.STRING


_NUMERIC = {LogicalType.INT, LogicalType.FLOAT}


def infer(
    sample: Iterable[tuple[int, bytes]], path: Path, options: ReadOptions
) -> tuple[list[str], dict[str, LogicalType]]:
    """Column names (first-seen order) and types from the sample lines."""
    kinds: dict[str, LogicalType | None] = {}
    texts: dict[str, list[str]] = {}
    for number, raw in sample:
        for key, value in parse_line(number, raw, path, options.max_json_depth).items():
            kind = _kind(value)
            known = kinds.setdefault(key, kind)
            _check_int_range(value, number, key, path)
            if kind is None or known == kind:
                pass
            elif known is None:
                kinds[key] = kind
            elif {known, kind} <= _NUMERIC:
                kinds[key] = LogicalType.FLOAT  # JSON has one number type
            elif key not in options.column_types:
                raise MixedTypeColumn(
                    f"mixed-type column {key!r}: a {kind.value} value where {known.value} "
                    "values were seen", path=str(path), line=number, column=key,
                    hint="make the column's values one JSON type")
            if isinstance(value, str):
                texts.setdefault(key, []).append(value)
    types: dict[str, LogicalType] = {}
    for key, kind in kinds.items():
        if kind is LogicalType.STRING:
            # (unnamed: check_names has not yet refused names polars reads as patterns)
            text_type = infer_text_type(pl.Series("", texts.get(key, []), pl.String))
            ok = text_type in (LogicalType.DATE, LogicalType.DATETIME)
            types[key] = text_type if ok else LogicalType.STRING
        else:
            types[key] = kind if kind is not None else LogicalType.STRING
    return list(kinds), types


def _check_int_range(value: object, number: int, key: str, path: Path) -> None:
    out_of_range = isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]
    if out_of_range and not isinstance(value, bool):
        raise MixedTypeColumn(
            f"integer {value} does not fit in 64 bits", path=str(path), line=number,
            column=key, hint="write such identifiers as JSON strings")


def _fits(value: object, ltype: LogicalType) -> bool:
    kind = _kind(value)
    if kind is None or kind is ltype:
        return True
    if ltype is LogicalType.FLOAT:
        return kind is LogicalType.INT
    return kind is LogicalType.STRING and ltype in (LogicalType.DATE, LogicalType.DATETIME)


def validate_lines(
    lines: Iterable[tuple[int, bytes]], schema: TableSchema, path: Path, options: ReadOptions
) -> None:
    """Raise the first problem in ``lines`` against ``schema`` (returns if none)."""
    types = {c.name: c.type for c in schema.columns}
    for number, raw in lines:
        for key, value in parse_line(number, raw, path, options.max_json_depth).items():
            if key not in types:
                raise MalformedTable(
                    f"key {key!r} does not appear in the first {options.infer_rows} lines",
                    path=str(path), line=number, column=key,
                    hint="raise ReadOptions.infer_rows, or add the key (as null) to the "
                         "first lines")
            _check_int_range(value, number, key, path)
            if not _fits(value, types[key]):
                raise _mismatch(value, types[key], number, key, path)
            if isinstance(value, float) and not math.isfinite(value) and (
                not options.allow_non_finite
            ):
                text = value.text if isinstance(value, _Number) else str(value)
                word = text.lstrip("+-").lower()
                what = ("is not a finite number" if word in ("nan", "infinity", "inf")
                        else "overflows a 64-bit float (becomes infinity)")
                raise NonFiniteValue(
                    f"numeric column {key!r} has {text!r}, which {what}",
                    path=str(path), line=number, column=key,
                    hint="replace it with null or a real number")


def _mismatch(
    value: object, ltype: LogicalType, number: int, key: str, path: Path
) -> TableReadError:
    shown = json.dumps(value)[:60]
    return MixedTypeColumn(
        f"mixed-type column {key!r}: has {shown} where {ltype.value} values were seen",
        path=str(path), line=number, column=key,
        hint="make the column's values one JSON type, or declare the column as string")
