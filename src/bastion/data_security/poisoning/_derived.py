"""Lazily refitted state of a poisoning reference (models, indices, encodings).

Kept out of the reference's serialized form on purpose: everything here is a
deterministic function of the stored sample, computed on first use and cached.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier

from bastion.data_security.poisoning._models import (
    NearIndex,
    OutlierModel,
    build_near_index,
    fit_label_model,
    fit_outlier_model,
)
from bastion.data_security.poisoning._schema import FloatArray, IntArray

if TYPE_CHECKING:
    from bastion.data_security.poisoning.reference import PoisoningReference


class Derived:
    """Per-reference cache; a lock keeps concurrent first uses from fitting twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._x: FloatArray | None = None
        self._y: IntArray | None = None
        self._label_model: HistGradientBoostingClassifier | None = None
        self._outliers: tuple[OutlierModel, FloatArray] | None = None
        self._near: dict[float, NearIndex] = {}
        self._cells: pl.DataFrame | None = None
        self._hash_labels: dict[int, int] | None = None
        self._sample_hashes: npt.NDArray[np.uint64] | None = None
        #: detector-level derived numbers keyed by (what, parameter)
        self.memo: dict[tuple[str, float], float] = {}

    def matrix(self, ref: PoisoningReference) -> FloatArray:
        if self._x is None:
            self._x = ref.schema.model_matrix(ref.sample)
        return self._x

    def sample_labels(self, ref: PoisoningReference) -> IntArray:
        if self._y is None:
            self._y = ref.schema.label_codes(ref.sample)
        return self._y

    def label_model(self, ref: PoisoningReference) -> HistGradientBoostingClassifier:
        with self._lock:
            if self._label_model is None:
                self._label_model = fit_label_model(
                    ref.schema, self.matrix(ref), self.sample_labels(ref)
                )
            return self._label_model

    def outliers(self, ref: PoisoningReference) -> tuple[OutlierModel, FloatArray]:
        """The forest and its scores on the trusted sample."""
        with self._lock:
            if self._outliers is None:
                model = fit_outlier_model(ref.schema, self.matrix(ref))
                self._outliers = (model, model.scores(self.matrix(ref)))
            return self._outliers

    def near_index(self, ref: PoisoningReference, tolerance: float) -> NearIndex:
        with self._lock:
            if tolerance not in self._near:
                self._near[tolerance] = build_near_index(ref.schema, self.matrix(ref), tolerance)
            return self._near[tolerance]

    def cells(self, ref: PoisoningReference) -> pl.DataFrame:
        """Canonical cell strings of the sample plus its label (for trigger counts)."""
        if self._cells is None:
            self._cells = ref.schema.cell_strings(ref.sample).with_columns(
                pl.Series("__label", self.sample_labels(ref))
            )
        return self._cells

    def sample_hashes(self, ref: PoisoningReference) -> npt.NDArray[np.uint64]:
        if self._sample_hashes is None:
            self._sample_hashes = ref.schema.row_hashes(ref.sample)
        return self._sample_hashes

    def hash_labels(self, ref: PoisoningReference) -> dict[int, int]:
        """History feature-hash -> bit mask of the label codes seen with it."""
        if self._hash_labels is None:
            table: dict[int, int] = {}
            pairs = zip(ref.history_hashes.tolist(), ref.history_labels.tolist(), strict=True)
            for h, lab in pairs:
                table[h] = table.get(h, 0) | (1 << lab if lab >= 0 else 0)
            self._hash_labels = table
        return self._hash_labels


__all__ = ["Derived"]
