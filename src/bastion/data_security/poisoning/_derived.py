"""Lazily refitted state of a poisoning reference (models, indices, encodings).

Kept out of the reference's serialized form on purpose: everything here is a
deterministic function of the stored sample, computed on first use and cached.
The refitted models are also kept in a small in-process cache keyed by a digest
of the schema and sample, so a reference loaded again (``from_bytes`` on every
ingest) does not refit: the models never leave the process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bastion.data_security.poisoning._models import (
    FoldModels,
    NearIndex,
    OutlierModel,
    build_near_index,
    fit_outlier_model,
    grid_columns,
    near_scale,
    out_of_fold_models,
)
from bastion.data_security.poisoning._schema import FloatArray, IntArray
from bastion.data_security.poisoning.neighbours import LabelBlend

if TYPE_CHECKING:
    from bastion.data_security.poisoning.reference import PoisoningReference


T = TypeVar("T")

#: references whose models stay fitted in this process (least recently used evicted)
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()
_LABEL_MODELS: OrderedDict[str, FoldModels] = OrderedDict()
_OUTLIER_MODELS: OrderedDict[str, tuple[OutlierModel, FloatArray]] = OrderedDict()


def _cached(table: OrderedDict[str, T], key: str) -> T | None:
    with _CACHE_LOCK:
        if key in table:
            table.move_to_end(key)
            return table[key]
    return None


def _remember(table: OrderedDict[str, T], key: str, value: T) -> None:
    with _CACHE_LOCK:
        table[key] = value
        while len(table) > _CACHE_SIZE:
            table.popitem(last=False)


def _halves(n: int) -> tuple[IntArray, IntArray]:
    """A fixed random split of ``n`` trusted rows: (fit the forest, calibrate its threshold)."""
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


class Derived:
    """Per-reference cache; a lock keeps concurrent first uses from fitting twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._x: FloatArray | None = None
        self._y: IntArray | None = None
        self._label_model: FoldModels | None = None
        self._outliers: tuple[OutlierModel, FloatArray] | None = None
        self._blend: LabelBlend | None = None
        self._near: dict[float, NearIndex] = {}
        self._cells: pl.DataFrame | None = None
        self._hash_labels: pl.DataFrame | None = None
        self._sample_hashes: npt.NDArray[np.uint64] | None = None
        self._digest: str | None = None
        #: detector-level derived numbers keyed by (what, parameter)
        self.memo: dict[tuple[str, float], float] = {}

    def digest(self, ref: PoisoningReference) -> str:
        """Content digest of schema + sample (the models are a function of exactly these)."""
        if self._digest is None:
            h = hashlib.sha256(json.dumps(ref.schema.to_dict(), sort_keys=True).encode())
            h.update(np.ascontiguousarray(ref.sample.hash_rows(seed=0).to_numpy()).tobytes())
            h.update(self.matrix(ref).tobytes())
            self._digest = h.hexdigest()
        return self._digest

    def matrix(self, ref: PoisoningReference) -> FloatArray:
        if self._x is None:
            self._x = ref.schema.model_matrix(ref.sample)
        return self._x

    def sample_labels(self, ref: PoisoningReference) -> IntArray:
        if self._y is None:
            self._y = ref.schema.label_codes(ref.sample)
        return self._y

    def label_model(self, ref: PoisoningReference) -> FoldModels:
        """The out-of-fold label models (see ``FoldModels``): refitted from the sample."""
        with self._lock:
            if self._label_model is None:
                key = self.digest(ref)
                model = _cached(_LABEL_MODELS, key)
                if model is None:
                    _oof, model = out_of_fold_models(
                        ref.schema, self.matrix(ref), self.sample_labels(ref), need_proba=False
                    )
                    _remember(_LABEL_MODELS, key, model)
                self._label_model = model
            return self._label_model

    def keep_label_model(self, ref: PoisoningReference, model: FoldModels) -> None:
        """Keep the fold models fitted while building ``ref`` (no refit on first use)."""
        with self._lock:
            self._label_model = model
            _remember(_LABEL_MODELS, self.digest(ref), model)

    def outliers(self, ref: PoisoningReference) -> tuple[OutlierModel, FloatArray]:
        """The forest and its out-of-sample scores on held-out trusted rows (split conformal).

        The forest is fitted on a fixed half of the trusted sample and scores the
        other half: those calibration scores are exchangeable with a clean batch
        row's score, which in-sample scores are not (a forest finds its own
        training rows more normal, so new clean rows looked like outliers).
        """
        with self._lock:
            if self._outliers is None:
                key = self.digest(ref)
                found = _cached(_OUTLIER_MODELS, key)
                if found is None:
                    x = self.matrix(ref)
                    fit, calibrate = _halves(x.shape[0])
                    model = fit_outlier_model(ref.schema, x[fit])
                    found = (model, model.scores(x[calibrate]))
                    _remember(_OUTLIER_MODELS, key, found)
                self._outliers = found
            return self._outliers

    def blend(self, ref: PoisoningReference) -> LabelBlend:
        """Nearest-trusted-neighbour labels blended with the label model (see ``neighbours``)."""
        folds = self.label_model(ref)  # (takes the lock itself) the neighbours follow its folds
        with self._lock:
            if self._blend is None:
                self._blend = LabelBlend.fit(
                    ref.schema,
                    self.matrix(ref),
                    self.sample_labels(ref),
                    ref.oof_proba,
                    folds.held_out,
                )
            return self._blend

    def near_index(self, ref: PoisoningReference, tolerance: float) -> NearIndex:
        """The trusted sample indexed in units of ``tolerance`` trusted standard deviations."""
        with self._lock:
            if tolerance not in self._near:
                x = self.matrix(ref)
                scale = near_scale(x, tolerance)
                grid = grid_columns(ref.schema, x, scale)
                self._near[tolerance] = build_near_index(ref.schema, x, scale, grid)
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

    def hash_labels(self, ref: PoisoningReference) -> pl.DataFrame:
        """Distinct (history feature-hash ``h``, label code ``y``) pairs, for joins."""
        if self._hash_labels is None:
            self._hash_labels = pl.DataFrame(
                {"h": ref.history_hashes, "y": ref.history_labels}
            ).unique()
        return self._hash_labels


__all__ = ["Derived"]
