"""Every bad input of issue 3 §1 gets a typed error naming file, line and column."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bastion.core.errors import BastionError, InputError
from bastion.data_security import errors as E
from bastion.data_security.readers import LogicalType, ReadOptions, TableFormat, open_table

ASSETS = Path(__file__).parents[2] / "assets" / "bad_inputs"


def read_all(path: Path, options: ReadOptions | None = None, **kw: object) -> list[pl.DataFrame]:
    with open_table(path, options=options, **kw) as reader:  # type: ignore[arg-type]
        return list(reader.iter_batches(rows=3))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def ints(n: int) -> bytes:
    return b"".join(b"%d,%d\n" % (i, i * 10) for i in range(n))


def test_all_reader_errors_derive_from_ingest_error_and_root() -> None:
    for cls in (E.TableReadError, E.FormatMismatch, E.MixedTypeColumn, E.FormulaInjection,
                E.UnsupportedColumnType, E.OversizedValue, E.EncodingError):
        assert issubclass(cls, E.IngestError) and issubclass(cls, InputError)
        assert issubclass(cls, E.DataSecurityError) and issubclass(cls, BastionError)


def test_malformed_csv_unterminated_quote() -> None:
    with pytest.raises(E.MalformedTable) as err:
        read_all(ASSETS / "unterminated_quote.csv")
    assert err.value.line == 3 and "unterminated" in err.value.message
    assert err.value.hint


def test_wrong_encoding_latin1_names_line_and_offset_and_iconv() -> None:
    with pytest.raises(E.EncodingError) as err:
        read_all(ASSETS / "latin1_encoding.csv")
    assert err.value.line == 3
    assert "byte 0xe9 at byte offset 24" in err.value.message
    assert "iconv" in err.value.diagnostics()


def test_utf8_bom_is_stripped_not_part_of_first_column_name() -> None:
    with open_table(ASSETS / "utf8_bom.csv") as reader:
        assert reader.schema.names == ("id", "income")
        frame = pl.concat(list(reader.iter_batches()))
    assert frame["id"].to_list() == [1, 2]
    assert reader.sha256 is not None  # the digest covers the BOM bytes too


def test_ragged_row_too_many_fields() -> None:
    with pytest.raises(E.RaggedRow) as err:
        read_all(ASSETS / "ragged_row.csv")
    assert err.value.line == 3 and "4 fields but the header has 3" in err.value.message


def test_ragged_row_too_few_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "few.csv", b"a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(E.RaggedRow) as err:
        read_all(path)
    assert err.value.line == 3


def test_mixed_type_column_names_line_value_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", b"id,income\n" + ints(50) + b"51,abc\n")
    with pytest.raises(E.MixedTypeColumn) as err:
        read_all(path, ReadOptions(infer_rows=20))
    e = err.value
    assert (e.line, e.column) == (52, "income")
    assert "'abc' where integers were seen" in e.message
    assert "declare the column as string" in (e.hint or "")


def test_mixed_type_column_declared_string_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", b"id,income\n" + ints(50) + b"51,abc\n")
    opts = ReadOptions(infer_rows=20, column_types={"income": LogicalType.STRING})
    frame = pl.concat(read_all(path, opts))
    assert frame.schema["income"] == pl.String and frame["income"][-1] == "abc"


def test_leading_zero_id_is_not_silently_made_an_int(tmp_path: Path) -> None:
    path = write(tmp_path, "z.csv", b"zip\n10115\n" * 1 + b"01067\n")
    with open_table(path) as reader:
        assert reader.schema.type_of("zip") is LogicalType.STRING


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(E.EmptyTable, match="empty"):
        open_table(write(tmp_path, "e.csv", b""))


def test_whitespace_only_file_has_no_columns(tmp_path: Path) -> None:
    with pytest.raises(E.EmptyTable):
        open_table(write(tmp_path, "w.csv", b"\n\n  \n"))


def test_header_only_is_an_error_by_default(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", b"a,b\n")
    with pytest.raises(E.EmptyTable, match="no rows"):
        read_all(path)


def test_header_only_with_allow_empty_is_an_empty_table(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", b"a,b\n")
    with open_table(path, options=ReadOptions(allow_empty=True)) as reader:
        assert list(reader.iter_batches()) == []
        assert reader.schema.names == ("a", "b") and reader.rows_read == 0


def test_duplicate_column_names(tmp_path: Path) -> None:
    with pytest.raises(E.BadHeader, match="appears twice") as err:
        open_table(write(tmp_path, "d.csv", b"a,b,a\n1,2,3\n"))
    assert err.value.line == 1


def test_empty_column_name(tmp_path: Path) -> None:
    with pytest.raises(E.BadHeader, match="column 2 has an empty name"):
        open_table(write(tmp_path, "d.csv", b"a,,c\n1,2,3\n"))


@pytest.mark.parametrize("token", [b"NaN", b"nan", b"inf", b"-inf", b"Infinity"])
def test_nan_and_inf_in_numeric_column_are_refused(tmp_path: Path, token: bytes) -> None:
    path = write(tmp_path, "n.csv", b"id,x\n1,1.5\n2,2.5\n3," + token + b"\n")
    with pytest.raises(E.NonFiniteValue) as err:
        read_all(path)
    assert (err.value.line, err.value.column) == (4, "x")
    assert "not a finite number" in err.value.message


def test_float_overflow_1e309_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "o.csv", b"id,x\n1,1.5\n2,1e309\n")
    with pytest.raises(E.NonFiniteValue, match="overflows") as err:
        read_all(path)
    assert err.value.line == 3


def test_nan_allowed_by_option(tmp_path: Path) -> None:
    path = write(tmp_path, "n.csv", b"id,x\n1,1.5\n2,NaN\n")
    frame = pl.concat(read_all(path, ReadOptions(allow_non_finite=True)))
    assert frame["x"].is_nan().to_list() == [False, True]


def test_formula_injection_hyperlink() -> None:
    with pytest.raises(E.FormulaInjection) as err:
        read_all(ASSETS / "formula_injection_hyperlink.csv")
    assert (err.value.line, err.value.column) == (3, "note")
    assert "unsafe_allow_formula_cells" in (err.value.hint or "")


def test_formula_injection_dde_cmd() -> None:
    with pytest.raises(E.FormulaInjection) as err:
        read_all(ASSETS / "formula_injection_dde_cmd.csv")
    assert err.value.line == 3 and "=cmd|" in err.value.message


@pytest.mark.parametrize("cell", [b"+SUM(A1)", b"@SUM(A1)", b"-2+3+cmd|' /C calc'!A0"])
def test_formula_injection_other_prefixes(tmp_path: Path, cell: bytes) -> None:
    path = write(tmp_path, "f.csv", b"id,note\n1,ok\n2," + cell + b"\n")
    with pytest.raises(E.FormulaInjection):
        read_all(path)


def test_formula_injection_allowed_as_plain_string_by_unsafe_option() -> None:
    opts = ReadOptions(unsafe_allow_formula_cells=True)
    frame = pl.concat(read_all(ASSETS / "formula_injection_dde_cmd.csv", opts))
    assert frame["note"][1].startswith("=cmd|")


def test_negative_numbers_are_not_formulas(tmp_path: Path) -> None:
    path = write(tmp_path, "neg.csv", b"id,note,x\n1,-5,-1.5\n2,abc,+2\n")
    frame = pl.concat(read_all(path))
    assert frame["note"].to_list() == ["-5", "abc"] and frame["x"].to_list() == [-1.5, 2.0]


def test_formula_in_column_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(E.FormulaInjection):
        open_table(write(tmp_path, "h.csv", b"id,=1+1\n1,2\n"))


def test_very_long_cell_over_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", b"id,s\n1,x\n2," + b"y" * 5000 + b"\n")
    with pytest.raises(E.OversizedValue) as err:
        read_all(path, ReadOptions(max_cell_bytes=1000, max_line_bytes=64_000))
    assert (err.value.line, err.value.column) == (3, "s")


def test_single_huge_line_cannot_exhaust_memory(tmp_path: Path) -> None:
    # a line 40x over the limit, with no newline at all (a "5 GB line" in miniature)
    path = write(tmp_path, "huge.csv", b"id,s\n1,x\n2," + b"y" * 2_000_000)
    with pytest.raises(E.OversizedValue) as err:
        read_all(path, ReadOptions(max_cell_bytes=10_000, max_line_bytes=50_000))
    assert err.value.line == 3


def test_million_distinct_categories_stay_a_plain_string(tmp_path: Path) -> None:
    n = 1_000_000
    frame = pl.DataFrame({"id": range(n)}).with_columns(cat=pl.format("c{}", pl.col("id")))
    path = tmp_path / "cats.csv"
    frame.write_csv(path)
    with open_table(path) as reader:
        assert reader.schema.type_of("cat") is LogicalType.STRING
        got = sum(b["cat"].n_unique() for b in reader.iter_batches(rows=250_000))
        assert got == n and reader.rows_read == n


def test_file_with_csv_extension_is_parquet(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(E.FormatMismatch, match="is a Parquet file"):
        open_table(path)


def test_file_with_parquet_extension_is_not_parquet(tmp_path: Path) -> None:
    path = write(tmp_path, "loans.parquet", b"a,b\n1,2\n")
    with pytest.raises(E.FormatMismatch, match="is not a Parquet file"):
        open_table(path)


def test_declared_format_disagreeing_with_content(tmp_path: Path) -> None:
    path = write(tmp_path, "data.txt", b'{"a":1}\n')
    with pytest.raises(E.FormatMismatch):
        open_table(path, format=TableFormat.CSV)


def test_gzip_named_csv_is_refused_with_hint() -> None:
    with pytest.raises(E.UnsupportedInput, match="gzip") as err:
        open_table(ASSETS / "gzip_named_csv.csv")
    assert "gunzip" in (err.value.hint or "")


def test_zip_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(E.UnsupportedInput, match="zip"):
        open_table(write(tmp_path, "x.csv", b"PK\x03\x04" + b"\x00" * 30))


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 8
    with pytest.raises(E.UnsupportedInput, match="binary"):
        open_table(write(tmp_path, "g.csv", garbage))


def test_utf16_text_is_refused_with_iconv_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "u16.csv", "a,b\n1,2\n".encode("utf-16"))
    with pytest.raises(E.UnsupportedInput) as err:
        open_table(path)
    assert "iconv" in (err.value.hint or "")


def test_corrupt_parquet_with_magic_is_refused() -> None:
    with pytest.raises(E.TableReadError):
        open_table(ASSETS / "parquet_named_csv.csv", format=TableFormat.PARQUET)


def test_jsonl_non_object_line(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":1}\n' * 30 + b"[1,2]\n")
    with pytest.raises(E.MalformedTable, match="not an object") as err:
        read_all(path, ReadOptions(infer_rows=10))
    assert err.value.line == 31


def test_jsonl_invalid_json_line(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":1}\n' * 30 + b'{"a": 2,\n{"a":3}\n')
    with pytest.raises(E.MalformedTable, match="invalid JSON") as err:
        read_all(path, ReadOptions(infer_rows=10))
    assert err.value.line == 31


def test_jsonl_nested_object_is_refused() -> None:
    with pytest.raises(E.UnsupportedColumnType, match="nested") as err:
        read_all(ASSETS / "jsonl_nested_object.jsonl")
    assert (err.value.line, err.value.column) == (2, "addr")


def test_jsonl_nested_array_after_the_sample(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":1}\n' * 30 + b'{"a":[1]}\n')
    with pytest.raises(E.UnsupportedColumnType) as err:
        read_all(path, ReadOptions(infer_rows=10))
    assert err.value.line == 31


def test_jsonl_mixed_type_after_the_sample(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":1}\n' * 30 + b'{"a":"x"}\n')
    with pytest.raises(E.MixedTypeColumn) as err:
        read_all(path, ReadOptions(infer_rows=10))
    assert (err.value.line, err.value.column) == (31, "a")


def test_jsonl_new_key_after_the_sample(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":1}\n' * 30 + b'{"a":1,"b":2}\n')
    with pytest.raises(E.MalformedTable, match="'b' does not appear") as err:
        read_all(path, ReadOptions(infer_rows=10))
    assert err.value.line == 31


def test_jsonl_nan_and_overflow(tmp_path: Path) -> None:
    for token, word in ((b"NaN", "not a finite"), (b"1e309", "overflows")):
        path = write(tmp_path, "j.jsonl", b'{"a":1.5}\n' * 30 + b'{"a":' + token + b"}\n")
        with pytest.raises(E.NonFiniteValue, match=word) as err:
            read_all(path, ReadOptions(infer_rows=10))
        assert err.value.line == 31


def test_jsonl_formula_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":"x"}\n\n{"a":"=HYPERLINK(1)"}\n')
    with pytest.raises(E.FormulaInjection) as err:
        read_all(path)
    assert err.value.line == 3


def test_jsonl_wrong_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "j.jsonl", b'{"a":"x"}\n{"a":"caf\xe9"}\n')
    with pytest.raises(E.EncodingError) as err:
        read_all(path)
    assert err.value.line == 2 and "offset 19" in err.value.message


def test_jsonl_array_file_is_refused_with_jq_hint(tmp_path: Path) -> None:
    with pytest.raises(E.UnsupportedInput, match="JSON array"):
        open_table(write(tmp_path, "a.jsonl", b'[{"a":1}]'))


def test_parquet_nested_struct_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"id": [1], "addr": [{"city": "Paris"}]}), path)
    with pytest.raises(E.UnsupportedColumnType) as err:
        open_table(path)
    assert err.value.column == "addr"


def test_parquet_list_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"tags": [["a", "b"]]}), path)
    with pytest.raises(E.UnsupportedColumnType):
        open_table(path)


def test_parquet_nan_names_row_group_and_row(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0, float("inf")]}), path, row_group_size=2)
    with pytest.raises(E.NonFiniteValue) as err:
        read_all(path)
    assert (err.value.row_group, err.value.row, err.value.column) == (1, 1, "x")


def test_parquet_formula_cell(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"note": ["ok", "=1+2"]}), path)
    with pytest.raises(E.FormulaInjection) as err:
        read_all(path)
    assert (err.value.row_group, err.value.row) == (0, 1)


def test_error_to_dict_is_json_safe(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", b"a\n1\nx\n")
    with pytest.raises(E.TableReadError) as err:
        read_all(path, ReadOptions(infer_rows=1))
    d = err.value.to_dict()
    assert d["code"] == "mixed_type_column" and d["line"] == 3 and d["column"] == "a"
