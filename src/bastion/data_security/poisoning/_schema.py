"""The column schema a poisoning reference pins, and the encodings detectors share.

A :class:`TableSchema` names the label, the label classes and each feature with
its kind (numeric or categorical, with the trusted categories).  It turns a
polars batch into the float matrix the trusted models read, into canonical
per-row strings for hashing, and into canonical per-cell strings for trigger
search.  Everything here is deterministic so that a reference rebuilt from its
stored sample behaves exactly like the one that was pinned.

Example::

    schema = TableSchema.infer(trusted, label="Status")
    matrix = schema.model_matrix(batch)          # floats, NaN for missing
    labels = schema.label_codes(batch)           # -1 for unknown/missing
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import polars as pl

from bastion.data_security.errors import PoisoningInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: HistGradientBoosting supports at most 255 categories per feature; rarer ones fold into "other"
_MAX_CATEGORIES = 250
_NULL = "\x00null"


class FeatureKind(StrEnum):
    """How a feature is encoded: numbers keep their order, categories do not."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: its name, kind and (for categoricals) trusted categories."""

    name: str
    kind: FeatureKind
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind.value, "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> FeatureSpec:
        cats = raw.get("categories", [])
        if not isinstance(cats, list):
            raise PoisoningInputError("feature spec 'categories' must be a list")
        return cls(str(raw["name"]), FeatureKind(str(raw["kind"])), tuple(str(c) for c in cats))


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


@dataclass(frozen=True)
class TableSchema:
    """Label column, label classes (sorted strings) and feature specs."""

    label: str
    classes: tuple[str, ...]
    features: tuple[FeatureSpec, ...]

    @classmethod
    def infer(cls, trusted: pl.DataFrame, *, label: str) -> TableSchema:
        """Derive the schema from trusted rows; every non-label column is a feature."""
        if label not in trusted.columns:
            raise PoisoningInputError(
                f"label column {label!r} is not in the trusted data",
                hint=f"columns are: {', '.join(trusted.columns)}",
            )
        labels = trusted.get_column(label).drop_nulls().cast(pl.String)
        classes = tuple(sorted(set(labels.to_list())))
        if len(classes) < 2:
            raise PoisoningInputError(
                f"label column {label!r} has {len(classes)} class(es) in the trusted data",
                hint="poisoning detection needs at least two label classes",
            )
        specs: list[FeatureSpec] = []
        for name in trusted.columns:
            if name == label:
                continue
            col = trusted.get_column(name)
            if _is_numeric(col.dtype):
                specs.append(FeatureSpec(name, FeatureKind.NUMERIC))
                continue
            counts = col.cast(pl.String).drop_nulls().value_counts(sort=True)
            top = counts.get_column(counts.columns[0]).head(_MAX_CATEGORIES).to_list()
            specs.append(FeatureSpec(name, FeatureKind.CATEGORICAL, tuple(sorted(map(str, top)))))
        if not specs:
            raise PoisoningInputError("the trusted data has no feature columns besides the label")
        return cls(label=label, classes=classes, features=tuple(specs))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def categorical_mask(self) -> list[bool]:
        return [f.kind is FeatureKind.CATEGORICAL for f in self.features]

    def check_batch(self, batch: pl.DataFrame) -> None:
        """Refuse a batch that lacks a pinned column (fail closed, name what is missing)."""
        missing = [c for c in (self.label, *self.feature_names) if c not in batch.columns]
        if missing:
            raise PoisoningInputError(
                f"batch lacks column(s) of the trusted reference: {', '.join(missing)}",
                hint="send the batch with the same columns as the pinned history",
            )
        for spec in self.features:
            dtype = batch.schema[spec.name]
            if spec.kind is FeatureKind.NUMERIC and not (_is_numeric(dtype) or dtype == pl.Null):
                raise PoisoningInputError(
                    f"column {spec.name!r} is numeric in the trusted data but {dtype} in the batch",
                    hint="cast the column to a number before the audit",
                )

    def model_matrix(self, frame: pl.DataFrame) -> FloatArray:
        """Floats for the label model: numbers as-is, categories as codes, NaN when missing."""
        cols: list[FloatArray] = []
        for spec in self.features:
            col = frame.get_column(spec.name)
            if spec.kind is FeatureKind.NUMERIC:
                cols.append(col.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64))
            elif not spec.categories:
                cols.append(np.full(frame.height, np.nan))
            else:
                codes = col.cast(pl.String).replace_strict(
                    list(spec.categories),
                    [float(i) for i in range(len(spec.categories))],
                    default=None,
                    return_dtype=pl.Float64,
                )
                cols.append(codes.to_numpy().astype(np.float64))
        return np.column_stack(cols) if cols else np.empty((frame.height, 0))

    def label_codes(self, frame: pl.DataFrame) -> IntArray:
        """Index of each row's label in ``classes``; -1 for missing or unknown labels."""
        codes = (
            frame.get_column(self.label)
            .cast(pl.String)
            .replace_strict(
                list(self.classes),
                list(range(len(self.classes))),
                default=-1,
                return_dtype=pl.Int64,
            )
            .fill_null(-1)
        )
        return codes.to_numpy().astype(np.int64)

    def cell_strings(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Canonical string per cell (numbers as float text) so 5 and 5.0 are one value."""
        exprs: list[pl.Expr] = []
        for spec in self.features:
            expr = pl.col(spec.name)
            if spec.kind is FeatureKind.NUMERIC:
                expr = expr.cast(pl.Float64).fill_nan(None)
            exprs.append(expr.cast(pl.String).fill_null(_NULL).alias(spec.name))
        return frame.select(exprs)

    def row_hashes(self, frame: pl.DataFrame) -> npt.NDArray[np.uint64]:
        """Stable 64-bit BLAKE2b hash of each row's features (label excluded)."""
        return self.cell_hashes(self.cell_strings(frame))

    @staticmethod
    def cell_hashes(cells: pl.DataFrame) -> npt.NDArray[np.uint64]:
        """``row_hashes`` from the frame's ``cell_strings`` (when a caller has them already)."""
        # the UTF-8 bytes straight from polars: no Python str per row to encode
        joined = cells.select(pl.concat_str(pl.all(), separator="\x1f").cast(pl.Binary).alias("k"))
        blake = hashlib.blake2b
        digests = b"".join([blake(k, digest_size=8).digest() for k in joined.to_series().to_list()])
        # big-endian, as the digests were always read: stored history hashes stay valid
        return np.frombuffer(digests, dtype=">u8").astype(np.uint64)

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "classes": list(self.classes),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> TableSchema:
        classes = raw.get("classes")
        features = raw.get("features")
        if not isinstance(classes, list) or not isinstance(features, list):
            raise PoisoningInputError("schema needs 'classes' and 'features' lists")
        return cls(
            label=str(raw["label"]),
            classes=tuple(str(c) for c in classes),
            features=tuple(FeatureSpec.from_dict(f) for f in features),
        )


__all__ = ["FeatureKind", "FeatureSpec", "FloatArray", "IntArray", "TableSchema"]
