"""The data contract value types and their steward-editable JSON form.

A contract says what every batch of a dataset must look like: its columns
with type, nullability, numeric range, allowed categories and uniqueness,
plus per-batch row-count bounds.  Those are *hard* constraints: any violation
blocks.  An inferred column also carries ``inferred`` evidence — the trusted
sample's size, its observed extremes with a fitted tail, and its observed
categories — which the check treats as *soft*: a value beyond them is a warning
with its probability under the trusted data, and blocks only when that
probability is below the calibrated level (see ``check``).  ``to_json`` writes a document a data
steward can review and edit; ``from_json`` validates it and reports *every*
problem with the field path (``columns[2].min``) and what is wrong.

Example::

    contract = infer_contract(profile)
    text = contract.to_json()                       # review / edit by hand
    contract = DataContract.from_json(edited_text)  # InvalidContract on mistakes
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bastion.data_security.errors import InvalidContract
from bastion.data_security.profile import LogicalType
from bastion.data_security.stats.tails import TailFit

#: the ``format`` marker of a contract document
CONTRACT_FORMAT = "bastion.data-contract/v1"

_COLUMN_KEYS = {"name", "type", "nullable", "min", "max", "allowed_values", "unique", "inferred"}
_INFERRED_KEYS = {
    "rows",
    "nulls",
    "min",
    "max",
    "lower_tail",
    "upper_tail",
    "categories",
    "singletons",
}
_TOP_KEYS = {"format", "version", "row_count", "allow_extra_columns", "columns"}
_RANGED = (LogicalType.INTEGER, LogicalType.FLOAT)


@dataclass(frozen=True)
class SampleEvidence:
    """What the trusted sample says about a column: soft bounds with their uncertainty.

    ``rows`` non-null trusted values and ``nulls`` null ones (a column with no
    null in the sample may still have rare nulls: a null in the batch is then
    tested, not refused); ``upper`` the tail beyond the observed
    maximum, ``lower`` beyond the observed minimum (fitted on negated values);
    ``categories`` the observed category set and ``singletons`` how many of them
    were seen once (Good-Turing: the chance a new row brings an unseen category
    is about ``(singletons + 1) / (rows + 1)``).
    """

    rows: int
    lower: TailFit | None = None
    upper: TailFit | None = None
    categories: tuple[str, ...] | None = None
    singletons: int = 0
    nulls: int = 0

    @property
    def observed_min(self) -> float | None:
        return -self.lower.edge if self.lower is not None else None

    @property
    def observed_max(self) -> float | None:
        return self.upper.edge if self.upper is not None else None

    def to_dict(self) -> dict[str, object]:
        def tail(t: TailFit | None) -> dict[str, float] | None:
            return None if t is None else {"scale": t.scale, "shape": t.shape}

        return {
            "rows": self.rows,
            "nulls": self.nulls,
            "min": self.observed_min,
            "max": self.observed_max,
            "lower_tail": tail(self.lower),
            "upper_tail": tail(self.upper),
            "categories": list(self.categories) if self.categories is not None else None,
            "singletons": self.singletons,
        }


@dataclass(frozen=True)
class ColumnContract:
    """What one column must satisfy."""

    name: str
    logical: LogicalType
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    #: soft evidence from the sample the column was inferred from (None: hard rules only)
    inferred: SampleEvidence | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "type": self.logical.value,
            "nullable": self.nullable,
            "min": _num_out(self.minimum, self.logical),
            "max": _num_out(self.maximum, self.logical),
            "allowed_values": list(self.allowed) if self.allowed is not None else None,
            "unique": self.unique,
        }
        if self.inferred is not None:
            out["inferred"] = self.inferred.to_dict()
        return out


@dataclass(frozen=True)
class DataContract:
    """A dataset's contract, ``version`` incremented on each accepted edit."""

    version: int
    columns: tuple[ColumnContract, ...]
    min_rows: int | None = None
    max_rows: int | None = None
    allow_extra_columns: bool = False
    _index: Mapping[str, ColumnContract] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "_index", {c.name: c for c in self.columns})

    def column(self, name: str) -> ColumnContract | None:
        return self._index.get(name)

    def to_dict(self) -> dict[str, object]:
        return {
            "format": CONTRACT_FORMAT,
            "version": self.version,
            "row_count": {"min": self.min_rows, "max": self.max_rows},
            "allow_extra_columns": self.allow_extra_columns,
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_json(self) -> str:
        """Pretty, stable JSON for review."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> DataContract:
        """Parse and validate a contract document (see :func:`parse_contract`)."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidContract(
                f"contract is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
                hint="fix the JSON syntax (a missing comma or quote is the usual cause)",
            ) from e
        return parse_contract(doc)


