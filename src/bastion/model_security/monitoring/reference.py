"""The drift reference: per-column summaries of the training data, computed once.

``DriftReference.from_frame`` summarises each chosen column (quantile edges and
counts, low-cardinality levels, label counts, null counts and a bounded sorted
sample for KS) and, optionally, the model's prediction column.  ``to_bytes``
gives a compact, pickle-free encoding (an ``.npz`` archive whose metadata is
JSON) for the caller to store encrypted: the sample holds raw training values.

Example::

    import polars as pl
    from bastion.model_security.monitoring import DriftReference
    train = pl.DataFrame({"income": [10.0, 20.0, 30.0] * 100, "plan": ["a", "b", "c"] * 100})
    ref = DriftReference.from_frame(train, ["income", "plan"])
    assert DriftReference.from_bytes(ref.to_bytes()).column_names == ("income", "plan")
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from bastion.data_security.stats import ColumnKind, ColumnSummary
from bastion.model_security.errors import DriftReferenceInvalid, MonitoringInputInvalid
from bastion.model_security.monitoring.progress import MonitoringProgress, ProgressCallback

FORMAT = "bastion.drift-reference"
VERSION = 1
_ARRAYS = ("edges", "bin_counts", "levels", "level_counts", "sample", "category_counts")
#: refuse archives whose members would unpack past this size (zip-bomb guard)
MAX_UNPACKED_BYTES = 1 << 30


def kind_of(dtype: pl.DataType, column: str) -> ColumnKind:
    """The comparison kind of a polars dtype; nested and binary columns are refused."""
    if dtype.is_numeric() or dtype.is_temporal():
        return ColumnKind.NUMERIC
    if dtype in (pl.String, pl.Boolean, pl.Categorical, pl.Enum) or isinstance(
        dtype, pl.Categorical | pl.Enum
    ):
        return ColumnKind.CATEGORICAL
    raise MonitoringInputInvalid(
        f"column {column!r} has dtype {dtype}, which drift monitoring cannot compare",
        hint="monitor numeric, temporal, boolean or string columns only",
    )


@dataclass(frozen=True, eq=False)
class DriftReference:
    """Summaries of the reference (training) data for :func:`detect_drift`."""

    columns: tuple[ColumnSummary, ...]
    prediction: ColumnSummary | None
    n_rows: int
    bins: int
    sample_size: int | None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @classmethod
    def from_frame(
        cls, df: pl.DataFrame, columns: Sequence[str], prediction_column: str | None = None, *,
        kinds: Mapping[str, ColumnKind] | None = None, bins: int = 10,
        sample_size: int | None = 10_000, max_categories: int = 1_000, seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> DriftReference:
        """Summarise ``columns`` (and ``prediction_column``) of the reference frame ``df``."""
        names = list(columns)
        if not names:
            raise MonitoringInputInvalid("no columns to monitor", hint="pass the feature names")
        if len(set(names)) != len(names):
            raise MonitoringInputInvalid(f"duplicate column names in {names}")
        wanted = [*names, prediction_column] if prediction_column else names
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            raise MonitoringInputInvalid(
                f"reference frame lacks columns {missing}", hint=f"it has {df.columns}"
            )
        if df.height == 0:
            raise MonitoringInputInvalid("the reference frame is empty")
        summaries: list[ColumnSummary] = []
        for i, name in enumerate(wanted):
            kind = (kinds or {}).get(name) or kind_of(df.schema[name], name)
            summaries.append(ColumnSummary.from_values(
                name, df.get_column(name), kind, bins=bins, sample_size=sample_size,
                max_categories=max_categories, seed=seed + i))
            if progress is not None:
                progress(MonitoringProgress("reference", i + 1, len(wanted), name))
        prediction = summaries.pop() if prediction_column else None
        return cls(tuple(summaries), prediction, df.height, bins, sample_size)

    def to_bytes(self) -> bytes:
        """A pickle-free encoding (``.npz``); store it encrypted, it holds raw samples."""
        everything = [*self.columns, *([self.prediction] if self.prediction else [])]
        arrays: dict[str, np.ndarray] = {}
        meta_cols = []
        for i, col in enumerate(everything):
            for field in _ARRAYS:
                value = getattr(col, field)
                arrays[f"c{i}_{field}"] = value if value is not None else np.empty(0, np.int64)
            meta_cols.append({
                "name": col.name, "kind": col.kind.value, "n_rows": col.n_rows,
                "n_nulls": col.n_nulls, "n_distinct": col.n_distinct,
                "categories": list(col.categories), "other_count": col.other_count,
            })
        meta = {"format": FORMAT, "version": VERSION, "n_rows": self.n_rows, "bins": self.bins,
                "sample_size": self.sample_size, "has_prediction": self.prediction is not None,
                "columns": meta_cols}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DriftReference:
        """Decode :meth:`to_bytes` output; anything malformed raises ``DriftReferenceInvalid``."""
        try:
            return _decode(data)
        except DriftReferenceInvalid:
            raise
        except Exception as e:  # any parse failure is a refusal, never a partial reference
            raise DriftReferenceInvalid(
                f"drift reference bytes do not decode: {type(e).__name__}: {e}",
                hint="rebuild the reference with DriftReference.from_frame",
            ) from e


def _decode(data: bytes) -> DriftReference:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
            raise DriftReferenceInvalid("drift reference unpacks to more than 1 GiB")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(bytes(arrays["meta"].astype(np.uint8)).decode())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DriftReferenceInvalid(
            f"not a {FORMAT} v{VERSION} (got {meta.get('format')!r} v{meta.get('version')!r})"
        )
    summaries = [_column(i, m, arrays) for i, m in enumerate(meta["columns"])]
    prediction = summaries.pop() if meta["has_prediction"] else None
    if not summaries:
        raise DriftReferenceInvalid("drift reference has no columns")
    sample_size = meta["sample_size"]
    return DriftReference(tuple(summaries), prediction, int(meta["n_rows"]), int(meta["bins"]),
                          None if sample_size is None else int(sample_size))


def _column(i: int, m: dict[str, object], arrays: Mapping[str, np.ndarray]) -> ColumnSummary:
    get = {f: arrays[f"c{i}_{f}"] for f in _ARRAYS}
    floats = {f: get[f].astype(np.float64) for f in ("edges", "levels", "sample")}
    ints = {f: get[f].astype(np.int64) for f in ("bin_counts", "level_counts", "category_counts")}
    categories = m["categories"]
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise DriftReferenceInvalid(f"column {i}: categories must be a list of strings")
    summary = ColumnSummary(
        name=str(m["name"]), kind=ColumnKind(str(m["kind"])), n_rows=_int(m["n_rows"]),
        n_nulls=_int(m["n_nulls"]), n_distinct=_int(m["n_distinct"]), edges=floats["edges"],
        bin_counts=ints["bin_counts"], levels=floats["levels"],
        level_counts=ints["level_counts"], sample=floats["sample"],
        categories=tuple(categories), category_counts=ints["category_counts"],
        other_count=_int(m["other_count"]),
    )
    _check(summary)
    return summary


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DriftReferenceInvalid(f"expected a non-negative integer, got {value!r}")
    return value


def _check(s: ColumnSummary) -> None:
    """Refuse summaries whose arrays contradict each other (a corrupted or forged file)."""
    problems = []
    if s.n_nulls > s.n_rows:
        problems.append("more nulls than rows")
    if s.kind is ColumnKind.NUMERIC:
        if s.bin_counts.size != s.edges.size + 1 or int(s.bin_counts.sum()) != s.n_values:
            problems.append("bin counts do not match the edges / row count")
        if np.any(np.diff(s.edges) <= 0) or np.any(np.diff(s.sample) < 0):
            problems.append("edges or sample not sorted")
        if s.levels.size != s.level_counts.size:
            problems.append("levels and level counts differ in length")
        if not (np.all(np.isfinite(s.edges)) and np.all(np.isfinite(s.sample))):
            problems.append("non-finite edges or sample")
    elif s.category_counts is None or s.category_counts.size != len(s.categories):
        problems.append("category counts do not match the categories")
    if np.any(s.bin_counts < 0) or (s.category_counts is not None
                                    and np.any(s.category_counts < 0)):
        problems.append("negative counts")
    if problems:
        raise DriftReferenceInvalid(f"column {s.name!r}: " + "; ".join(problems))


__all__ = ["FORMAT", "VERSION", "DriftReference", "kind_of"]
