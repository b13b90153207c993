"""Infer a first data contract from the profile of the first accepted version.

The inferred contract is a *proposal* for a data steward: ranges are widened
by a margin (the first version's extremes are not the population's), strings
with few distinct values become categories, and only identifier-like columns
that were fully distinct are marked unique.

Example::

    contract = infer_contract(profile_frame(first_version))
    print(contract.to_json())
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bastion.data_security.contract.model import ColumnContract, DataContract
from bastion.data_security.profile import ColumnProfile, DatasetProfile, LogicalType


@dataclass(frozen=True)
class InferenceOptions:
    """Knobs for :func:`infer_contract`."""

    #: strings with at most this many distinct values become categories
    max_categories: int = 50
    #: a category set is inferred only when each value appears this often on average
    min_rows_per_category: float = 2.0
    #: numeric ranges are widened by this fraction of (max - min) on each side
    range_margin: float = 0.1
    #: per-batch max rows = this factor times the profiled row count (None: unbounded)
    max_rows_factor: float | None = 10.0


def infer_contract(
    profile: DatasetProfile, *, version: int = 1, options: InferenceOptions | None = None
) -> DataContract:
    """Propose a contract that the profiled data satisfies."""
    opts = options or InferenceOptions()
    columns = tuple(_infer_column(col, opts) for col in profile.columns)
    max_rows = (
        max(1, math.ceil(profile.row_count * opts.max_rows_factor))
        if opts.max_rows_factor is not None
        else None
    )
    return DataContract(version=version, columns=columns, min_rows=1, max_rows=max_rows)


def _infer_column(col: ColumnProfile, opts: InferenceOptions) -> ColumnContract:
    unique = col.looks_like_identifier
    # Identifiers grow with every batch: a range on them would reject new ids.
    lo, hi = (None, None) if unique else _range(col, opts.range_margin)
    return ColumnContract(
        name=col.name,
        logical=col.logical,
        nullable=col.null_count > 0,
        minimum=lo,
        maximum=hi,
        allowed=_categories(col, opts),
        unique=unique,
    )


def _range(col: ColumnProfile, margin: float) -> tuple[float | None, float | None]:
    if col.logical not in (LogicalType.INTEGER, LogicalType.FLOAT) or col.numeric is None:
        return None, None
    m = col.numeric.moments
    if m.minimum is None or m.maximum is None:
        return None, None
    pad = (m.maximum - m.minimum) * margin
    lo, hi = m.minimum - pad, m.maximum + pad
    if m.minimum >= 0:
        # Non-negative data (amounts, counts, ages) stays non-negative.
        lo = max(lo, 0.0)
    if col.logical == LogicalType.INTEGER:
        lo, hi = float(math.floor(lo)), float(math.ceil(hi))
    return lo, hi


def _categories(col: ColumnProfile, opts: InferenceOptions) -> tuple[str, ...] | None:
    if col.logical != LogicalType.STRING or col.text is None:
        return None
    values = col.text.exact_values()
    if values is None or not values or len(values) > opts.max_categories:
        return None
    if col.non_null < opts.min_rows_per_category * len(values):
        return None
    return values


__all__ = ["InferenceOptions", "infer_contract"]
