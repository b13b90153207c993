"""The models a poisoning reference refits from its trusted sample.

The label model is a histogram gradient-boosting classifier (native missing
values and categories, log-loss so its probabilities are close to calibrated;
the detectors standardize against its own out-of-fold behaviour on trusted rows
so residual miscalibration cancels).  The outlier model is an Isolation Forest.
Both use fixed seeds and one thread, so a refit from the same sample gives the
same model: that is what lets the reference be stored without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from bastion.data_security.poisoning._schema import FeatureKind, FloatArray, IntArray, TableSchema

_SEED = 0
_OOF_FOLDS = 5
#: categories are multiplied by this so two rows with different categories are never "near"
_CATEGORY_SPREAD = 1e9
_MISSING = -1e12


def new_label_model(schema: TableSchema) -> HistGradientBoostingClassifier:
    """A fresh, deterministic label model (early stopping off: no random validation split)."""
    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=30,
        l2_regularization=1.0,
        categorical_features=schema.categorical_mask(),
        early_stopping=False,
        random_state=_SEED,
    )


def fit_label_model(
    schema: TableSchema, x: FloatArray, y: IntArray
) -> HistGradientBoostingClassifier:
    """Fit on trusted rows (one thread: on small data OpenMP start-up costs more than it saves)."""
    model = new_label_model(schema)
    with threadpool_limits(limits=1):
        model.fit(x, y)
    return model


def predict_proba(
    model: HistGradientBoostingClassifier, x: FloatArray, n_classes: int
) -> FloatArray:
    """Class probabilities with one column per schema class (absent classes get 0)."""
    with threadpool_limits(limits=1):
        raw = np.asarray(model.predict_proba(x), dtype=np.float64)
    out = np.zeros((x.shape[0], n_classes), dtype=np.float64)
    out[:, np.asarray(model.classes_, dtype=np.int64)] = raw
    return out


def out_of_fold_proba(schema: TableSchema, x: FloatArray, y: IntArray) -> FloatArray:
    """Out-of-fold probabilities on trusted rows: how the model behaves on rows it never saw."""
    n_classes = len(schema.classes)
    smallest = int(np.bincount(y, minlength=n_classes).min())
    folds = max(2, min(_OOF_FOLDS, smallest))
    out = np.zeros((x.shape[0], n_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=_SEED)
    for train, test in splitter.split(x, y):
        model = fit_label_model(schema, x[train], y[train])
        out[test] = predict_proba(model, x[test], n_classes)
    return out


@dataclass(frozen=True)
class OutlierModel:
    """Isolation Forest on imputed trusted rows plus the imputation it needs."""

    forest: IsolationForest
    medians: FloatArray
    numeric: tuple[bool, ...]

    def prepare(self, x: FloatArray) -> FloatArray:
        filled = x.copy()
        missing = np.isnan(filled)
        for j, is_num in enumerate(self.numeric):
            # numbers: median; categories: -1 (missing or unseen category stands apart)
            filled[missing[:, j], j] = self.medians[j] if is_num else -1.0
        indicators = missing[:, [j for j, n in enumerate(self.numeric) if n]].astype(np.float64)
        return np.hstack([filled, indicators])

    def scores(self, x: FloatArray) -> FloatArray:
        """Higher is more normal (sklearn's ``score_samples``)."""
        with threadpool_limits(limits=1):
            return np.asarray(self.forest.score_samples(self.prepare(x)), dtype=np.float64)


def fit_outlier_model(schema: TableSchema, x: FloatArray) -> OutlierModel:
    numeric = tuple(f.kind is FeatureKind.NUMERIC for f in schema.features)
    with np.errstate(all="ignore"):
        medians = np.nan_to_num(np.nanmedian(np.where(np.isnan(x).all(0), 0.0, x), axis=0))
    model = OutlierModel(IsolationForest(n_estimators=200, random_state=_SEED), medians, numeric)
    with threadpool_limits(limits=1):
        model.forest.fit(model.prepare(x))
    return model


@dataclass(frozen=True)
class NearIndex:
    """Chebyshev radius-1 neighbours in a space where 1 unit = the near-duplicate tolerance."""

    scale: FloatArray
    numeric: tuple[bool, ...]
    index: NearestNeighbors

    def embed(self, x: FloatArray) -> FloatArray:
        out = np.where(np.isnan(x), _MISSING, x)
        for j, is_num in enumerate(self.numeric):
            out[:, j] = out[:, j] / self.scale[j] if is_num else out[:, j] * _CATEGORY_SPREAD
        return out

    def neighbours(self, x: FloatArray) -> list[IntArray]:
        """For each row of ``x``, the indices of indexed rows within tolerance."""
        found = self.index.radius_neighbors(self.embed(x), radius=1.0, return_distance=False)
        return [np.asarray(r, dtype=np.int64) for r in found]


def build_near_index(schema: TableSchema, x: FloatArray, tolerance: float) -> NearIndex:
    numeric = tuple(f.kind is FeatureKind.NUMERIC for f in schema.features)
    with np.errstate(all="ignore"):
        std = np.nan_to_num(np.nanstd(np.where(np.isnan(x).all(0), 0.0, x), axis=0))
    # a constant column gets unit scale; tolerance 0 degenerates to (almost) exact matching
    scale = np.where(std > 0, std, 1.0) * max(tolerance, 1e-12)
    near = NearIndex(scale, numeric, NearestNeighbors(metric="chebyshev", algorithm="kd_tree"))
    near.index.fit(near.embed(x))
    return near


__all__ = [
    "NearIndex",
    "OutlierModel",
    "build_near_index",
    "fit_label_model",
    "fit_outlier_model",
    "new_label_model",
    "out_of_fold_proba",
    "predict_proba",
]
