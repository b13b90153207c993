"""``open_table``: detect the format from the content and open the matching reader.

Example::

    reader = open_table(Path("loans.parquet"), options=ReadOptions(infer_rows=50_000))
"""

from __future__ import annotations

from pathlib import Path

from bastion.data_security.readers.csv_reader import CsvReader
from bastion.data_security.readers.detect import detect_format
from bastion.data_security.readers.reader import TableReader
from bastion.data_security.readers.types import ReadOptions, TableFormat


def open_table(
    path: Path, *, format: TableFormat | None = None, options: ReadOptions | None = None
) -> TableReader:
    """Open ``path`` as a streaming table.

    The format comes from the content (``PAR1`` magic → Parquet, first non-space ``{`` →
    JSON Lines, else CSV); a declared ``format`` or the file extension that disagrees
    raises :class:`~bastion.data_security.errors.FormatMismatch`. Opening reads the
    header and the inference sample, so header errors surface here.
    """
    opts = options if options is not None else ReadOptions()
    actual = detect_format(path, format)
    if actual is TableFormat.CSV:
        return CsvReader(path, opts)
    if actual is TableFormat.JSONL:
        from bastion.data_security.readers.jsonl_reader import JsonlReader

        return JsonlReader(path, opts)
    from bastion.data_security.readers.parquet_reader import ParquetReader

    return ParquetReader(path, opts)
