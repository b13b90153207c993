"""Mergeable dataset profiles: the statistics every ingestion audit compares against.

A profile is built per batch (``profile_frame``) and merged (``DatasetProfile.merge``),
so audits stream over large files and can later run partitioned.

- ``moments``  — ``Moments``: n, mean, M2, min, max with Chan's parallel merge
- ``column``   — ``ColumnProfile``: nulls, moments, KLL quantiles, HLL distinct count,
                 top-k frequent values and string lengths (Apache DataSketches)
- ``dataset``  — ``DatasetProfile``: all columns, ``merge``, ``to_bytes``/``from_bytes``
- ``build``    — ``profile_frame(df)``, ``profile_batches(batches)``

Example::

    from bastion.data_security.profile import DatasetProfile, profile_frame
    ref = profile_frame(first_chunk).merge(profile_frame(second_chunk))
    restored = DatasetProfile.from_bytes(ref.to_bytes())
"""

from __future__ import annotations

from bastion.data_security.profile.build import (
    logical_type,
    numeric_expr,
    profile_batches,
    profile_frame,
)
from bastion.data_security.profile.column import (
    ColumnProfile,
    LogicalType,
    NumericSummary,
    TextSummary,
)
from bastion.data_security.profile.dataset import FORMAT_VERSION, DatasetProfile
from bastion.data_security.profile.moments import Moments

__all__ = [
    "FORMAT_VERSION",
    "ColumnProfile",
    "DatasetProfile",
    "LogicalType",
    "Moments",
    "NumericSummary",
    "TextSummary",
    "logical_type",
    "numeric_expr",
    "profile_batches",
    "profile_frame",
]
