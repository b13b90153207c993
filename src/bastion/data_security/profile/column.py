"""Per-column mergeable summaries: moments, quantile, distinct-count and top-k sketches.

Sketches are Apache DataSketches objects kept in their native serialized form
(``bytes``) so a :class:`ColumnProfile` is an immutable value; they are
deserialized only to merge or query.

Example::

    col = profile_frame(df).column("income")
    col.numeric.quantiles((0.5,))     # approximate median
    col.distinct_estimate             # HLL estimate
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

import datasketches as ds

from bastion.data_security.errors import InvalidProfile
from bastion.data_security.profile.moments import Moments
from bastion.data_security.stats.tails import TAIL_KEEP, TailFit

#: KLL accuracy parameter: ~1.3% normalized rank error
KLL_K = 200
#: HLL log2 of buckets: ~0.8% relative standard error
HLL_LG_K = 14
#: frequent-items map size (log2); tracks up to 0.75 * 2**10 = 768 items
FREQ_LG_MAX = 10


_ID_NAME = re.compile(r"(^|[_\-\s])(id|uuid|guid|key|identifier)$|^id[_\-\s]|Id$", re.IGNORECASE)


class LogicalType(StrEnum):
    """The dtype family a column belongs to, independent of polars' bit widths."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    DATE = "date"
    DATETIME = "datetime"
    OTHER = "other"

    @property
    def is_numeric(self) -> bool:
        """Integer, float and boolean columns are summarised numerically."""
        return self in (LogicalType.INTEGER, LogicalType.FLOAT, LogicalType.BOOLEAN)


def new_kll() -> ds.kll_doubles_sketch:
    return ds.kll_doubles_sketch(KLL_K)


def new_hll() -> ds.hll_sketch:
    return ds.hll_sketch(HLL_LG_K, ds.tgt_hll_type.HLL_4)


def new_freq() -> ds.frequent_strings_sketch:
    return ds.frequent_strings_sketch(FREQ_LG_MAX)


def _load(kind: str, blob: bytes) -> object:
    try:
        if kind == "kll":
            return ds.kll_doubles_sketch.deserialize(blob)
        if kind == "hll":
            return ds.hll_sketch.deserialize(blob)
        return ds.frequent_strings_sketch.deserialize(blob)
    except Exception as e:  # the native library raises bare RuntimeError/ValueError
        raise InvalidProfile(f"corrupt {kind} sketch in profile: {e}") from e


def load_kll(blob: bytes) -> ds.kll_doubles_sketch:
    sketch = _load("kll", blob)
    assert isinstance(sketch, ds.kll_doubles_sketch)
    return sketch


def load_hll(blob: bytes) -> ds.hll_sketch:
    sketch = _load("hll", blob)
    assert isinstance(sketch, ds.hll_sketch)
    return sketch


def load_freq(blob: bytes) -> ds.frequent_strings_sketch:
    sketch = _load("freq", blob)
    assert isinstance(sketch, ds.frequent_strings_sketch)
    return sketch