def _num_out(value: float | None, logical: LogicalType) -> float | int | None:
    if value is None:
        return None
    if logical == LogicalType.INTEGER and float(value).is_integer():
        return int(value)
    return value


def parse_contract(doc: object) -> DataContract:
    """Validate a decoded contract document, listing every problem found."""
    errors: list[str] = []
    if not isinstance(doc, Mapping):
        raise InvalidContract("contract must be a JSON object")
    for key in sorted(set(doc) - _TOP_KEYS):
        errors.append(f"{key}: unknown field (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if doc.get("format") != CONTRACT_FORMAT:
        errors.append(f"format: must be {CONTRACT_FORMAT!r}, got {doc.get('format')!r}")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append(f"version: must be a positive integer, got {version!r}")
    min_rows, max_rows = _row_bounds(doc.get("row_count", {}), errors)
    extra = doc.get("allow_extra_columns", False)
    if not isinstance(extra, bool):
        errors.append(f"allow_extra_columns: must be true or false, got {extra!r}")
    raw_cols = doc.get("columns")
    columns: list[ColumnContract] = []
    if not isinstance(raw_cols, list) or not raw_cols:
        errors.append("columns: must be a non-empty list of column objects")
    else:
        seen: set[str] = set()
        for i, raw in enumerate(raw_cols):
            col = _parse_column(raw, f"columns[{i}]", errors)
            if col is None:
                continue
            if col.name in seen:
                errors.append(f"columns[{i}].name: duplicate column {col.name!r}")
            seen.add(col.name)
            columns.append(col)
    if errors:
        raise InvalidContract(
            f"contract has {len(errors)} problem(s):\n  - " + "\n  - ".join(errors),
            hint="edit the named fields and load the contract again",
        )
    assert isinstance(version, int) and isinstance(extra, bool)
    return DataContract(
        version=version,
        columns=tuple(columns),
        min_rows=min_rows,
        max_rows=max_rows,
        allow_extra_columns=extra,
    )


def _row_bounds(raw: object, errors: list[str]) -> tuple[int | None, int | None]:
    if not isinstance(raw, Mapping):
        errors.append('row_count: must be an object like {"min": 1, "max": 1000000}')
        return None, None
    out: list[int | None] = []
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            errors.append(f"row_count.{key}: must be a non-negative integer or null, got {value!r}")
            value = None
        out.append(value)
    lo, hi = out
    if lo is not None and hi is not None and lo > hi:
        errors.append(f"row_count: min ({lo}) is greater than max ({hi})")
    return lo, hi


def _parse_column(raw: object, where: str, errors: list[str]) -> ColumnContract | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: must be an object")
        return None
    before = len(errors)
    for key in sorted(set(raw) - _COLUMN_KEYS):
        errors.append(f"{where}.{key}: unknown field (allowed: {', '.join(sorted(_COLUMN_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        errors.append(f"{where}.name: must be a non-empty string, got {name!r}")
    else:
        where = f"{where} ({name!r})"
    try:
        logical = LogicalType(str(raw.get("type")))
    except ValueError:
        kinds = ", ".join(t.value for t in LogicalType)
        errors.append(f"{where}.type: must be one of {kinds}, got {raw.get('type')!r}")
        logical = LogicalType.OTHER
    flags = {}
    for key in ("nullable", "unique"):
        value = raw.get(key, key == "nullable")
        if not isinstance(value, bool):
            errors.append(f"{where}.{key}: must be true or false, got {value!r}")
        flags[key] = bool(value)
    lo = _bound(raw.get("min"), f"{where}.min", logical, errors)
    hi = _bound(raw.get("max"), f"{where}.max", logical, errors)
    if lo is not None and hi is not None and lo > hi:
        errors.append(f"{where}: min ({lo}) is greater than max ({hi})")
    allowed = _allowed(raw.get("allowed_values"), f"{where}.allowed_values", logical, errors)
    inferred = _inferred(raw.get("inferred"), f"{where}.inferred", logical, errors)
    if len(errors) > before:
        return None
    assert isinstance(name, str)
    return ColumnContract(
        name=name,
        logical=logical,
        nullable=flags["nullable"],
        minimum=lo,
        maximum=hi,
        allowed=allowed,
        unique=flags["unique"],
        inferred=inferred,
    )


def _inferred(
    raw: object, where: str, logical: LogicalType, errors: list[str]
) -> SampleEvidence | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: must be an object or null (null: hard rules only)")
        return None
    before = len(errors)
    for key in sorted(set(raw) - _INFERRED_KEYS):
        errors.append(
            f"{where}.{key}: unknown field (allowed: {', '.join(sorted(_INFERRED_KEYS))})"
        )
    rows, singletons, nulls = raw.get("rows"), raw.get("singletons", 0), raw.get("nulls", 0)
    for key, value in (("rows", rows), ("singletons", singletons), ("nulls", nulls)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append(f"{where}.{key}: must be a non-negative integer, got {value!r}")
    lo = _bound(raw.get("min"), f"{where}.min", logical, errors)
    hi = _bound(raw.get("max"), f"{where}.max", logical, errors)
    lower = _tail(raw.get("lower_tail"), lo, -1.0, f"{where}.lower_tail", errors)
    upper = _tail(raw.get("upper_tail"), hi, 1.0, f"{where}.upper_tail", errors)
    categories = _allowed(raw.get("categories"), f"{where}.categories", logical, errors)
    if len(errors) > before:
        return None
    assert isinstance(rows, int) and isinstance(singletons, int) and isinstance(nulls, int)
    n = max(rows, 1)
    return SampleEvidence(
        rows,
        replace(lower, n=n) if lower is not None else None,
        replace(upper, n=n) if upper is not None else None,
        categories,
        singletons,
        nulls,
    )


def _tail(
    raw: object, edge: float | None, sign: float, where: str, errors: list[str]
) -> TailFit | None:
    if raw is None or edge is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"scale", "shape"}:
        errors.append(f'{where}: must be {{"scale": number > 0, "shape": number in [0, 1)}}')
        return None
    scale, shape = raw["scale"], raw["shape"]
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (scale, shape))
    if not ok or not (scale > 0 and 0 <= shape < 1):
        errors.append(f"{where}: scale must be > 0 and shape in [0, 1), got {scale!r}, {shape!r}")
        return None
    return TailFit(edge=sign * edge, scale=float(scale), shape=float(shape), n=0)


def _bound(value: object, where: str, logical: LogicalType, errors: list[str]) -> float | None:
    if value is None:
        return None
    if logical not in _RANGED:
        errors.append(f"{where}: only integer/float columns take a range; use null")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(f"{where}: must be a finite number or null, got {value!r}")
        return None
    return float(value)


def _allowed(
    value: object, where: str, logical: LogicalType, errors: list[str]
) -> tuple[str, ...] | None:
    if value is None:
        return None
    if logical != LogicalType.STRING:
        errors.append(f"{where}: only string columns take allowed values; use null")
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: must be a list of strings or null")
        return None
    if not value:
        errors.append(f"{where}: an empty list would reject every value; use null for 'any'")
        return None
    return tuple(value)


__all__ = [
    "CONTRACT_FORMAT",
    "ColumnContract",
    "DataContract",
    "SampleEvidence",
    "parse_contract",
]
