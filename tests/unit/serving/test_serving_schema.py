"""Unit tests of the serving layer's parsers: the request body, the input schema check
and the worker frame format (no sandbox, no database)."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.serving.errors import InvalidFeatures, WireError
from bastion.serving.schema import MAX_DEPTH, MAX_ROWS, parse_request, validate_rows
from bastion.serving.values import FieldKind, FieldSpec, InputSchema, ResponsePolicy
from bastion.serving.wire import MAX_FRAME, decode, encode, frame_length

SCHEMA = InputSchema((
    FieldSpec("age", FieldKind.INTEGER, minimum=18, maximum=100),
    FieldSpec("income", FieldKind.FLOAT, minimum=0),
    FieldSpec("home", FieldKind.STRING, allowed=("owner", "rent")),
    FieldSpec("married", FieldKind.BOOLEAN),
    FieldSpec("note", FieldKind.STRING, nullable=True),
), "test")
GOOD = {"age": 40, "income": 1200.5, "home": "owner", "married": False, "note": None}


def _refusal(row: dict[str, object]) -> InvalidFeatures:
    with pytest.raises(InvalidFeatures) as e:
        validate_rows(SCHEMA, [row])
    return e.value


def test_valid_row_comes_back_in_schema_order() -> None:
    shuffled = dict(reversed(list(GOOD.items())))
    assert validate_rows(SCHEMA, [shuffled]) == [[40, 1200.5, "owner", False, None]]


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"age": 17}, "rows[0].age", "below the minimum"),
    ({"age": 40.5}, "rows[0].age", "must be an integer"),
    ({"age": True}, "rows[0].age", "must be an integer"),
    ({"income": "1200"}, "rows[0].income", "must be a number"),
    ({"income": 2.0**70}, "rows[0].income", "out of the range"),
    ({"home": "OWNER"}, "rows[0].home", "not an allowed category"),
    ({"home": "\u043ewner"}, "rows[0].home", "not an allowed category"),  # Cyrillic small o
    ({"married": 0}, "rows[0].married", "must be a boolean"),
    ({"age": None}, "rows[0].age", "may not be null"),
    ({"extra": 1}, "rows[0].extra", "not an input"),
])
def test_each_bad_value_names_its_field_and_reason(change: dict[str, object], field: str,
                                                   reason: str) -> None:
    e = _refusal({**GOOD, **change})
    assert e.field == field and reason in e.reason


def test_missing_field_is_required_even_when_nullable() -> None:
    row = dict(GOOD)
    del row["note"]
    assert _refusal(row).field == "rows[0].note"


@pytest.mark.parametrize("body", [
    b'{"row": {"income": NaN}}', b'{"row": {"income": Infinity}}',
    b'{"row": {"income": -Infinity}}', b'{"row": {"income": 1e309}}',
])
def test_nan_infinity_and_overflow_are_refused_while_parsing(body: bytes) -> None:
    with pytest.raises(InvalidFeatures) as e:
        parse_request(body)
    assert e.value.field == "body"


@pytest.mark.parametrize("body", [
    b"[]", b'{"rows": []}', b'{"rows": [1]}', b'{"row": {}, "rows": []}', b'{"x": 1}',
    b"\xff\xfe", b'{"rows": [{}]' ,
])
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidFeatures):
        parse_request(body)


def test_too_many_rows_are_refused() -> None:
    with pytest.raises(InvalidFeatures) as e:
        parse_request(json.dumps({"rows": [GOOD] * (MAX_ROWS + 1)}).encode())
    assert e.value.field == "rows"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 10_000, 1_000_000])
def test_deep_nesting_is_refused_before_json_recurses(depth: int) -> None:
    body = b'{"row": {"note": ' + b"[" * depth + b"]" * depth + b"}}"
    with pytest.raises(InvalidFeatures) as e:
        parse_request(body)
    assert "nested deeper" in e.value.reason


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    rows = parse_request(json.dumps({"row": {**GOOD, "note": "[[[[[[[[[[[[\\\"{{{{{{"}}).encode())
    assert validate_rows(SCHEMA, rows)[0][4].startswith("[[[[")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_invalid_features(body: bytes) -> None:
    with contextlib.suppress(InvalidFeatures):
        validate_rows(SCHEMA, parse_request(body))


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20))
def test_frames_round_trip_strict_json(value: object) -> None:
    frame = encode({"type": "result", "value": value})
    assert frame_length(frame[:4]) == len(frame) - 4
    assert decode(frame[4:]) == {"type": "result", "value": value}


def test_frames_refuse_nan_oversize_and_non_objects() -> None:
    with pytest.raises(WireError):
        encode({"type": "result", "x": math.nan})
    with pytest.raises(WireError):
        frame_length((MAX_FRAME + 1).to_bytes(4, "big"))
    for body in (b"[1]", b'{"no": "type"}', b'{"type": NaN}', b"\x80"):
        with pytest.raises(WireError):
            decode(body)


def test_schema_and_policy_survive_their_json_form() -> None:
    assert InputSchema.from_json(SCHEMA.to_json()) == SCHEMA
    policy = ResponsePolicy(decimals=3, scores=False)
    assert ResponsePolicy.from_json(policy.to_json()) == policy
