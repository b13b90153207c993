"""The precise (slow) CSV path: Python's ``csv`` module over bounded, decoded lines.

It runs only when the fast path needs an exact location: to read the header, to map a
record index to its physical line, or to explain a parse error of the fast path (it then
raises the first structural problem: bad UTF-8, an over-long line, an unterminated
quote, a ragged row). Memory stays bounded by ``max_line_bytes``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bastion.data_security.errors import (
    EmptyTable,
    EncodingError,
    MalformedTable,
    OversizedValue,
    RaggedRow,
)
from bastion.data_security.readers.detect import UTF8_BOM
from bastion.data_security.readers.types import ReadOptions

ICONV_HINT = (
    "convert the file to UTF-8 from its real encoding, e.g. "
    "iconv -f WINDOWS-1252 -t UTF-8 FILE > out.csv"
)


@dataclass
class _Cursor:
    record_bytes: int = 0


def _lines(f: BinaryIO, path: str, options: ReadOptions, cursor: _Cursor) -> Iterator[str]:
    offset = 0
    line_no = 0
    while True:
        raw = f.readline(options.max_line_bytes + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > options.max_line_bytes:
            raise OversizedValue(
                f"line is longer than the limit of {options.max_line_bytes} bytes",
                path=path, line=line_no,
                hint="check the line endings; raise ReadOptions.max_line_bytes if such "
                     "long lines are expected")
        if line_no == 1 and raw.startswith(UTF8_BOM):
            raw, offset = raw[len(UTF8_BOM):], len(UTF8_BOM)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise EncodingError(
                f"not UTF-8: byte 0x{raw[e.start]:02x} at byte offset {offset + e.start} "
                f"cannot be decoded", path=path, line=line_no, hint=ICONV_HINT) from e
        offset += len(raw)
        cursor.record_bytes += len(raw)
        yield text


def records(path: Path, options: ReadOptions) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first physical line, fields)`` for every non-empty record, header first.

    Raises the first structural problem it meets, with the line it starts on.
    """
    name = str(path)
    # The csv module's default field limit (128 KiB) is process-wide; our own per-cell
    # and per-line limits are the ones that matter, so make sure csv never undercuts them.
    if csv.field_size_limit() < options.max_line_bytes:
        csv.field_size_limit(options.max_line_bytes)
    cursor = _Cursor()
    with path.open("rb") as f:
        reader = csv.reader(_lines(f, name, options, cursor),
                            delimiter=options.delimiter, strict=True)
        previous = 0
        while True:
            start = previous + 1
            cursor.record_bytes = 0
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                if "end of data" in str(e).lower():
                    raise MalformedTable(
                        "unterminated quoted field: the quote opened in this record is never "
                        "closed", path=name, line=start,
                        hint="close the quote, or double any quote inside a quoted field "
                             '("" stands for one ")') from e
                raise MalformedTable(f"malformed CSV: {e}", path=name, line=reader.line_num,
                                     hint='quote fields containing the delimiter or quotes; '
                                          'write a quote inside a quoted field as ""') from e
            previous = reader.line_num
            if not fields:
                continue
            if cursor.record_bytes > options.max_line_bytes:
                raise OversizedValue(
                    f"record is longer than the limit of {options.max_line_bytes} bytes",
                    path=name, line=start,
                    hint="raise ReadOptions.max_line_bytes if such long records are expected")
            yield start, fields


def read_header(path: Path, options: ReadOptions) -> tuple[list[str], int]:
    """The header fields and their line."""
    for line, fields in records(path, options):
        return fields, line
    raise EmptyTable("no header line", path=str(path), hint="the file holds no CSV records")


def validate(path: Path, options: ReadOptions) -> None:
    """Scan the whole file; raise the first structural problem (returns if none)."""
    width = -1
    for line, fields in records(path, options):
        if width < 0:
            width = len(fields)
            header = fields
            continue
        if len(fields) != width:
            raise RaggedRow(
                f"has {len(fields)} fields but the header has {width}", path=str(path),
                line=line,
                hint="quote fields that contain the delimiter, and add or remove the "
                     "missing/extra fields")
        for col, value in zip(header, fields, strict=True):
            if len(value) > options.max_cell_bytes // 4 and (
                len(value.encode("utf-8")) > options.max_cell_bytes
            ):
                raise OversizedValue(
                    f"cell is longer than the limit of {options.max_cell_bytes} bytes",
                    path=str(path), line=line, column=col,
                    hint="raise ReadOptions.max_cell_bytes if such large cells are expected")


def line_of_record(path: Path, options: ReadOptions, index: int) -> int | None:
    """The first physical line of data record ``index`` (0-based, header excluded)."""
    for seen, (line, _fields) in enumerate(records(path, options)):
        if seen == index + 1:
            return line
    return None
