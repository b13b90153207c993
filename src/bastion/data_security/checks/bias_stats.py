"""Group statistics for the bias audit: binning, counts, positives, baselines.

Counts are additive, so a :class:`BiasBaseline` merges across chunks like a
profile does and serializes to a JSON-safe dict.

Example::

    stats, groups = attribute_stats(df["age"], df["approved"] == 1, AGE_BANDS)
    stats.groups[0].base_rate
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from bastion.data_security.errors import AuditConfigError
from bastion.data_security.profile import DatasetProfile, LogicalType, logical_type

#: age bands used for attributes named like an age when no bins are given
AGE_BANDS: tuple[float, ...] = (25.0, 35.0, 45.0, 55.0, 65.0)
NULL_GROUP = "<null>"


@dataclass(frozen=True)
class GroupStats:
    """Rows and positive labels of one group."""

    group: str
    count: int
    positives: int

    @property
    def base_rate(self) -> float:
        return self.positives / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"group": self.group, "count": self.count, "positives": self.positives}


@dataclass(frozen=True)
class AttributeStats:
    """All groups of one attribute over ``rows`` rows, and the bins used (if numeric)."""

    attribute: str
    rows: int
    groups: tuple[GroupStats, ...]
    bins: tuple[float, ...] | None = None

    @property
    def binning_text(self) -> str:
        if not self.bins:
            return ""
        edges = ", ".join(f"{b:g}" for b in self.bins)
        return f"{self.attribute!r} binned at [{edges}] (left-closed bands)"

    def merge(self, other: AttributeStats) -> AttributeStats:
        if other.bins != self.bins:
            raise AuditConfigError(f"cannot merge {self.attribute!r} stats with other bins")
        totals: dict[str, list[int]] = {}
        for g in (*self.groups, *other.groups):
            t = totals.setdefault(g.group, [0, 0])
            t[0] += g.count
            t[1] += g.positives
        groups = tuple(GroupStats(k, c, p) for k, (c, p) in sorted(totals.items()))
        return AttributeStats(self.attribute, self.rows + other.rows, groups, self.bins)

    def to_dict(self) -> dict[str, object]:
        return {
            "attribute": self.attribute,
            "rows": self.rows,
            "bins": list(self.bins) if self.bins is not None else None,
            "groups": [g.to_dict() for g in self.groups],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AttributeStats:
        try:
            groups = data["groups"]
            bins = data.get("bins")
            assert isinstance(groups, list)
            assert bins is None or isinstance(bins, list)
            return cls(
                attribute=str(data["attribute"]),
                rows=int(str(data["rows"])),
                groups=tuple(
                    GroupStats(str(g["group"]), int(g["count"]), int(g["positives"]))
                    for g in groups
                ),
                bins=tuple(float(b) for b in bins) if bins is not None else None,
            )
        except (KeyError, TypeError, ValueError, AssertionError) as e:
            raise AuditConfigError(f"malformed bias baseline attribute: {e!r}") from e


@dataclass(frozen=True)
class BiasBaseline:
    """Per-attribute group statistics of the reference data."""

    rows: int
    attributes: tuple[AttributeStats, ...]

    def attribute(self, name: str) -> AttributeStats | None:
        return next((a for a in self.attributes if a.attribute == name), None)

    def bins_for(self, name: str) -> tuple[float, ...] | None:
        attr = self.attribute(name)
        return attr.bins if attr else None

    def merge(self, other: BiasBaseline) -> BiasBaseline:
        merged = []
        for a in self.attributes:
            b = other.attribute(a.attribute)
            merged.append(a.merge(b) if b else a)
        return BiasBaseline(self.rows + other.rows, tuple(merged))

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "attributes": [a.to_dict() for a in self.attributes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BiasBaseline:
        attrs = data.get("attributes")
        rows = data.get("rows")
        if not isinstance(attrs, list) or not isinstance(rows, int):
            raise AuditConfigError("bias baseline needs 'rows' (int) and 'attributes' (list)")
        return cls(rows, tuple(AttributeStats.from_dict(a) for a in attrs))


def default_bins(
    name: str, values: pl.Series, reference: DatasetProfile | None
) -> tuple[float, ...] | None:
    """Bins for a numeric attribute: age bands for ages, else reference quartiles.

    Returns ``None`` for non-numeric or low-cardinality numeric attributes
    (at most 10 distinct values), which are grouped by value.
    """
    lt = logical_type(values.dtype)
    if lt not in (LogicalType.INTEGER, LogicalType.FLOAT):
        return None
    if values.n_unique() <= 10:
        return None
    if re.search(r"(^|_)age($|_)", name.lower()):
        return AGE_BANDS
    col = reference.get(name) if reference else None
    if col is not None and col.numeric is not None:
        qs = col.numeric.quantiles((0.25, 0.5, 0.75))
    else:
        qs = tuple(values.cast(pl.Float64).quantile(q) for q in (0.25, 0.5, 0.75))
    edges = sorted({float(q) for q in qs if q is not None and math.isfinite(q)})
    return tuple(edges) or None


def _band_labels(bins: tuple[float, ...]) -> list[str]:
    labels = [f"<{bins[0]:g}"]
    labels += [f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(bins)]
    labels.append(f">={bins[-1]:g}")
    return labels


def group_labels(values: pl.Series, bins: tuple[float, ...] | None) -> pl.Series:
    """Each row's group label (a band for binned numerics), nulls as ``<null>``."""
    if bins:
        grouped = (
            values.cast(pl.Float64)
            .cut(list(bins), labels=_band_labels(bins), left_closed=True)
            .cast(pl.String)
        )
    else:
        grouped = values.cast(pl.String)
    return grouped.fill_null(NULL_GROUP).alias("__group")


def attribute_stats(
    values: pl.Series, positive: pl.Series, bins: tuple[float, ...] | None
) -> tuple[AttributeStats, pl.Series]:
    """Group counts and positives of one attribute, plus the per-row group labels."""
    groups = group_labels(values, bins)
    table = (
        pl.DataFrame({"g": groups, "y": positive})
        .group_by("g")
        .agg(pl.len().alias("n"), pl.col("y").sum().alias("p"))
        .sort("g")
    )
    stats = tuple(
        GroupStats(str(g), int(n), int(p)) for g, n, p in table.select("g", "n", "p").iter_rows()
    )
    return AttributeStats(str(values.name), values.len(), stats, bins), groups


__all__ = [
    "AGE_BANDS",
    "AttributeStats",
    "BiasBaseline",
    "GroupStats",
    "attribute_stats",
    "default_bins",
    "group_labels",
]
