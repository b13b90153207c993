"""Infer a first data contract from the profile of the first accepted version.

The inferred contract is a *proposal* for a data steward.  What one sample
shows is not the population: its extremes and its category set carry sampling
noise, so they are written as soft ``inferred`` evidence (sample size, observed
extremes, a tail fitted to the extreme values, observed categories) which the
check turns into probabilities, never as hard bounds.  Nullability is soft
too: a column without nulls in the sample may have rare ones.  The only hard
rules inferred are the type (a fractional value in an integer column blocks),
uniqueness of identifier-like columns, the sign of a non-negative
column whose minimum lies within one observed width of zero (amounts, counts,
ages), and a batch of at least one row.  No maximum row count is inferred by
default: one first batch says nothing about how large later batches may be (a
150-row pilot would refuse every 2,000-row delivery forever); batch volume is
judged by the ``row_count`` quality check against the median of *all* accepted
batches.  A steward writes business bounds as hard ``min`` / ``max`` /
``allowed_values`` / ``row_count``.

Example::

    contract = infer_contract(profile_frame(first_version))
    print(contract.to_json())
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bastion.data_security.contract.model import ColumnContract, DataContract, SampleEvidence
from bastion.data_security.profile import ColumnProfile, DatasetProfile, LogicalType
from bastion.data_security.stats.tails import TailFit


@dataclass(frozen=True)
class InferenceOptions:
    """Knobs for :func:`infer_contract`."""

    #: strings with at most this many distinct values become categories
    max_categories: int = 50
    #: a category set is inferred only when each value appears this often on average
    min_rows_per_category: float = 2.0
    #: kept for callers of the fixed-margin era and ignored: the width of the
    #: uncertainty around the observed extremes now comes from the fitted tail
    range_margin: float = 0.1
    #: per-batch max rows = this factor times the profiled row count; None (the
    #: default): no inferred maximum, the ``row_count`` check compares with history
    max_rows_factor: float | None = None


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
    lower, upper = (None, None) if unique else _tails(col)
    categories, singletons = _categories(col, opts)
    evidence = SampleEvidence(
        col.non_null, lower, upper, categories, singletons, nulls=col.null_count
    )
    return ColumnContract(
        name=col.name,
        logical=col.logical,
        nullable=True,
        minimum=None if lower is None else _sign_floor(col),
        allowed=None,
        unique=unique,
        inferred=evidence,
    )


def _tails(col: ColumnProfile) -> tuple[TailFit | None, TailFit | None]:
    if col.logical not in (LogicalType.INTEGER, LogicalType.FLOAT) or col.numeric is None:
        return None, None
    tails = col.numeric.tails()
    return (None, None) if tails is None else tails


def _sign_floor(col: ColumnProfile) -> float | None:
    # A non-negative column whose minimum is near zero (relative to its width)
    # is non-negative by nature: amounts, counts, ages.  A negative value is an error.
    m = col.numeric.moments if col.numeric is not None else None
    if m is None or m.minimum is None or m.maximum is None or m.minimum < 0:
        return None
    return 0.0 if m.minimum <= m.maximum - m.minimum else None


def _categories(col: ColumnProfile, opts: InferenceOptions) -> tuple[tuple[str, ...] | None, int]:
    if col.logical != LogicalType.STRING or col.text is None:
        return None, 0
    values = col.text.exact_values()
    if values is None or not values or len(values) > opts.max_categories:
        return None, 0
    if col.non_null < opts.min_rows_per_category * len(values):
        return None, 0
    singletons = sum(1 for _v, count in col.text.top(len(values)) if count == 1)
    return values, singletons


__all__ = ["InferenceOptions", "infer_contract"]
