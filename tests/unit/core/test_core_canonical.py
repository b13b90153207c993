"""Canonical JSON: deterministic bytes whatever produced the value."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.core.canonical import JSON, canonical_json, sha256_hex
from bastion.core.errors import InputError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(min_value=-(2.0**52), max_value=2.0**52, allow_nan=False)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


def _shuffled(value: JSON) -> JSON:
    """The same logical value with every map's insertion order reversed."""
    if isinstance(value, dict):
        return {k: _shuffled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_shuffled(v) for v in value]
    return value


@settings(max_examples=80, deadline=None)
@given(values)
def test_property_canonical_json_is_deterministic(value: JSON) -> None:
    first = canonical_json(value)
    assert canonical_json(_shuffled(value)) == first
    # It is valid JSON that decodes back to an equal value, and is a fixed point.
    decoded = json.loads(first)
    assert canonical_json(decoded) == first


def test_known_vector() -> None:
    assert canonical_json({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'
    assert canonical_json({"x": 1.0}) == b'{"x":1}'
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1: "int key"}, {"k": object()}, b"bytes"])
def test_non_json_values_are_input_errors(bad: object) -> None:
    with pytest.raises(InputError):
        canonical_json(bad)  # type: ignore[arg-type]
