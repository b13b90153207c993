"""Input validation generated from the training dataset's data contract.

``derive_schema`` turns the contract's columns (type, nullability, hard range, allowed
categories — or the categories the trusted training sample holds) for the model's
features into an :class:`InputSchema`, fixed at deploy time.  Every input is required.
``parse_request`` reads a request body — strict JSON, nesting bounded *before* parsing,
NaN/Infinity/overflowing numbers (``1e309``) refused — and ``validate_rows`` checks every
row: required and unknown fields, types (a boolean is not a number), ranges, categories
(exact match: a Unicode look-alike of ``owner`` is not ``owner``).  Each refusal is an
:class:`InvalidFeatures` naming the field and the reason.

Example::

    schema = derive_schema(contract, ("Income", "Home"), source="credit/loans contract v1")
    rows = validate_rows(schema, parse_request(b'{"rows": [{"Income": 1200, "Home": "owner"}]}'))
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from bastion.core.canonical import nesting_depth
from bastion.data_security.contract import DataContract
from bastion.data_security.profile import LogicalType
from bastion.serving.errors import DeploymentRefused, InvalidFeatures
from bastion.serving.ood import derive_reference
from bastion.serving.values import FieldKind, FieldSpec, InputSchema

MAX_DEPTH = 8  # {"rows": [{"field": value}]} needs 3
MAX_ROWS = 256
_LARGEST = 2.0**63  # beyond a 64-bit integer: no feature of ours, and it would overflow
_KINDS = {
    LogicalType.INTEGER: FieldKind.INTEGER,
    LogicalType.FLOAT: FieldKind.FLOAT,
    LogicalType.BOOLEAN: FieldKind.BOOLEAN,
    LogicalType.STRING: FieldKind.STRING,
}


def derive_schema(contract: DataContract, features: Sequence[str], *, source: str) -> InputSchema:
    """The input schema of a model trained on data under ``contract``."""
    fields = []
    for name in features:
        col = contract.column(name)
        if col is None or col.logical not in _KINDS:
            what = "is not in" if col is None else f"has type {col.logical.value} in"
            raise DeploymentRefused(
                f"feature {name!r} {what} the training data's contract ({source})",
                hint="the gateway validates input against the contract; fix the contract "
                     "(bastion data contract-set) or retrain")
        seen = col.inferred
        # categories: the contract's, else those the trusted training data holds (a model
        # cannot meaningfully encode a category it never saw); null only where the
        # contract allows it *and* training data had nulls for the model to learn from
        allowed = col.allowed if col.allowed is not None else (seen.categories if seen else None)
        nullable = col.nullable and (seen is None or seen.nulls > 0)
        fields.append(FieldSpec(name, _KINDS[col.logical], nullable, col.minimum,
                                col.maximum, allowed))
    return InputSchema(tuple(fields), source, derive_reference(contract, features))


def _bad(field: str, reason: str, hint: str | None = None) -> InvalidFeatures:
    return InvalidFeatures(f"{field}: {reason}", field=field, reason=reason, hint=hint)


def _no_constant(name: str) -> Any:
    raise _bad("body", f"{name} is not a number JSON allows", "send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _bad("body", f"the number {text[:40]} overflows a 64-bit float")
    return value


def parse_request(body: bytes) -> list[dict[str, Any]]:
    """The rows of a request body ``{"rows": [{...}, ...]}`` or ``{"row": {...}}``."""
    if nesting_depth(body, MAX_DEPTH) > MAX_DEPTH:
        raise _bad("body", f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        doc = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad("body", f"not valid JSON ({str(e)[:80]})") from None
    if not isinstance(doc, dict) or (("rows" in doc) == ("row" in doc)) or len(doc) != 1:
        raise _bad("body", 'expected {"rows": [{...}, ...]} or {"row": {...}}')
    rows = doc["rows"] if "rows" in doc else [doc["row"]]
    if not isinstance(rows, list) or not rows:
        raise _bad("rows", "must be a non-empty list of objects")
    if len(rows) > MAX_ROWS:
        raise _bad("rows", f"{len(rows)} rows; at most {MAX_ROWS} per request")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _bad(f"rows[{i}]", "must be an object of field: value")
    return rows


def _check(spec: FieldSpec, value: Any, where: str) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise _bad(where, "is required and may not be null")
    kind = spec.kind
    if kind is FieldKind.BOOLEAN:
        if not isinstance(value, bool):
            raise _bad(where, f"must be a boolean, got {type(value).__name__}")
        return value
    if kind is FieldKind.STRING:
        if not isinstance(value, str):
            raise _bad(where, f"must be a string, got {type(value).__name__}")
        if spec.allowed is not None and value not in spec.allowed:
            shown = ", ".join(spec.allowed[:10])
            raise _bad(where, f"{value[:40]!r} is not an allowed category", f"one of: {shown}")
        return value
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (kind is FieldKind.INTEGER and isinstance(value, float)
                       and not value.is_integer()):
        raise _bad(where, f"must be {'an integer' if kind is FieldKind.INTEGER else 'a number'}"
                          f", got {type(value).__name__}")
    if abs(value) > _LARGEST:
        raise _bad(where, f"{str(value)[:40]} is out of the range a model input may take")
    if spec.minimum is not None and value < spec.minimum:
        raise _bad(where, f"{value} is below the minimum {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise _bad(where, f"{value} is above the maximum {spec.maximum:g}")
    return value


def validate_rows(schema: InputSchema, rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Rows as value lists in the schema's column order; the first problem raises."""
    known = set(schema.columns)
    out = []
    for i, row in enumerate(rows):
        unknown = sorted(k for k in row if k not in known)
        if unknown:
            raise _bad(f"rows[{i}].{unknown[0][:64]}", "is not an input of this endpoint",
                       f"the inputs are: {', '.join(schema.columns)}")
        values: list[Any] = []
        for spec in schema.fields:
            where = f"rows[{i}].{spec.name}"
            if spec.name not in row:
                raise _bad(where, "is required")
            values.append(_check(spec, row[spec.name], where))
        out.append(values)
    return out


__all__ = ["MAX_DEPTH", "MAX_ROWS", "derive_schema", "parse_request", "validate_rows"]
