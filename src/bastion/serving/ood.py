"""Out-of-distribution rows: flagged, or refused where the deployment's policy says so.

At deploy time :func:`derive_reference` turns the training data's contract evidence
(the trusted sample's size, its observed extremes and the generalized Pareto tail
fitted beyond each, :mod:`bastion.data_security.stats.tails`) into one *band* per
numeric feature.  A row is out of distribution when any feature lies outside its
band.  The bands are calibrated so that a row of the training distribution is flagged
with probability at most ``alpha`` (1 % by default): each of the ``d`` banded features
gets ``alpha / d`` (a union bound, so correlated features need no independence
assumption), split between its two tails.  A band edge is the value the fitted tail
exceeds with probability ``alpha / (2d)``; when the trusted sample is large enough that
its own extremes are rarer than that (``1 / (n + 1) <= alpha / (2d)``) the edge is the
observed extreme itself.  The tail model is the contract check's: its shape is
deliberately heavy, so the bands are wide rather than narrow.  Every row of the
training sample lies inside its bands (0 false flags on the training rows); rows of
the same population it did not see are flagged at most about ``alpha`` of the time
(docs/serving.md gives the measured rate).

Categorical and boolean features have no band: a category the training data never
held is already refused by the input schema (422).  Features without tail evidence in
the contract (a steward's hand-written contract) have no band either.

Example::

    ref = derive_reference(contract, ("Income", "Age"))
    out_of_band(ref, ["Income", "Age"], [[1e9, 40]])   # [("Income",)]
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bastion.core.canonical import JSON
from bastion.data_security.contract import DataContract
from bastion.data_security.profile import LogicalType
from bastion.data_security.stats.tails import TailFit
from bastion.serving.errors import InvalidFeatures

#: the default bound on the share of training-distribution rows flagged
DEFAULT_ALPHA = 0.01


class OodPolicy(enum.StrEnum):
    FLAG = "flag"  # answer, and mark the row "ood": true (response, prediction log, metric)
    REFUSE = "refuse"  # 422 naming the out-of-range fields


class OutOfDistribution(InvalidFeatures):
    """A row far outside the training distribution, refused by the deployment's policy."""

    code = "out_of_distribution"


@dataclass(frozen=True)
class Band:
    """The values of one feature that the training distribution makes unremarkable."""

    name: str
    low: float
    high: float
    #: the training sample's own extremes (inside the band; None in older references)
    seen_low: float | None = None
    seen_high: float | None = None

    def holds(self, value: Any) -> bool:
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return True  # nulls and non-numbers have no band (the schema checked them)
        return bool(self.low <= value <= self.high)


@dataclass(frozen=True)
class OodReference:
    """The bands of an endpoint's numeric features and the false-flag bound they keep."""

    alpha: float
    bands: tuple[Band, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {"alpha": self.alpha,
                "bands": [{"name": b.name, "low": b.low, "high": b.high,
                           "seen_low": b.seen_low, "seen_high": b.seen_high}
                          for b in self.bands]}

    @classmethod
    def from_dict(cls, d: dict[str, JSON]) -> OodReference:
        raw = d.get("bands")
        bands: list[Band] = []
        for b in raw if isinstance(raw, list) else []:
            if isinstance(b, dict):
                lo, hi = _num(b.get("low")), _num(b.get("high"))
                bands.append(Band(str(b.get("name")), -math.inf if lo is None else lo,
                                  math.inf if hi is None else hi,
                                  _num(b.get("seen_low")), _num(b.get("seen_high"))))
        alpha = d.get("alpha")
        return cls(float(alpha) if isinstance(alpha, int | float) else DEFAULT_ALPHA,
                   tuple(bands))


def _num(v: JSON) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _edge(tail: TailFit, p: float) -> float:
    """The value (on the tail's side, as an upper tail) exceeded with probability ``p``."""
    base = 1.0 / (tail.n + 1)  # P(one row beyond the observed extreme)
    if base <= p:
        return tail.edge
    ratio = base / p
    if tail.shape <= 1e-9:
        return tail.edge + tail.scale * math.log(ratio)
    return float(tail.edge + tail.scale * (ratio**tail.shape - 1.0) / tail.shape)


def derive_reference(contract: DataContract, features: Sequence[str],
                     alpha: float = DEFAULT_ALPHA) -> OodReference | None:
    """Bands for the numeric ``features`` with tail evidence in ``contract``."""
    tails: list[tuple[str, TailFit, TailFit]] = []
    for name in features:
        col = contract.column(name)
        if col is None or col.logical not in (LogicalType.INTEGER, LogicalType.FLOAT):
            continue
        seen = col.inferred
        if seen is not None and seen.lower is not None and seen.upper is not None:
            tails.append((name, seen.lower, seen.upper))
    if not tails:
        return None
    p = alpha / (2 * len(tails))
    bands = tuple(Band(name, -_edge(lower, p), _edge(upper, p), -lower.edge, upper.edge)
                  for name, lower, upper in tails)
    return OodReference(alpha, bands)


def out_of_band(ref: OodReference | None, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> list[tuple[str, ...]]:
    """For each row (values in ``columns`` order), the features outside their band."""
    if ref is None:
        return [() for _ in rows]
    index = {name: i for i, name in enumerate(columns)}
    checks = [(b, index[b.name]) for b in ref.bands if b.name in index]
    return [tuple(b.name for b, i in checks if not b.holds(row[i])) for row in rows]


def refusal(flags: Sequence[tuple[str, ...]]) -> OutOfDistribution:
    """The 422 of a request with out-of-distribution rows under the ``refuse`` policy."""
    first = next(i for i, f in enumerate(flags) if f)
    fields = ", ".join(flags[first])
    return OutOfDistribution(
        f"rows[{first}]: {fields} far outside the training data's range",
        field=f"rows[{first}].{flags[first][0]}",
        reason=f"out of the training distribution: {fields}",
        hint="this endpoint refuses rows far from what the model was trained on")


__all__ = [
    "DEFAULT_ALPHA",
    "Band",
    "OodPolicy",
    "OodReference",
    "OutOfDistribution",
    "derive_reference",
    "out_of_band",
    "refusal",
]
