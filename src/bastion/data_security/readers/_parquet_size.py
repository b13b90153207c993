"""How large a Parquet file is once decoded, known before a row is decoded.

A Parquet file can be a decompression bomb twice over: zstd compresses the pages, and
dictionary encoding stores one 1 KB string once for two million rows. So a 3.9 KB file
can decode to 2 GB. The bound is computed in two steps, both before decoding values:

1. from the footer: every fixed-width column costs ``rows x 8`` bytes once decoded,
   every string column at least ``rows x 16`` (a string view) plus its uncompressed
   pages, which for plain-encoded pages is the string bytes themselves;
2. for dictionary-encoded string chunks the footer does not tell the decoded size, so
   those columns are read *as dictionaries* (indices + the dictionary, never the
   repeated strings) and the length of each row's value is summed from the dictionary
   value lengths. The sum stops as soon as it passes the limit.

Example::

    check_decoded_size(Path("batch.parquet"), ReadOptions().max_decoded_bytes)
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bastion.data_security.errors import OversizedValue

_FIXED_WIDTH = 8  # every numeric / bool / date / timestamp column decodes to 64-bit values
_VIEW = 16  # per-row cost of a string (a polars string view)
_MEASURE_ROWS = 65_536


def check_decoded_size(path: Path, meta: pq.FileMetaData, limit: int) -> None:
    """Raise :class:`OversizedValue` if the table decodes to more than ``limit`` bytes."""
    total, dictionary_columns = _footer_estimate(meta)
    _refuse_past(total, limit, path)
    if dictionary_columns:
        _measure_dictionaries(path, sorted(dictionary_columns), total, limit)


def _footer_estimate(meta: pq.FileMetaData) -> tuple[int, set[str]]:
    total = 0
    dictionary_columns: set[str] = set()
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            if chunk.physical_type != "BYTE_ARRAY":
                total += group.num_rows * _FIXED_WIDTH
                continue
            total += group.num_rows * _VIEW + chunk.total_uncompressed_size
            if any("DICTIONARY" in e for e in chunk.encodings):
                dictionary_columns.add(chunk.path_in_schema)
    return total, dictionary_columns


def _measure_dictionaries(path: Path, columns: list[str], total: int, limit: int) -> None:
    with pq.ParquetFile(path, read_dictionary=columns) as f:
        for batch in f.iter_batches(batch_size=_MEASURE_ROWS, columns=columns):
            for array in batch.columns:
                total += _value_bytes(array)
            _refuse_past(total, limit, path)


def _value_bytes(array: pa.Array) -> int:
    if isinstance(array, pa.DictionaryArray):
        lengths = pc.binary_length(array.dictionary)
        summed = pc.sum(pc.take(lengths, array.indices)).as_py()
    else:  # a chunk the writer stored plain after its dictionary grew too large
        summed = pc.sum(pc.binary_length(array)).as_py()
    return int(summed or 0)


def _refuse_past(total: int, limit: int, path: Path) -> None:
    if total > limit:
        raise OversizedValue(
            f"the Parquet file decodes to more than {limit} bytes (at least {total})",
            path=str(path),
            hint="split the file into smaller batches (ReadOptions.max_decoded_bytes is the "
                 "limit)")
