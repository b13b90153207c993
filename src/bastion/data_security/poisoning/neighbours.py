"""What the nearest trusted rows say about a row's label, blended with the label model.

On small tables a gradient-boosting model is weak; the labels of a row's
nearest trusted neighbours are a second, independent opinion.  Rows are
embedded as numeric columns standardized by the trusted median and standard
deviation (missing: 0 plus an indicator) and one-hot categories; the
neighbour probability is the Laplace-smoothed label share among the ``k``
nearest trusted rows (for a trusted row: excluding itself, i.e. out of sample).

The blend weight ``w`` (model share) is chosen on the trusted rows from
{0, 0.25, 0.5, 0.75, 1} by out-of-sample log loss, so a strong model on a large
table keeps its weight and a weak one leans on the neighbours.  Both the
trusted null (out-of-fold model, neighbours among the fold's training rows) and
the batch (scored by the same fold's model and neighbours) use the same blend.

Example::

    blend = ref.derived.blend(ref)
    proba = blend.batch_proba(view.x, view.proba, fold)   # rows x classes
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from bastion.data_security.poisoning._schema import FeatureKind, FloatArray, IntArray, TableSchema

#: neighbours consulted per row
K_NEIGHBOURS = 25
#: above this many trusted rows or batch rows the model alone is used (query cost)
MAX_NEIGHBOUR_ROWS = 20_000
_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
_CLIP = 1e-3


@dataclass(frozen=True)
class Embedding:
    """Standardization and one-hot layout fitted on the trusted rows."""

    center: FloatArray
    scale: FloatArray
    numeric: tuple[int, ...]
    categorical: tuple[tuple[int, int], ...]  # (column, number of categories)

    @classmethod
    def fit(cls, schema: TableSchema, x: FloatArray) -> Embedding:
        numeric = tuple(j for j, f in enumerate(schema.features) if f.kind is FeatureKind.NUMERIC)
        cats = tuple(
            (j, len(f.categories))
            for j, f in enumerate(schema.features)
            if f.kind is FeatureKind.CATEGORICAL
        )
        with np.errstate(all="ignore"):
            sub = x[:, list(numeric)] if numeric else np.zeros((x.shape[0], 0))
            center = np.nan_to_num(np.nanmedian(sub, axis=0)) if sub.size else np.zeros(0)
            scale = np.nan_to_num(np.nanstd(sub, axis=0)) if sub.size else np.zeros(0)
        return cls(center, np.where(scale > 0, scale, 1.0), numeric, cats)

    def __call__(self, x: FloatArray) -> FloatArray:
        parts: list[FloatArray] = []
        if self.numeric:
            sub = x[:, list(self.numeric)]
            missing = np.isnan(sub)
            parts.append(np.where(missing, 0.0, (sub - self.center) / self.scale))
            if missing.any():
                parts.append(missing.astype(np.float64))
        for j, size in self.categorical:
            codes = np.nan_to_num(x[:, j], nan=-1.0).astype(np.int64)
            onehot = np.zeros((x.shape[0], size + 1))
            onehot[np.arange(x.shape[0]), np.clip(codes, -1, size - 1) + 1] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((x.shape[0], 1))


@dataclass(frozen=True)
class LabelBlend:
    """Neighbour indices over the trusted rows (one per label-model fold) and the model weight.

    The neighbours are a model too, so they are fitted like the label model's
    folds: a trusted row held out of fold ``k`` gets its neighbour opinion from
    the rows fold ``k`` trained on, and a batch row scored by fold model ``k``
    asks the same rows.  Given the fold's training rows, the held-out rows and
    the batch rows are then exchangeable (leave-one-out neighbours over all
    trusted rows were not: trusted rows answer for each other, batch rows never).
    """

    embedding: Embedding | None
    indices: tuple[tuple[NearestNeighbors, IntArray], ...]
    labels: IntArray
    n_classes: int
    weight: float
    oof_proba: FloatArray

    @classmethod
    def fit(
        cls,
        schema: TableSchema,
        x: FloatArray,
        y: IntArray,
        model_oof: FloatArray,
        held_out: tuple[IntArray, ...],
    ) -> LabelBlend:
        n_classes = len(schema.classes)
        if x.shape[0] > MAX_NEIGHBOUR_ROWS or x.shape[0] <= K_NEIGHBOURS + 1:
            return cls(None, (), y, n_classes, 1.0, model_oof)
        embedding = Embedding.fit(schema, x)
        points = embedding(x)
        knn_oof = np.zeros((x.shape[0], n_classes))
        # rows held out of no kept fold (none while every fold is kept, i.e. up to
        # ALL_FOLDS_MAX_ROWS trusted rows): leave-one-out over all rows, not used by the null
        uncovered = np.setdiff1d(np.arange(x.shape[0]), np.concatenate([[], *held_out]))
        if uncovered.size:
            everyone = NearestNeighbors(n_neighbors=K_NEIGHBOURS + 1).fit(points)
            _dist, idx = everyone.kneighbors(points[uncovered])
            knn_oof[uncovered] = _shares(y[idx[:, 1:]], n_classes)
        indices: list[tuple[NearestNeighbors, IntArray]] = []
        for rows in held_out:
            train = np.setdiff1d(np.arange(x.shape[0]), rows)
            if train.size < K_NEIGHBOURS:
                return cls(None, (), y, n_classes, 1.0, model_oof)
            index = NearestNeighbors(n_neighbors=K_NEIGHBOURS).fit(points[train])
            _dist, idx = index.kneighbors(points[rows])
            knn_oof[rows] = _shares(y[train[idx]], n_classes)
            indices.append((index, train))
        weight = min(_WEIGHTS, key=lambda w: _log_loss(w * model_oof + (1 - w) * knn_oof, y))
        oof = weight * model_oof + (1 - weight) * knn_oof
        return cls(embedding, tuple(indices), y, n_classes, weight, oof)

    def batch_proba(self, x: FloatArray, model_proba: FloatArray, fold: IntArray) -> FloatArray:
        """Blended probabilities for batch rows (``fold``: the label-model fold of each row)."""
        if not self.indices or self.embedding is None or self.weight >= 1.0:
            return model_proba
        if x.shape[0] > MAX_NEIGHBOUR_ROWS:
            return model_proba
        points = self.embedding(x)
        knn = np.zeros_like(model_proba)
        for k, (index, train) in enumerate(self.indices):
            rows = np.flatnonzero(fold == k)
            if rows.size:
                _dist, idx = index.kneighbors(points[rows])
                knn[rows] = _shares(self.labels[train[idx]], self.n_classes)
        return self.weight * model_proba + (1 - self.weight) * knn

    def null_proba(self, batch_rows: int, model_oof: FloatArray) -> FloatArray:
        """The trusted out-of-sample probabilities matching what ``batch_proba`` returns."""
        if not self.indices or self.weight >= 1.0 or batch_rows > MAX_NEIGHBOUR_ROWS:
            return model_oof
        return self.oof_proba


def _shares(neighbour_labels: IntArray, n_classes: int) -> FloatArray:
    counts = np.stack([(neighbour_labels == c).sum(axis=1) for c in range(n_classes)], axis=1)
    return np.asarray((counts + 0.5) / (neighbour_labels.shape[1] + 0.5 * n_classes), np.float64)


def _log_loss(proba: FloatArray, y: IntArray) -> float:
    own = np.clip(proba[np.arange(y.size), y], _CLIP, 1.0)
    return float(-np.mean(np.log(own)))


__all__ = ["K_NEIGHBOURS", "MAX_NEIGHBOUR_ROWS", "Embedding", "LabelBlend"]
