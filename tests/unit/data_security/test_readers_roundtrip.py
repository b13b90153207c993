"""Round trips per format, streaming (bounded batches), digests, and CSV property tests."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.data_security.errors import BadHeader, ReaderMisuse
from bastion.data_security.readers import LogicalType, ReadOptions, TableFormat, open_table

FRAME = pl.DataFrame({
    "id": [1, 2, 3, 4, 5],
    "income": [52000.5, None, 61000.0, 1e6, -3.25],
    "name": ["ana", "bo, jr", 'say "hi"', None, "zoë"],
    "approved": [True, False, None, True, False],
    "born": [dt.date(1990, 1, 2), dt.date(1985, 5, 6), None, dt.date(2000, 1, 1),
             dt.date(1970, 12, 31)],
    "seen": [dt.datetime(2024, 1, 1, 10, 0, 0), None, dt.datetime(2024, 2, 1, 0, 0, 0, 500000),
             dt.datetime(2024, 3, 1), dt.datetime(2024, 4, 1)],
})
TYPES = {"id": LogicalType.INT, "income": LogicalType.FLOAT, "name": LogicalType.STRING,
         "approved": LogicalType.BOOL, "born": LogicalType.DATE, "seen": LogicalType.DATETIME}


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.write_csv(path)
    elif path.suffix == ".parquet":
        frame.write_parquet(path, row_group_size=2)
    else:
        frame.write_ndjson(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip_each_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    write_frame(FRAME, path)
    with open_table(path) as reader:
        assert {c.name: c.type for c in reader.schema.columns} == TYPES
        batches = list(reader.iter_batches(rows=2))
    assert [b.height for b in batches] == [2, 2, 1]
    assert all(b.schema == reader.schema.polars_schema() for b in batches)
    got = pl.concat(batches)
    assert got.equals(FRAME.with_columns(pl.col("seen").cast(pl.Datetime("us"))))
    assert reader.rows_read == 5 and reader.stats.batches == 3
    assert reader.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert reader.format is TableFormat(suffix[1:])


def test_sha256_is_none_until_the_whole_file_was_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pl.DataFrame({"a": range(1000)}).write_csv(path)
    with open_table(path) as reader:
        it = reader.iter_batches(rows=10)
        next(it)
        assert reader.sha256 is None
        for _ in it:
            pass
        assert reader.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_reader_streams_once(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a\n1\n")
    with open_table(path) as reader:
        list(reader.iter_batches())
        with pytest.raises(ReaderMisuse):
            reader.iter_batches()


def test_larger_than_batch_file_streams_with_consistent_schema(tmp_path: Path) -> None:
    n = 300_000
    path = tmp_path / "big.csv"
    pl.DataFrame({"a": range(n), "b": [f"s{i}" for i in range(n)]}).write_csv(path)
    opts = ReadOptions(max_line_bytes=32 * 1024, max_cell_bytes=1024)  # 32 KiB parse blocks
    with open_table(path, options=opts) as reader:
        first = True
        sizes = []
        for batch in reader.iter_batches(rows=1_000):
            if first:  # streaming: the first batch arrives long before EOF
                assert reader.bytes_read < path.stat().st_size // 2
                first = False
            assert batch.schema == reader.schema.polars_schema()
            sizes.append(batch.height)
    assert sum(sizes) == n and max(sizes) == 1_000 and len(sizes) == 300


_RSS_SCRIPT = """
import resource, sys
from pathlib import Path
import polars, pyarrow
from bastion.data_security.readers import open_table, ReadOptions
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
opts = ReadOptions(max_line_bytes=1 << 20, max_cell_bytes=1 << 16)
with open_table(Path(sys.argv[1]), options=opts) as r:
    for b in r.iter_batches(rows=2_000):
        pass
print(r.rows_read, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


def test_memory_stays_bounded_by_the_batch_not_the_file(tmp_path: Path) -> None:
    row = b"1234567,abcdefghijklmnopqrstuvwxyz,3.14159,2024-01-01,true\n"
    path = tmp_path / "rss.csv"
    with path.open("wb") as f:
        f.write(b"a,b,c,d,e\n")
        chunk = row * 100_000
        for _ in range(25):  # ~150 MB
            f.write(chunk)
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()
    rows, grew_mib = int(out[0]), int(out[1])
    assert rows == 2_500_000
    assert grew_mib < 100, f"peak RSS grew by {grew_mib} MiB reading a 150 MB file"


cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters='\n\r",'),
    max_size=12,
).filter(lambda s: s != "" and not s.startswith(("=", "+", "-", "@", "\t", "\r")))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(1, 5))
    names = draw(st.lists(cell.filter(lambda s: s.strip() != ""), min_size=width,
                          max_size=width, unique=True))
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), min_size=1,
                         max_size=20))
    return names, rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(tables())
def test_csv_writer_tables_read_back_identically(tmp_path: Path,
                                                 table: tuple[list[str], list[list[str]]]) -> None:
    names, rows = table
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(names)
    writer.writerows(rows)
    path = tmp_path / "h.csv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    opts = ReadOptions(column_types={n: LogicalType.STRING for n in names})
    if any(n == "*" or (len(n) > 1 and n[0] == "^" and n[-1] == "$") for n in names):
        with pytest.raises(BadHeader), open_table(path, format=TableFormat.CSV, options=opts):
            pass  # a polars column pattern is refused as a name (test above)
        return
    with open_table(path, format=TableFormat.CSV, options=opts) as reader:
        assert reader.schema.names == tuple(names)
        got = pl.concat(list(reader.iter_batches(rows=7)))
    assert got.rows() == [tuple(r) for r in rows]


@pytest.mark.parametrize("header", ["{", "[", "{note}", "[x]"])
def test_csv_with_bracket_header_is_not_mistaken_for_json(tmp_path: Path, header: str) -> None:
    path = tmp_path / "h.csv"
    path.write_text(f"{header},n\nalpha,1\n")
    with open_table(path) as reader:
        frame = pl.concat(list(reader.iter_batches()))
    assert reader.format is TableFormat.CSV
    assert frame.columns == [header, "n"] and frame.height == 1



@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("name", ["^[$", "^a$", "^.*$", "*"])
def test_column_name_polars_reads_as_a_pattern_is_refused(tmp_path: Path, suffix: str,
                                                          name: str) -> None:
    """pl.col('*') is every column and pl.col('^...$') a regex: such a header is refused."""
    path = tmp_path / f"r{suffix}"
    write_frame(pl.DataFrame({"a": ["x", "y"], name: ["u", "v"]}), path)
    with pytest.raises(BadHeader, match="polars column pattern"), open_table(path) as reader:
        list(reader.iter_batches())
