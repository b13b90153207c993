"""Distribution-shift statistics shared by the data layer and model monitoring.

- ``values``       — ``ColumnKind``, ``Method``, ``DriftThresholds``, ``TestResult``,
  ``ColumnDrift`` (with ``NullDrift`` and chart ``Histogram``)
- ``distances``    — ``psi``, ``jensen_shannon`` (raw values) and their ``*_from_counts``
- ``significance`` — ``ks_test`` (scipy-equal, fast on sorted arrays),
  ``chi_square_test``, ``null_rate_test``, ``cramers_v``
- ``tails``        — ``TailFit``, ``count_p_value``: how improbable a value beyond a
  trusted sample's extremes is, with the sample's own noise
- ``column``       — ``ColumnSummary (a reference column, computed once),
  ``choose_test`` (which method and why), ``compare_column``, ``column_drift``

Numbers: nulls, NaN and ±inf count as missing; the null rate is tested apart
from the values.  Labels: any dtype, compared as strings.

Example::

    import numpy as np
    from bastion.data_security.stats import ColumnKind, column_drift
    rng = np.random.default_rng(0)
    drift = column_drift("plan", rng.choice(["a", "b"], 2000), rng.choice(["a", "b", "c"], 2000),
                         ColumnKind.CATEGORICAL)
    assert drift.drifted and drift.new_categories == ("c",)
"""

from __future__ import annotations

from bastion.data_security.stats.column import (
    ColumnSummary,
    choose_test,
    column_drift,
    compare_column,
)
from bastion.data_security.stats.distances import (
    bin_counts,
    category_counts,
    finite_sorted,
    jensen_shannon,
    js_from_counts,
    psi,
    psi_from_counts,
    quantile_edges,
)
from bastion.data_security.stats.significance import (
    chi_square_test,
    cramers_v,
    ks_test,
    ks_test_sorted,
    null_rate_test,
)
from bastion.data_security.stats.values import (
    ColumnDrift,
    ColumnKind,
    DriftThresholds,
    Histogram,
    Method,
    NullDrift,
    PsiLevel,
    TestResult,
)

__all__ = [
    "ColumnDrift",
    "ColumnKind",
    "ColumnSummary",
    "DriftThresholds",
    "Histogram",
    "Method",
    "NullDrift",
    "PsiLevel",
    "TestResult",
    "bin_counts",
    "category_counts",
    "chi_square_test",
    "choose_test",
    "column_drift",
    "compare_column",
    "cramers_v",
    "finite_sorted",
    "jensen_shannon",
    "js_from_counts",
    "ks_test",
    "ks_test_sorted",
    "null_rate_test",
    "psi",
    "psi_from_counts",
    "quantile_edges",
]
