"""The streaming ``TableReader`` every format implements, and ``open_table``.

A reader is pure: it never writes anything. Its contract with the caller that stores
the data ("nothing half-ingested"):

1. write every batch of :meth:`TableReader.iter_batches` to a *temporary* location;
2. commit only after the iterator is exhausted without raising — every error
   (bad cell, ragged row, unterminated quote, bad byte…) is raised from the iterator,
   deterministically at the first problem in file order, before it finishes;
3. then compare :attr:`TableReader.sha256` (set only after the whole file was read)
   with the source's declared checksum.

Example::

    from pathlib import Path
    from bastion.data_security.readers import open_table

    with open_table(Path("loans.csv")) as reader:
        for batch in reader.iter_batches(rows=50_000):
            sink.write(batch)                      # to a temp location
        assert reader.sha256 == declared_sha256    # then commit
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import polars as pl

from bastion.data_security.errors import (
    BadHeader,
    EmptyTable,
    FormulaInjection,
    OversizedValue,
    ReaderMisuse,
)
from bastion.data_security.readers._cells import FORMULA_PREFIXES
from bastion.data_security.readers.types import (
    Column,
    LogicalType,
    ReadOptions,
    ReadStats,
    TableFormat,
    TableSchema,
)


class TableReader(abc.ABC):
    """Streams a table file as polars batches with one fixed schema."""

    format: TableFormat

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path = path
        self.options = options
        self._schema = TableSchema(())
        self._rows = 0
        self._decoded = 0
        self._batches = 0
        self._started = False
        self._complete = False

    @property
    def schema(self) -> TableSchema:
        """Column names and logical types; every batch has exactly this schema."""
        return self._schema

    @property
    def rows_read(self) -> int:
        return self._rows

    @property
    @abc.abstractmethod
    def bytes_read(self) -> int: ...

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the file's raw bytes; ``None`` until iteration completed cleanly."""
        return self._digest() if self._complete else None

    @abc.abstractmethod
    def _digest(self) -> str | None:
        """The digest of every byte of the file, once all were read."""

    @property
    def stats(self) -> ReadStats:
        return ReadStats(self._rows, self._batches, self.bytes_read, self.sha256)

    @abc.abstractmethod
    def _blocks(self) -> Iterator[pl.DataFrame]:
        """Checked blocks of any size, already in the schema's dtypes."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def iter_batches(self, rows: int = 100_000) -> Iterator[pl.DataFrame]:
        """Yield batches of exactly ``rows`` rows (the last may be shorter).

        A reader streams once; a second call raises :class:`ReaderMisuse`. Memory stays
        bounded by about one batch plus one parse block.
        """
        if rows < 1:
            raise ReaderMisuse("rows must be at least 1")
        if self._started:
            raise ReaderMisuse("a TableReader streams once; open the file again to re-read")
        self._started = True
        return self._rechunk(rows)

    def _rechunk(self, rows: int) -> Iterator[pl.DataFrame]:
        pending: list[pl.DataFrame] = []
        held = 0
        for block in self._blocks():
            self._count_decoded(block)
            pending.append(block)
            held += block.height
            while held >= rows:
                merged = pl.concat(pending, how="vertical", rechunk=False)
                yield self._emit(merged.slice(0, rows))
                rest = merged.slice(rows)
                pending, held = ([rest] if rest.height else []), rest.height
        if held:
            yield self._emit(pl.concat(pending, how="vertical"))
        if self._rows == 0 and not self.options.allow_empty:
            raise EmptyTable(
                "the table has a header / schema but no rows", path=str(self.path),
                hint="an empty export is usually a failed export; pass allow_empty=True to "
                     "accept an empty table")
        self._complete = True

    def _count_decoded(self, block: pl.DataFrame) -> None:
        self._decoded += int(block.estimated_size())
        if self._decoded > self.options.max_decoded_bytes:
            raise OversizedValue(
                f"the table decodes to more than {self.options.max_decoded_bytes} bytes",
                path=str(self.path), hint="split the file into smaller batches "
                "(ReadOptions.max_decoded_bytes is the limit)")

    def _emit(self, batch: pl.DataFrame) -> pl.DataFrame:
        self._rows += batch.height
        self._batches += 1
        return batch

    def __enter__(self) -> TableReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_names(
    names: Sequence[str], path: Path, options: ReadOptions, *, line: int | None = None
) -> None:
    """Refuse empty, duplicate, pattern-like and formula-like column names."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise BadHeader(f"column {position} has an empty name", path=str(path), line=line,
                            hint="give every column a unique, non-empty name")
        if name in seen:
            raise BadHeader(
                f"column name {name!r} appears twice (columns {seen[name]} and {position})",
                path=str(path), line=line, hint="give every column a unique name")
        seen[name] = position
        if name == "*" or (len(name) > 1 and name.startswith("^") and name.endswith("$")):
            # polars reads pl.col(name) as "every column" or a regex: the profile, checks
            # and poisoning audit would select other columns or none
            raise BadHeader(
                f"column name {name[:60]!r} is a polars column pattern, not a plain name",
                path=str(path), line=line, hint="rename the column (no '*', no ^...$)")
        if name.startswith(FORMULA_PREFIXES) and not options.unsafe_allow_formula_cells:
            raise FormulaInjection(
                f"column name {name[:60]!r} starts like a spreadsheet formula",
                path=str(path), line=line, hint="rename the column")
    unknown = sorted(set(options.column_types) - set(names))
    if unknown:
        raise BadHeader(f"declared column types for columns the file lacks: {unknown}",
                        path=str(path), line=line, hint=f"the file's columns are {list(names)}")


def build_schema(
    names: Sequence[str], inferred: dict[str, LogicalType], options: ReadOptions
) -> TableSchema:
    """Declared types win over inferred ones."""
    return TableSchema(tuple(
        Column(n, options.column_types.get(n, inferred.get(n, LogicalType.STRING)))
        for n in names
    ))
