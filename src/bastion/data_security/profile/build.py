"""Build profiles from polars DataFrames, one batch at a time.

All scalar statistics of a batch are computed in a single polars ``select``
(parallel, vectorised); sketches are then fed from numpy arrays or from the
batch's ``value_counts`` so no Python loop runs per row.

Example::

    profile = profile_batches(reader.batches())      # streams, merges as it goes
    profile.column("age").numeric.moments.mean
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
import polars as pl

from bastion.data_security.profile.column import (
    ColumnProfile,
    LogicalType,
    NumericSummary,
    TextSummary,
    new_freq,
    new_hll,
    new_kll,
)
from bastion.data_security.profile.dataset import DatasetProfile
from bastion.data_security.profile.moments import Moments
from bastion.data_security.stats.tails import TAIL_KEEP

#: per-chunk cap on values fed to the top-k sketch; rarer values are below N/4096
_FREQ_FEED = 4096


def logical_type(dtype: pl.DataType) -> LogicalType:
    """Map a polars dtype to its :class:`LogicalType` family."""
    if dtype == pl.Boolean:
        return LogicalType.BOOLEAN
    if dtype.is_integer():
        return LogicalType.INTEGER
    if dtype.is_float() or dtype.is_decimal():
        return LogicalType.FLOAT
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return LogicalType.STRING
    if dtype == pl.Date:
        return LogicalType.DATE
    if isinstance(dtype, pl.Datetime):
        return LogicalType.DATETIME
    return LogicalType.OTHER


def numeric_expr(name: str, logical: LogicalType) -> pl.Expr:
    """A Float64 view of a numeric / temporal column (dates: days, datetimes: µs)."""
    col = pl.col(name)
    if logical == LogicalType.DATE:
        return col.to_physical().cast(pl.Float64)
    if logical == LogicalType.DATETIME:
        return col.dt.cast_time_unit("us").to_physical().cast(pl.Float64)
    return col.cast(pl.Float64)


def _summarised(logical: LogicalType) -> bool:
    return logical.is_numeric or logical in (LogicalType.DATE, LogicalType.DATETIME)


def _stat_exprs(name: str, logical: LogicalType) -> list[pl.Expr]:
    exprs = [pl.col(name).null_count().alias(f"{name}\0nulls")]
    if _summarised(logical):
        x = numeric_expr(name, logical)
        # Non-finite values become nulls (cheap, elementwise) so aggregates skip them.
        finite = pl.when(x.is_finite()).then(x) if logical == LogicalType.FLOAT else x
        exprs += [
            finite.count().alias(f"{name}\0n"),
            finite.mean().alias(f"{name}\0mean"),
            finite.var().alias(f"{name}\0var"),
            finite.min().alias(f"{name}\0min"),
            finite.max().alias(f"{name}\0max"),
            (x.is_not_null() & ~x.is_finite()).sum().alias(f"{name}\0nonfinite"),
        ]
    elif logical == LogicalType.STRING:
        length = pl.col(name).cast(pl.String).str.len_chars().cast(pl.Float64)
        exprs += [
            length.count().alias(f"{name}\0n"),
            length.mean().alias(f"{name}\0mean"),
            length.var().alias(f"{name}\0var"),
            length.min().alias(f"{name}\0min"),
            length.max().alias(f"{name}\0max"),
        ]
    return exprs


def _moments(stats: dict[str, object], name: str) -> Moments:
    def f(key: str) -> float | None:
        v = stats[f"{name}\0{key}"]
        return float(v) if isinstance(v, int | float) else None

    n = stats[f"{name}\0n"]
    return Moments.from_stats(
        int(n) if isinstance(n, int) else 0, f("mean"), f("var"), f("min"), f("max")
    )


def _numeric_column(
    df: pl.DataFrame, name: str, logical: LogicalType, stats: dict[str, object]
) -> tuple[NumericSummary, bytes]:
    series = df.select(numeric_expr(name, logical)).to_series()
    values = series.to_numpy()
    values = values[np.isfinite(values)]
    kll = new_kll()
    if values.size:
        kll.update(values)
    hll = new_hll()
    # Distinct values only (polars' parallel hash unique, not a sort): HLL is
    # idempotent and the per-value Python call is the slow part (map: no loop body).
    distinct = series.filter(series.is_finite()).unique()
    deque(map(hll.update, distinct.to_list()), maxlen=0)
    nonfinite = stats[f"{name}\0nonfinite"]
    summary = NumericSummary(
        moments=_moments(stats, name),
        nonfinite=int(nonfinite) if isinstance(nonfinite, int) else 0,
        kll=bytes(kll.serialize()),
        upper=_extremes(values, largest=True),
        lower=_extremes(values, largest=False),
    )
    return summary, bytes(hll.serialize_compact())


def _extremes(values: npt.NDArray[np.float64], *, largest: bool) -> tuple[float, ...]:
    # O(n) selection, then a sort of the few kept: the tail model's order statistics
    k = min(TAIL_KEEP, values.size)
    if k == 0:
        return ()
    if largest:
        part = values if k == values.size else np.partition(values, values.size - k)[-k:]
        return tuple(float(v) for v in np.sort(part)[::-1])
    part = values if k == values.size else np.partition(values, k - 1)[:k]
    return tuple(float(v) for v in np.sort(part))


def _text_column(
    df: pl.DataFrame, name: str, stats: dict[str, object]
) -> tuple[TextSummary, bytes]:
    counts = (
        df.get_column(name)
        .cast(pl.String)
        .drop_nulls()
        .value_counts(sort=True, name="__n")
        .rename({name: "__v"})
    )
    hll, freq = new_hll(), new_freq()
    deque(map(hll.update, counts.get_column("__v").to_list()), maxlen=0)
    top = counts.head(_FREQ_FEED)
    for v, n in zip(top.get_column("__v").to_list(), top.get_column("__n").to_list(), strict=True):
        freq.update(v, int(n))
    summary = TextSummary(
        lengths=_moments(stats, name),
        frequent=bytes(freq.serialize()),
        complete=counts.height <= _FREQ_FEED,
    )
    return summary, bytes(hll.serialize_compact())


def profile_frame(df: pl.DataFrame) -> DatasetProfile:
    """Profile one batch: counts, nulls, moments and sketches for every column."""
    logicals = {name: logical_type(dtype) for name, dtype in df.schema.items()}
    exprs = [e for name, lt in logicals.items() for e in _stat_exprs(name, lt)]
    stats = df.select(exprs).row(0, named=True) if exprs else {}
    columns: list[ColumnProfile] = []
    for name, dtype in df.schema.items():
        logical = logicals[name]
        numeric: NumericSummary | None = None
        text: TextSummary | None = None
        if _summarised(logical):
            numeric, hll = _numeric_column(df, name, logical, stats)
        elif logical == LogicalType.STRING:
            text, hll = _text_column(df, name, stats)
        else:
            hll = bytes(new_hll().serialize_compact())
        nulls = stats[f"{name}\0nulls"]
        columns.append(
            ColumnProfile(
                name=name,
                logical=logical,
                dtype=str(dtype),
                count=df.height,
                null_count=int(nulls) if isinstance(nulls, int) else 0,
                hll=hll,
                numeric=numeric,
                text=text,
            )
        )
    return DatasetProfile(row_count=df.height, columns=tuple(columns))


def profile_batches(
    batches: Iterable[pl.DataFrame],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetProfile:
    """Profile a stream of batches by merging per-batch profiles.

    ``progress(batches_done, rows_done)`` is called after each batch.
    """
    total: DatasetProfile | None = None
    rows = 0
    for i, batch in enumerate(batches, start=1):
        part = profile_frame(batch)
        total = part if total is None else total.merge(part)
        rows += batch.height
        if progress is not None:
            progress(i, rows)
    return total if total is not None else DatasetProfile(row_count=0, columns=())


__all__ = ["logical_type", "numeric_expr", "profile_batches", "profile_frame"]
