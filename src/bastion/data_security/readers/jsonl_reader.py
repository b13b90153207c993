"""JSON Lines: one JSON object per line; pyarrow parses chunks, Python explains errors.

Types come from the JSON values of the first ``infer_rows`` lines (parsed exactly with
the ``json`` module): integers → int, numbers → float, true/false → bool, strings →
string, or date / datetime when every sampled string is ISO formatted. Nested objects
and arrays are refused (flatten them first, e.g. with jq). Keys that first appear after
the sample, lines that are not objects and invalid JSON are errors naming the line.

Example::

    reader = JsonlReader(Path("events.jsonl"), ReadOptions())
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import polars as pl
import pyarrow as pa
import pyarrow.json as pajson

from bastion.data_security.errors import EncodingError, MalformedTable, OversizedValue
from bastion.data_security.readers import _json_lines as jl
from bastion.data_security.readers._cells import check_block, raise_problem
from bastion.data_security.readers._csv_scan import ICONV_HINT
from bastion.data_security.readers._source import HashingSource
from bastion.data_security.readers.detect import UTF8_BOM
from bastion.data_security.readers.reader import TableReader, build_schema, check_names
from bastion.data_security.readers.types import MIB, LogicalType, ReadOptions, TableFormat

_ARROW_TYPES = {
    LogicalType.INT: pa.int64(),
    LogicalType.FLOAT: pa.float64(),
    LogicalType.BOOL: pa.bool_(),
}


class JsonlReader(TableReader):
    """Streaming JSON Lines reader (see module docstring)."""

    format = TableFormat.JSONL

    def __init__(self, path: Path, options: ReadOptions) -> None:
        super().__init__(path, options)
        self._source = HashingSource(path)
        self._chunks = self._chunker()
        self._pending: list[tuple[int, int, bytes]] = []
        try:
            sample: list[tuple[int, bytes]] = []
            while len(sample) < options.infer_rows:
                item = next(self._chunks, None)
                if item is None:
                    break
                self._check_utf8(*item)
                self._pending.append(item)
                sample.extend(jl.lines_of(item[0], item[2], options.infer_rows - len(sample)))
            names, inferred = jl.infer(sample, path, options)
        except BaseException:
            self.close()
            raise
        check_names(names, path, options, line=None)
        self._schema = build_schema(names, inferred, options)
        self._text = {c.name for c in self._schema.columns if c.type not in _ARROW_TYPES}
        self._arrow_schema = pa.schema(
            [(c.name, _ARROW_TYPES.get(c.type, pa.large_string())) for c in self._schema.columns])

    @property
    def bytes_read(self) -> int:
        return self._source.bytes_read

    def _digest(self) -> str | None:
        return self._source.hexdigest()

    def close(self) -> None:
        self._source.close()

    def _chunker(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(first line number, byte offset, bytes)`` chunks of whole lines."""
        block = min(8 * MIB, self.options.max_line_bytes)
        carry, line, offset = b"", 1, 0
        while True:
            data = self._source.read(block)
            if offset == 0 and not carry and data.startswith(UTF8_BOM):
                data, offset = data[len(UTF8_BOM):], len(UTF8_BOM)
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n")
            first = buf.find(b"\n") if cut >= 0 else len(buf)
            if first > self.options.max_line_bytes:
                raise OversizedValue(
                    f"line is longer than the limit of {self.options.max_line_bytes} bytes",
                    path=str(self.path), line=line,
                    hint="raise ReadOptions.max_line_bytes if such long lines are expected")
            if not data:
                if buf.strip():
                    yield line, offset, buf
                return
            if cut < 0:
                carry = buf
                continue
            chunk, carry = buf[: cut + 1], buf[cut + 1:]
            yield line, offset, chunk
            line += chunk.count(b"\n")
            offset += len(chunk)

    def _blocks(self) -> Iterator[pl.DataFrame]:
        while True:
            item = self._pending.pop(0) if self._pending else next(self._chunks, None)
            if item is None:
                return
            first_line, offset, chunk = item
            self._check_utf8(first_line, offset, chunk)  # repeated for sampled chunks: cheap
            try:
                table = pajson.read_json(
                    io.BytesIO(chunk),
                    read_options=pajson.ReadOptions(
                        block_size=max(len(chunk), 1 << 16), use_threads=True),
                    parse_options=pajson.ParseOptions(
                        explicit_schema=self._arrow_schema,
                        unexpected_field_behavior="error"))
            except pa.ArrowInvalid as e:
                self._explain(first_line, chunk, e)
            frame = pl.from_arrow(table.select(list(self._schema.names)))
            assert isinstance(frame, pl.DataFrame)
            typed, problem = check_block(frame, self._schema, self.options, self._text)
            if problem is not None:
                line = jl.line_of_row(first_line, chunk, problem.row)
                raise_problem(problem, self.options, str(self.path), line=line)
            yield typed

    def _check_utf8(self, first_line: int, offset: int, chunk: bytes) -> None:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            line = first_line + chunk.count(b"\n", 0, e.start)
            raise EncodingError(
                f"not UTF-8: byte 0x{chunk[e.start]:02x} at byte offset {offset + e.start} "
                "cannot be decoded", path=str(self.path), line=line,
                hint=ICONV_HINT.replace("out.csv", "out.jsonl")) from e

    def _explain(self, first_line: int, chunk: bytes, error: pa.ArrowInvalid) -> NoReturn:
        jl.validate_lines(jl.lines_of(first_line, chunk, None), self._schema, self.path,
                          self.options)
        raise MalformedTable(f"JSON Lines parse error: {error}", path=str(self.path),
                             line=first_line, hint="check the file with jq") from error

