"""Parquet: ``pyarrow.parquet`` row group by row group, checks shared with CSV.

Types come from the file (no inference). Nested (struct, list, map), binary, decimal and
time-of-day columns are refused by name. Errors locate a cell by row group and row
(0-based row inside the group). Memory is bounded by the batch size plus one row group's
compressed column chunks. Before any value is decoded the file's decoded size is bounded
from its metadata (``_parquet_size``), so a few-KB dictionary/zstd bomb is refused.

Parquet is read by random access (footer first), so the SHA-256 is computed by a second,
sequential read of the same file, interleaved with decoding (no extra pass at the end).

Example::

    reader = ParquetReader(Path("loans.parquet"), ReadOptions())
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from bastion.data_security.errors import (
    MalformedTable,
    MixedTypeColumn,
    UnsupportedColumnType,
)
from bastion.data_security.readers._cells import check_block, raise_problem
from bastion.data_security.readers._parquet_size import check_decoded_size
from bastion.data_security.readers.reader import TableReader, build_schema, check_names
from bastion.data_security.readers.types import LogicalType, ReadOptions, TableFormat

_ARROW_BATCH_ROWS = 65_536


def logical_type(dtype: pa.DataType) -> LogicalType | None:
    """The logical type of an Arrow column, or ``None`` when Bastion refuses it."""
    if pa.types.is_dictionary(dtype):
        return logical_type(dtype.value_type)
    if pa.types.is_boolean(dtype):
        return LogicalType.BOOL
    if pa.types.is_integer(dtype):
        return LogicalType.INT
    if pa.types.is_floating(dtype):
        return LogicalType.FLOAT
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_null(dtype):
        return LogicalType.STRING
    if pa.types.is_string_view(dtype):
        return LogicalType.STRING
    if pa.types.is_date(dtype):
        return LogicalType.DATE
    if pa.types.is_timestamp(dtype):
        return LogicalType.DATETIME
    return None


class ParquetReader(TableReader):
    """Streaming Parquet reader (see module docstring)."""

    format = TableFormat.PARQUET

    def __init__(self, path: Path, options: ReadOptions) -> None:
        super().__init__(path, options)
        try:
            self._file = pq.ParquetFile(path)
            arrow_schema = self._file.schema_arrow
        except (pa.ArrowException, OSError) as e:
            raise MalformedTable(f"not a valid Parquet file: {e}", path=str(path),
                                 hint="re-export it; the file may be truncated") from e
        check_names(arrow_schema.names, path, options)
        native: dict[str, LogicalType] = {}
        for field in arrow_schema:
            ltype = logical_type(field.type)
            if ltype is None:
                raise UnsupportedColumnType(
                    f"Parquet column type {field.type} is not supported (only flat int, "
                    "float, bool, string, date and timestamp columns)", path=str(path),
                    column=field.name,
                    hint="flatten nested columns and cast decimals/binary to float or string "
                         "before export")
            declared = options.column_types.get(field.name, ltype)
            if declared is not ltype:
                raise MixedTypeColumn(
                    f"the file stores {field.type} ({ltype.value}) but {declared.value} "
                    "was declared", path=str(path), column=field.name,
                    hint="drop the declaration or cast the column when writing the file")
            native[field.name] = ltype
        self._schema = build_schema(arrow_schema.names, native, options)
        try:
            check_decoded_size(path, self._file.metadata, options.max_decoded_bytes)
        except pa.ArrowException as e:
            raise MalformedTable(f"corrupt Parquet data: {e}", path=str(path),
                                 hint="re-export the file; it may be truncated") from e
        self._size = path.stat().st_size
        self._raw = path.open("rb")
        self._sha = hashlib.sha256()
        self._hashed = 0

    @property
    def bytes_read(self) -> int:
        return self._hashed

    def _digest(self) -> str | None:
        return self._sha.hexdigest() if self._hashed >= self._size else None

    def close(self) -> None:
        self._raw.close()
        self._file.close()

    def _hash_until(self, target: int) -> None:
        while self._hashed < target:
            data = self._raw.read(min(1 << 20, target - self._hashed))
            if not data:
                self._size = self._hashed  # the file shrank: digest covers what exists
                return
            self._sha.update(data)
            self._hashed += len(data)

    def _blocks(self) -> Iterator[pl.DataFrame]:
        total = max(1, self._file.metadata.num_rows)
        done = 0
        for group in range(self._file.num_row_groups):
            row = 0
            try:
                batches = self._file.iter_batches(
                    batch_size=_ARROW_BATCH_ROWS, row_groups=[group], use_threads=True)
                for batch in batches:
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)
                    typed, problem = check_block(frame, self._schema, self.options, ())
                    if problem is not None:
                        raise_problem(problem, self.options, str(self.path),
                                      row_group=group, row=row + problem.row)
                    row += frame.height
                    done += frame.height
                    self._hash_until(self._size * done // total)
                    yield typed
            except pa.ArrowException as e:
                raise MalformedTable(f"corrupt Parquet data: {e}", path=str(self.path),
                                     row_group=group, row=row,
                                     hint="re-export the file; it may be truncated") from e
        self._hash_until(self._size + 1)
