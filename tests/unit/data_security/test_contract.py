"""Data contracts: inference, steward-editable JSON with clear errors, batch checks."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from bastion.data_security.contract import DataContract, check_contract, infer_contract
from bastion.data_security.errors import InvalidContract
from bastion.data_security.profile import LogicalType, profile_frame


def _frame(n: int = 500, seed: int = 0) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": np.arange(n) + seed * n,
            "age": r.integers(18, 90, n),
            "income": r.normal(50_000, 5_000, n),
            "gender": r.choice(["F", "M"], n),
            "note": [f"free text {i}" for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def contract() -> DataContract:
    return infer_contract(profile_frame(_frame()))


def test_inferred_contract_shape(contract: DataContract) -> None:
    cid, age, gender, note = (contract.column(n) for n in ("customer_id", "age", "gender", "note"))
    assert cid is not None and cid.unique and cid.minimum is None  # ids grow: no range
    assert age is not None and not age.unique and age.logical == LogicalType.INTEGER
    assert age.minimum is not None and age.minimum <= 18 and age.maximum is not None
    assert gender is not None and gender.allowed == ("F", "M")
    assert note is not None and note.allowed is None  # all distinct: not a category
    assert all(not c.nullable for c in contract.columns)


def test_new_clean_batch_passes(contract: DataContract) -> None:
    result = check_contract(_frame(seed=1), contract)
    assert result.passed, result.render_text()


def test_violations_name_columns_and_rows(contract: DataContract) -> None:
    df = _frame(seed=1).with_row_index("i")
    df = df.with_columns(
        pl.when(pl.col("i") == 3).then(-5).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.col("i") == 7).then(pl.lit("Q")).otherwise(pl.col("gender")).alias("gender"),
        pl.when(pl.col("i") == 9).then(None).otherwise(pl.col("income")).alias("income"),
        pl.when(pl.col("i") == 11).then(500).otherwise(pl.col("customer_id")).alias("customer_id"),
    ).drop("i")
    result = check_contract(df, contract)
    assert not result.passed and result.blocking
    assert set(result.flagged_rows) == {0, 3, 7, 9, 11}  # row 0 holds id 500 too
    text = "\n".join(result.details)
    assert "'age': 1 values below min" in text
    assert "'gender': 1 values outside the allowed categories" in text
    assert "'income': 1 nulls" in text
    assert "'customer_id': 2 duplicate values" in text
    assert result.metrics["flagged_total"] == 5


def test_type_mismatch_missing_extra_and_row_bounds(contract: DataContract) -> None:
    df = _frame(seed=1).with_columns(pl.col("age").cast(pl.String)).drop("note")
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("forty"))
        .otherwise(pl.col("age"))
        .alias("age"),
        pl.lit(1).alias("surprise"),
    )
    result = check_contract(df, contract)
    text = "\n".join(result.details)
    assert "'note': missing" in text and "'surprise'" in text
    assert "'age': type is string" in text
    assert result.flagged_rows == (4,)
    small = DataContract(version=2, columns=contract.columns, min_rows=1000)
    assert "below the contract minimum" in "\n".join(check_contract(_frame(), small).details)


def test_float_values_in_integer_column_are_flagged(contract: DataContract) -> None:
    df = _frame(seed=1).with_columns(pl.col("age").cast(pl.Float64))
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(30.5).otherwise(pl.col("age")).alias("age")
    )
    assert check_contract(df, contract).flagged_rows == (2,)


def test_json_round_trip(contract: DataContract) -> None:
    assert DataContract.from_json(contract.to_json()) == contract


def test_edited_json_errors_name_field_and_problem(contract: DataContract) -> None:
    doc = json.loads(contract.to_json())
    doc["columns"][1]["min"] = "zero"
    doc["columns"][1]["max"] = -1
    doc["columns"][3]["allowed_values"] = []
    doc["columns"][2]["type"] = "money"
    doc["row_count"]["min"] = -3
    doc["colums"] = []
    with pytest.raises(InvalidContract) as err:
        DataContract.from_json(json.dumps(doc))
    msg = err.value.message
    assert "columns[1] ('age').min: must be a finite number" in msg
    assert "columns[3] ('gender').allowed_values: an empty list" in msg
    assert "columns[2] ('income').type: must be one of" in msg
    assert "row_count.min" in msg and "colums: unknown field" in msg
    with pytest.raises(InvalidContract, match="line 1"):
        DataContract.from_json("{not json")


def test_duplicate_column_and_range_on_string_rejected(contract: DataContract) -> None:
    doc = json.loads(contract.to_json())
    doc["columns"].append(dict(doc["columns"][0]))
    doc["columns"][3]["min"] = 1
    with pytest.raises(InvalidContract) as err:
        DataContract.from_json(json.dumps(doc))
    assert "duplicate column 'customer_id'" in err.value.message
    assert "only integer/float columns take a range" in err.value.message