@dataclass(frozen=True)
class NumericSummary:
    """Moments and a KLL quantile sketch of a numeric column's finite values."""

    moments: Moments
    nonfinite: int
    kll: bytes
    #: the largest finite values, descending (at most ``TAIL_KEEP``; empty in old profiles)
    upper: tuple[float, ...] = ()
    #: the smallest finite values, ascending (at most ``TAIL_KEEP``; empty in old profiles)
    lower: tuple[float, ...] = ()

    def quantiles(self, ranks: Sequence[float]) -> tuple[float | None, ...]:
        """Approximate quantiles at normalized ``ranks`` (``None`` when empty)."""
        sketch = load_kll(self.kll)
        if sketch.is_empty():
            return tuple(None for _ in ranks)
        return tuple(float(q) for q in sketch.get_quantiles(list(ranks)))

    def cdf_below(self, value: float) -> float | None:
        """Approximate fraction of values ``<= value``."""
        sketch = load_kll(self.kll)
        return None if sketch.is_empty() else float(sketch.get_rank(value))

    def tails(self) -> tuple[TailFit, TailFit] | None:
        """(lower, upper) tails beyond the extremes; the lower one on negated values."""
        m = self.moments
        if m.minimum is None or m.maximum is None:
            return None
        std = m.std or 0.0
        upper = TailFit.fit(self.upper or (m.maximum,), n=m.n, std=std)
        lower = TailFit.fit([-v for v in (self.lower or (m.minimum,))], n=m.n, std=std)
        return lower, upper

    def merge(self, other: NumericSummary) -> NumericSummary:
        sketch = load_kll(self.kll)
        sketch.merge(load_kll(other.kll))
        return NumericSummary(
            moments=self.moments.merge(other.moments),
            nonfinite=self.nonfinite + other.nonfinite,
            kll=bytes(sketch.serialize()),
            upper=tuple(sorted(self.upper + other.upper, reverse=True)[:TAIL_KEEP]),
            lower=tuple(sorted(self.lower + other.lower)[:TAIL_KEEP]),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "moments": self.moments.to_dict(),
            "nonfinite": self.nonfinite,
            "kll": _b64(self.kll),
            "upper": list(self.upper),
            "lower": list(self.lower),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> NumericSummary:
        moments = data.get("moments")
        if not isinstance(moments, Mapping):
            raise InvalidProfile("numeric summary: 'moments' must be an object")
        return cls(
            moments=Moments.from_dict(moments),
            nonfinite=_int(data.get("nonfinite"), "nonfinite"),
            kll=_unb64(data.get("kll"), "kll"),
            upper=_floats(data.get("upper", []), "upper"),
            lower=_floats(data.get("lower", []), "lower"),
        )


@dataclass(frozen=True)
class TextSummary:
    """String lengths and a bounded frequent-items (top-k) sketch.

    ``complete`` is true while every distinct value of every chunk was fed to
    the sketch, so for low-cardinality columns the counts are exact.
    """

    lengths: Moments
    frequent: bytes
    complete: bool

    def top(self, k: int = 10) -> tuple[tuple[str, int], ...]:
        """The ``k`` most frequent values with their estimated counts."""
        sketch = load_freq(self.frequent)
        items = sketch.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        return tuple((str(item), int(est)) for item, est, _lo, _hi in items[:k])

    def exact_values(self) -> tuple[str, ...] | None:
        """All distinct values when the sketch is exact, else ``None``."""
        sketch = load_freq(self.frequent)
        items = sketch.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        exact = self.complete and sum(int(i[1]) for i in items) == int(sketch.total_weight)
        return tuple(sorted(str(i[0]) for i in items)) if exact else None

    def merge(self, other: TextSummary) -> TextSummary:
        sketch = load_freq(self.frequent)
        sketch.merge(load_freq(other.frequent))
        return TextSummary(
            lengths=self.lengths.merge(other.lengths),
            frequent=bytes(sketch.serialize()),
            complete=self.complete and other.complete,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "lengths": self.lengths.to_dict(),
            "frequent": _b64(self.frequent),
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TextSummary:
        lengths = data.get("lengths")
        if not isinstance(lengths, Mapping):
            raise InvalidProfile("text summary: 'lengths' must be an object")
        return cls(
            lengths=Moments.from_dict(lengths),
            frequent=_unb64(data.get("frequent"), "frequent"),
            complete=bool(data.get("complete", False)),
        )


@dataclass(frozen=True)
class ColumnProfile:
    """Mergeable summary of one column over ``count`` rows."""

    name: str
    logical: LogicalType
    dtype: str
    count: int
    null_count: int
    hll: bytes
    numeric: NumericSummary | None = None
    text: TextSummary | None = None

    @property
    def null_rate(self) -> float:
        return self.null_count / self.count if self.count else 0.0

    @property
    def non_null(self) -> int:
        return self.count - self.null_count

    @property
    def distinct_estimate(self) -> float:
        """HLL estimate of distinct non-null values (~0.8% relative error)."""
        return float(load_hll(self.hll).get_estimate())

    @property
    def looks_like_identifier(self) -> bool:
        """An id-like name (``id``, ``customer_id``, ``uuid``...) on an all-distinct
        integer/string column.

        Only names count as evidence: ages or incomes can be all distinct in a
        small sample by chance, identifiers are distinct by design.
        """
        if self.logical not in (LogicalType.INTEGER, LogicalType.STRING) or self.non_null == 0:
            return False
        if not _ID_NAME.search(self.name):
            return False
        return self.distinct_bounds(3)[1] >= self.non_null

    def distinct_bounds(self, stddevs: int = 2) -> tuple[float, float]:
        """HLL lower/upper bounds on distinct values at ``stddevs`` (1 to 3)."""
        sketch = load_hll(self.hll)
        return float(sketch.get_lower_bound(stddevs)), float(sketch.get_upper_bound(stddevs))

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """Combine with the same column's profile over other rows."""
        if other.name != self.name:
            raise InvalidProfile(f"cannot merge column {self.name!r} with {other.name!r}")
        logical = _merge_logical(self.name, self.logical, other.logical)
        union = ds.hll_union(HLL_LG_K)
        union.update(load_hll(self.hll))
        union.update(load_hll(other.hll))
        merged = replace(
            self,
            logical=logical,
            dtype=self.dtype if self.dtype == other.dtype else f"{self.dtype}|{other.dtype}",
            count=self.count + other.count,
            null_count=self.null_count + other.null_count,
            hll=bytes(union.get_result(ds.tgt_hll_type.HLL_4).serialize_compact()),
            numeric=_merge_opt(self.numeric, other.numeric),
            text=_merge_opt(self.text, other.text),
        )
        return merged

    def to_dict(self) -> dict[str, object]:
        """The serialized form (sketches base64-encoded)."""
        return {
            "name": self.name,
            "logical": self.logical.value,
            "dtype": self.dtype,
            "count": self.count,
            "null_count": self.null_count,
            "hll": _b64(self.hll),
            "numeric": self.numeric.to_dict() if self.numeric else None,
            "text": self.text.to_dict() if self.text else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ColumnProfile:
        name = data.get("name")
        if not isinstance(name, str):
            raise InvalidProfile("column profile: 'name' must be a string")
        try:
            logical = LogicalType(str(data.get("logical")))
        except ValueError as e:
            raise InvalidProfile(f"column {name!r}: unknown logical type") from e
        numeric, text = data.get("numeric"), data.get("text")
        return cls(
            name=name,
            logical=logical,
            dtype=str(data.get("dtype", "")),
            count=_int(data.get("count"), "count"),
            null_count=_int(data.get("null_count"), "null_count"),
            hll=_unb64(data.get("hll"), "hll"),
            numeric=NumericSummary.from_dict(numeric) if isinstance(numeric, Mapping) else None,
            text=TextSummary.from_dict(text) if isinstance(text, Mapping) else None,
        )

    def describe(self) -> dict[str, object]:
        """A JSON-safe, human-oriented view (estimates, not sketch bytes)."""
        out: dict[str, object] = {
            "logical": self.logical.value,
            "dtype": self.dtype,
            "count": self.count,
            "null_count": self.null_count,
            "null_rate": round(self.null_rate, 6),
            "distinct_estimate": round(self.distinct_estimate, 1),
        }
        if self.numeric is not None:
            m = self.numeric.moments
            qs = self.numeric.quantiles((0.01, 0.25, 0.5, 0.75, 0.99))
            out.update(mean=m.mean if m.n else None, std=m.std, min=m.minimum, max=m.maximum)
            out["nonfinite"] = self.numeric.nonfinite
            out["quantiles"] = dict(zip(("p01", "p25", "p50", "p75", "p99"), qs, strict=True))
        if self.text is not None:
            out["mean_length"] = self.text.lengths.mean if self.text.lengths.n else None
            out["max_length"] = self.text.lengths.maximum
            out["top"] = [[v, c] for v, c in self.text.top(10)]
        return out


_S = TypeVar("_S", NumericSummary, TextSummary)


def _merge_logical(name: str, a: LogicalType, b: LogicalType) -> LogicalType:
    if a == b:
        return a
    if {a, b} == {LogicalType.INTEGER, LogicalType.FLOAT}:
        return LogicalType.FLOAT
    raise InvalidProfile(
        f"column {name!r} is {a.value} in one profile and {b.value} in the other",
        hint="profiles can only be merged when each column has the same type family",
    )


def _merge_opt(a: _S | None, b: _S | None) -> _S | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")


def _unb64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidProfile(f"profile field {field!r} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as e:
        raise InvalidProfile(f"profile field {field!r} is not valid base64") from e


def _floats(value: object, field: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise InvalidProfile(f"numeric summary: {field!r} must be a list of numbers")
    return tuple(float(v) for v in value[:TAIL_KEEP])


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidProfile(f"profile field {field!r} must be a non-negative int, got {value!r}")
    return value


__all__ = ["ColumnProfile", "LogicalType", "NumericSummary", "TextSummary"]
