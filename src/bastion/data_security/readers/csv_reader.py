"""CSV: pyarrow's streaming parser for speed, Python's ``csv`` module for exact errors.

Fast path: ``pyarrow.csv.open_csv`` parses blocks of ``max_line_bytes`` with every
column as text; polars converts and checks whole blocks (types, NaN/inf, formulas, cell
size). When anything is wrong, the slow path (:mod:`._csv_scan`) re-reads the file with
the ``csv`` module to name the exact physical line and column.

Conventions: an empty field (quoted or not) is a missing value in every column; blank
lines are skipped; a UTF-8 BOM is stripped; quotes are RFC 4180 (``""`` inside quotes).

Example::

    reader = CsvReader(Path("loans.csv"), ReadOptions())
    reader.schema.names
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from bastion.data_security.errors import MalformedTable, OversizedValue
from bastion.data_security.readers import _csv_scan
from bastion.data_security.readers._cells import CellProblem, check_block, raise_problem
from bastion.data_security.readers._cells import infer_text_type as _infer
from bastion.data_security.readers._source import HashingSource
from bastion.data_security.readers.reader import TableReader, build_schema, check_names
from bastion.data_security.readers.types import ReadOptions, TableFormat


class CsvReader(TableReader):
    """Streaming CSV reader (see module docstring)."""

    format = TableFormat.CSV

    def __init__(self, path: Path, options: ReadOptions) -> None:
        super().__init__(path, options)
        names, header_line = _csv_scan.read_header(path, options)
        check_names(names, path, options, line=header_line)
        self._source = HashingSource(path)
        self._buffered: list[pl.DataFrame] = []
        try:
            self._arrow = self._open_arrow(names)
            sample = self._fill_sample()
        except pa.ArrowInvalid as e:
            self.close()
            self._explain(e)
        except BaseException:
            self.close()
            raise
        inferred = {n: _infer(sample.get_column(n)) for n in names
                    if n not in options.column_types}
        self._schema = build_schema(names, inferred, options)

    def _open_arrow(self, names: list[str]) -> pacsv.CSVStreamingReader:
        opts = self.options
        return pacsv.open_csv(
            self._source,
            read_options=pacsv.ReadOptions(block_size=opts.max_line_bytes, use_threads=True),
            parse_options=pacsv.ParseOptions(
                delimiter=opts.delimiter, newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in names},
                strings_can_be_null=True, quoted_strings_can_be_null=True,
                null_values=[""], check_utf8=True),
        )

    def _next_frame(self) -> pl.DataFrame | None:
        try:
            batch = self._arrow.read_next_batch()
        except StopIteration:
            return None
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _fill_sample(self) -> pl.DataFrame:
        held = 0
        while held < self.options.infer_rows:
            frame = self._next_frame()
            if frame is None:
                break
            self._buffered.append(frame)
            held += frame.height
        if not self._buffered:
            empty = {n: pl.Series(n, [], pl.String) for n in self._arrow.schema.names}
            return pl.DataFrame(empty)
        return pl.concat(self._buffered).head(self.options.infer_rows)

    @property
    def bytes_read(self) -> int:
        return self._source.bytes_read

    def _digest(self) -> str | None:
        return self._source.hexdigest()

    def close(self) -> None:
        # Stop pyarrow's read-ahead threads before the Python file they call goes away
        # (an unfinished reader alive at interpreter exit would crash the process).
        arrow = getattr(self, "_arrow", None)
        if arrow is not None:
            arrow.close()
            del self._arrow
        self._source.close()

    def _blocks(self) -> Iterator[pl.DataFrame]:
        text = set(self._schema.names)
        before = 0
        try:
            while True:
                frame = self._buffered.pop(0) if self._buffered else self._next_frame()
                if frame is None:
                    break
                typed, problem = check_block(frame, self._schema, self.options, text)
                if problem is not None:
                    self._raise_cell(problem, before)
                before += frame.height
                yield typed
            self._source.drain()
        except pa.ArrowInvalid as e:
            self._explain(e)
        if self._source.quotes % 2:
            # An odd number of quote characters means a quote is never closed: pyarrow
            # would silently swallow the rest of the file into one cell.
            self._explain(None)

    def _raise_cell(self, problem: CellProblem, rows_before: int) -> NoReturn:
        line = _csv_scan.line_of_record(self.path, self.options, rows_before + problem.row)
        raise_problem(problem, self.options, str(self.path), line=line)

    def _explain(self, error: pa.ArrowInvalid | None) -> NoReturn:
        """Re-scan precisely; raise what the scan finds, else a generic refusal (fail closed)."""
        _csv_scan.validate(self.path, self.options)
        text = str(error) if error is not None else "unbalanced quotes"
        if "straddling" in text:
            raise OversizedValue(
                f"a record is longer than the limit of {self.options.max_line_bytes} bytes",
                path=str(self.path), hint="raise ReadOptions.max_line_bytes") from error
        if self._source.quotes % 2:
            raise MalformedTable(
                "unterminated quoted field (odd number of quote characters)",
                path=str(self.path), hint="close the quote; write a quote inside a quoted "
                                          'field as ""') from error
        raise MalformedTable(f"CSV parse error: {text}", path=str(self.path),
                             hint="check the file with a CSV linter") from error

