"""Value types of the table readers: formats, logical column types, schema, options, stats.

Example::

    from bastion.data_security.readers import LogicalType, ReadOptions

    options = ReadOptions(column_types={"zip_code": LogicalType.STRING})
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import polars as pl

from bastion.core.errors import ConfigurationError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class TableFormat(enum.Enum):
    """A table file format Bastion ingests."""

    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


class LogicalType(enum.Enum):
    """The type of a column as Bastion sees it (independent of the file format).

    Categorical data is ``STRING``: a column with a million distinct values must not
    become a million-entry enum.
    """

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    DATE = "date"
    DATETIME = "datetime"

    def polars_dtype(self) -> pl.DataType:
        """The polars dtype every batch uses for a column of this type."""
        return _POLARS[self]


_POLARS: dict[LogicalType, pl.DataType] = {
    LogicalType.INT: pl.Int64(),
    LogicalType.FLOAT: pl.Float64(),
    LogicalType.BOOL: pl.Boolean(),
    LogicalType.STRING: pl.String(),
    LogicalType.DATE: pl.Date(),
    LogicalType.DATETIME: pl.Datetime("us"),
}


@dataclass(frozen=True)
class Column:
    """One column: its name and logical type."""

    name: str
    type: LogicalType

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type.value}


@dataclass(frozen=True)
class TableSchema:
    """The ordered columns of a table; every batch a reader yields has exactly this schema."""

    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def type_of(self, name: str) -> LogicalType:
        for c in self.columns:
            if c.name == name:
                return c.type
        raise KeyError(name)

    def polars_schema(self) -> pl.Schema:
        """The polars schema of every batch."""
        return pl.Schema({c.name: c.type.polars_dtype() for c in self.columns})

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {"columns": [c.to_dict() for c in self.columns]}


def _frozen_types(types: Mapping[str, LogicalType]) -> Mapping[str, LogicalType]:
    return MappingProxyType(dict(types))


@dataclass(frozen=True)
class ReadOptions:
    """How strictly to read a table. The defaults refuse anything doubtful.

    - ``column_types``: declared types that override inference (e.g. a numeric-looking
      id column declared ``STRING``); naming a column the file lacks is an error.
    - ``infer_rows``: how many leading rows type inference looks at; a later value that
      does not fit is an error, never a silent coercion.
    - ``max_cell_bytes`` / ``max_line_bytes``: per-cell and per-line (record) limits, so a
      single 5 GB line cannot exhaust memory. CSV parses blocks of ``max_line_bytes``
      (a record must fit one block) with a bounded read-ahead, so memory grows with it.
    - ``max_decoded_bytes``: the most a whole table may occupy once decoded. Parquet is
      checked against its metadata (row counts, value widths, uncompressed sizes and the
      lengths of dictionary values) before a row is decoded, so a few-KB file that
      decodes to gigabytes is refused up front; every format also counts decoded batches.
    - ``max_json_depth``: the deepest JSON nesting a JSON Lines line may have (nested
      values are refused anyway; this stops a 50,000-deep line before it is parsed).
    - ``allow_non_finite``: accept NaN / inf in float columns (refused by default).
    - ``unsafe_allow_formula_cells``: accept cells starting with ``= + - @`` as plain
      strings (refused by default: spreadsheet formula injection).
    - ``allow_empty``: a file with a header but no rows yields an empty table instead of
      raising ``EmptyTable``.
    - ``delimiter``: the CSV field separator.
    """

    column_types: Mapping[str, LogicalType] = field(default_factory=dict)
    infer_rows: int = 10_000
    max_cell_bytes: int = 1 * MIB
    max_line_bytes: int = 4 * MIB
    max_decoded_bytes: int = 1 * GIB
    max_json_depth: int = 32
    allow_non_finite: bool = False
    unsafe_allow_formula_cells: bool = False
    allow_empty: bool = False
    delimiter: str = ","

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_types", _frozen_types(self.column_types))
        if self.infer_rows < 1:
            raise ConfigurationError("infer_rows must be at least 1")
        if self.max_cell_bytes < 1 or self.max_line_bytes < self.max_cell_bytes:
            raise ConfigurationError("need 1 <= max_cell_bytes <= max_line_bytes")
        if self.max_decoded_bytes < 1 or self.max_json_depth < 1:
            raise ConfigurationError("max_decoded_bytes and max_json_depth must be positive")
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            raise ConfigurationError(
                "delimiter must be one character other than a quote or newline")


@dataclass(frozen=True)
class ReadStats:
    """Counters of a reader; ``sha256`` is set once every byte of the file was read."""

    rows_read: int
    batches: int
    bytes_read: int
    sha256: str | None

    def to_dict(self) -> dict[str, int | str | None]:
        return {
            "rows_read": self.rows_read,
            "batches": self.batches,
            "bytes_read": self.bytes_read,
            "sha256": self.sha256,
        }
