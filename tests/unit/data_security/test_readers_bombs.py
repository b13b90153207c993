"""Decoded-size and nesting bombs against the table readers (issue 9, section 1).

A few-KB Parquet file that decodes to gigabytes is refused from its metadata before a
value is decoded; JSON Lines nested 50,000 deep is a typed error, not a RecursionError.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bastion.core.errors import BastionError
from bastion.data_security.errors import OversizedValue, UnsupportedColumnType
from bastion.data_security.readers import ReadOptions, open_table

MIB = 1024 * 1024


def _dictionary_bomb(path: Path, rows: int, width: int) -> Path:
    """``rows`` copies of one ``width``-byte string: dictionary + RLE + zstd make it tiny."""
    indices = pa.array([0] * rows, type=pa.int32())
    column = pa.DictionaryArray.from_arrays(indices, pa.array(["x" * width]))
    pq.write_table(pa.table({"note": column}), path, compression="zstd")
    return path


def test_parquet_zstd_dictionary_bomb_is_refused_from_metadata_before_decoding(
    tmp_path: Path,
) -> None:
    bomb = _dictionary_bomb(tmp_path / "bomb.parquet", rows=2_000_000, width=1000)
    assert bomb.stat().st_size < 1 * MIB  # 2 GB of strings once decoded
    pool = pa.default_memory_pool()
    before = pool.max_memory() or 0
    with pytest.raises(OversizedValue, match="decodes to more than"):
        open_table(bomb)
    # The measurement never materialised the strings: Arrow's peak stayed small.
    assert (pool.max_memory() or 0) - before < 64 * MIB


def test_parquet_plain_encoded_oversize_is_refused_by_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    table = pa.table({"note": [f"{i:0>100}" for i in range(20_000)]})
    pq.write_table(table, path, use_dictionary=False, compression="zstd")
    with pytest.raises(OversizedValue):
        open_table(path, options=ReadOptions(max_decoded_bytes=1 * MIB))
    with open_table(path, options=ReadOptions(max_decoded_bytes=64 * MIB)) as reader:
        assert sum(b.height for b in reader.iter_batches()) == 20_000


def test_parquet_bomb_below_the_limit_still_reads(tmp_path: Path) -> None:
    path = _dictionary_bomb(tmp_path / "small.parquet", rows=1000, width=100)
    with open_table(path) as reader:
        assert sum(b.height for b in reader.iter_batches()) == 1000


def test_csv_decoded_past_the_limit_is_refused_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("a,b\n" + "".join(f"{i},{'y' * 200}\n" for i in range(20_000)))
    opts = ReadOptions(max_decoded_bytes=1 * MIB)
    with open_table(path, options=opts) as reader, pytest.raises(OversizedValue):
        for _ in reader.iter_batches(rows=1000):
            pass


def test_jsonl_line_nested_50000_deep_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\n")
    with pytest.raises(UnsupportedColumnType, match="levels deep"), open_table(path) as reader:
        list(reader.iter_batches())


def test_jsonl_first_line_nested_50000_deep_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "deep-first.jsonl"
    path.write_bytes(b'{"a": ' + b"{" * 50_000 + b"}" * 50_000 + b"}\n")
    with pytest.raises(UnsupportedColumnType, match="levels deep"):
        open_table(path)


def test_jsonl_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    path = tmp_path / "brackets.jsonl"
    path.write_text('{"a": "' + "[" * 500 + '"}\n')
    with open_table(path) as reader:
        assert sum(b.height for b in reader.iter_batches()) == 1


def test_first_line_opening_50000_arrays_is_a_typed_error_not_a_recursion_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "brackets.txt"
    path.write_bytes(b'{"a": ' + b"[" * 50_000 + b",b\n1,2\n")
    with pytest.raises(BastionError):  # format sniffing used to raise RecursionError
        open_table(path)
