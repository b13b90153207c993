"""Streaming table readers for dataset ingestion: CSV, Parquet and JSON Lines.

Map:

- :func:`open_table` — detect the format from the content, open the right reader.
- :class:`TableReader` — ``schema``, ``iter_batches(rows)``, ``rows_read``, ``sha256``.
- :mod:`.types` — :class:`TableFormat`, :class:`LogicalType`, :class:`TableSchema`,
  :class:`ReadOptions`, :class:`ReadStats`.
- :mod:`.detect` — magic-byte format detection and refusal of non-tables.
- one module per format: :mod:`.csv_reader`, :mod:`.jsonl_reader`, :mod:`.parquet_reader`.

Every problem is a :class:`~bastion.data_security.errors.TableReadError` subclass naming
file, line (or Parquet row group / row) and column, with a hint.

Example::

    from pathlib import Path
    from bastion.data_security.readers import open_table

    with open_table(Path("loans.csv")) as reader:
        print(reader.schema.to_dict())
        for batch in reader.iter_batches(rows=100_000):
            ...
        print(reader.rows_read, reader.sha256)
"""

from bastion.data_security.readers.open import open_table
from bastion.data_security.readers.reader import TableReader
from bastion.data_security.readers.types import (
    Column,
    LogicalType,
    ReadOptions,
    ReadStats,
    TableFormat,
    TableSchema,
)

__all__ = [
    "Column",
    "LogicalType",
    "ReadOptions",
    "ReadStats",
    "TableFormat",
    "TableReader",
    "TableSchema",
    "open_table",
]
