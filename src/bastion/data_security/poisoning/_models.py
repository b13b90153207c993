"""The models a poisoning reference refits from its trusted sample.

The label model is a histogram gradient-boosting classifier (native missing
values and categories, log-loss so its probabilities are close to calibrated;
the detectors standardize against its own out-of-fold behaviour on trusted rows
so residual miscalibration cancels).  The outlier model is an Isolation Forest.
Both use fixed seeds and one thread, so a refit from the same sample gives the
same model: that is what lets the reference be stored without pickle.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from bastion.data_security.poisoning._schema import FeatureKind, FloatArray, IntArray, TableSchema

_SEED = 0
#: batches at least this large are scored with up to _MAX_THREADS threads
_PARALLEL_ROWS = 50_000
_MAX_THREADS = 4
_OOF_FOLDS = 5
#: categories are multiplied by this so two rows with different categories are never "near"
_CATEGORY_SPREAD = 1e9
_MISSING = -1e12
#: numeric columns gridded for near-duplicate joins (3**k neighbour cells are joined)
_GRID_DIMS = 3
_VERIFY_CHUNK = 200_000
#: rows per block scored on one thread by the Isolation Forest
_SCORE_BLOCK = 1 << 14


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


def _threads(rows: int) -> int:
    # OpenMP start-up only pays off on large inputs
    return max(1, min(os.cpu_count() or 1, _MAX_THREADS)) if rows >= _PARALLEL_ROWS else 1


def predict_proba(
    model: HistGradientBoostingClassifier | FoldModels, x: FloatArray, n_classes: int
) -> FloatArray:
    """Class probabilities with one column per schema class (absent classes get 0).

    A :class:`FoldModels` scores row ``i`` with fold model ``i % folds``.
    """
    if isinstance(model, FoldModels):
        if len(model.models) == 1:
            return predict_proba(model.models[0], x, n_classes)
        folds = model.fold_of_rows(x.shape[0])
        out = np.zeros((x.shape[0], n_classes), dtype=np.float64)
        for k, fold_model in enumerate(model.models):
            rows = np.flatnonzero(folds == k)
            if rows.size:
                out[rows] = predict_proba(fold_model, x[rows], n_classes)
        return out
    with threadpool_limits(limits=_threads(x.shape[0])):
        raw = np.asarray(model.predict_proba(x), dtype=np.float64)
    out = np.zeros((x.shape[0], n_classes), dtype=np.float64)
    out[:, np.asarray(model.classes_, dtype=np.int64)] = raw
    return out


def fold_splits(y: IntArray, n_classes: int) -> list[tuple[IntArray, IntArray]]:
    """The fixed stratified (train, held-out) splits of the trusted rows, fold by fold."""
    smallest = int(np.bincount(y, minlength=n_classes).min())
    folds = max(2, min(_OOF_FOLDS, smallest))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=_SEED)
    placeholder = np.zeros((y.size, 1))
    return [
        (np.asarray(train, np.int64), np.asarray(test, np.int64))
        for train, test in splitter.split(placeholder, y)
    ]


@dataclass(frozen=True)
class FoldModels:
    """The label model as its out-of-fold models: batch rows scored exactly as trusted rows were.

    ``models[k]`` was fitted without the trusted rows ``held_out[k]``, and its
    probabilities on them are the reference's out-of-fold values.  Batch row
    ``i`` is scored by ``models[i % len(models)]``: given that model, the row and
    the model's held-out trusted rows are exchangeable draws from the trusted
    population, so the held-out rows are an exact null for the batch (no gap
    between "the model that made the null" and "the model that scores the
    batch").  Large samples keep one fold (its held-out rows are plenty).
    """

    models: tuple[HistGradientBoostingClassifier, ...]
    held_out: tuple[IntArray, ...]

    def fold_of_rows(self, n: int) -> IntArray:
        """Which model scores each of ``n`` batch rows (row position modulo the folds)."""
        return np.asarray(np.arange(n) % len(self.models), dtype=np.int64)

    def calibration_rows(self) -> IntArray:
        """Trusted rows whose out-of-fold values came from a model this object keeps."""
        return np.asarray(np.sort(np.concatenate(self.held_out)), dtype=np.int64)


#: trusted samples above this many rows keep one fold model (fits stay as cheap as one full fit)
ALL_FOLDS_MAX_ROWS = 20_000


def out_of_fold_models(
    schema: TableSchema, x: FloatArray, y: IntArray, *, need_proba: bool = True
) -> tuple[FloatArray, FoldModels]:
    """Out-of-fold probabilities on trusted rows and the fold models that produced them.

    With ``need_proba=False`` (a reference loaded from bytes: its out-of-fold
    values are stored) only the kept folds are fitted.
    """
    n_classes = len(schema.classes)
    splits = fold_splits(y, n_classes)
    keep = len(splits) if x.shape[0] <= ALL_FOLDS_MAX_ROWS else 1
    out = np.zeros((x.shape[0], n_classes), dtype=np.float64)
    models: list[HistGradientBoostingClassifier] = []
    for k, (train, test) in enumerate(splits):
        if k >= keep and not need_proba:
            break
        model = fit_label_model(schema, x[train], y[train])
        out[test] = predict_proba(model, x[test], n_classes)
        if k < keep:
            models.append(model)
    return out, FoldModels(tuple(models), tuple(test for _train, test in splits[:keep]))


def out_of_fold_proba(schema: TableSchema, x: FloatArray, y: IntArray) -> FloatArray:
    """Out-of-fold probabilities on trusted rows: how the model behaves on rows it never saw."""
    return out_of_fold_models(schema, x, y)[0]


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
        """Higher is more normal: sklearn's ``score_samples``, blocks of rows on threads.

        Each block is scored sequentially, trees added in the forest's order, so a
        row's score is the same bits on any thread count.  (sklearn's own threading
        adds the trees in the order threads finish: a row at the threshold could
        flip.)  ``tree.apply`` releases the GIL, so the blocks do run in parallel.
        """
        prepared = self.prepare(x)
        blocks = [prepared[lo : lo + _SCORE_BLOCK] for lo in range(0, len(prepared), _SCORE_BLOCK)]
        threads = _threads(len(prepared))
        if threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                parts = list(pool.map(self.forest.score_samples, blocks))
        else:
            parts = [self.forest.score_samples(prepared)]
        return np.asarray(np.concatenate(parts), dtype=np.float64)


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
    """Rows embedded in units of the near-duplicate tolerance, bucketed on a grid for joins.

    Two rows are near when every coordinate differs by at most 1 unit (categories
    and missing-value patterns must be equal).  Candidates come from hash joins on
    (categories, missing pattern, grid cell of the ``_GRID_DIMS`` most selective
    numeric columns) with the cell and its neighbours; each candidate pair is then
    verified on every column.  No Python loop runs per row.  The join key folds
    the four into one 64-bit number, linear in the cell so a neighbour's key is
    the row's plus a constant; a rare collision only adds a candidate that the
    verification rejects (or a pair found twice, kept once).
    """

    scale: FloatArray
    numeric: tuple[bool, ...]
    grid: tuple[int, ...]
    points: FloatArray
    cells: pl.DataFrame

    def pairs(self) -> IntArray:
        """All ``(i, j)`` with ``i < j`` of indexed rows within tolerance, shape (k, 2)."""
        # a pair found at cell offset o is found again, mirrored, at -o: join half the
        # offsets (and the cell itself) once and order each pair
        half = [o for o in _OFFSETS[len(self.grid)] if o >= tuple(-d for d in o)]
        found = self._join(self, half)
        return _distinct(np.sort(found[found[:, 0] != found[:, 1]], axis=1))

    def cross(self, other: NearIndex) -> IntArray:
        """All ``(i, j)``: row i of this index within tolerance of row j of ``other``."""
        return _distinct(self._join(other, _OFFSETS[len(self.grid)]))

    def _join(self, other: NearIndex, offsets: list[tuple[int, ...]]) -> IntArray:
        keys = self.cells.get_column("key").to_numpy()
        rows = self.cells.get_column("row")
        right = other.cells.lazy().rename({"row": "j"})
        found: list[IntArray] = []
        # one neighbour cell at a time, verified at once: memory stays bounded on big batches
        for offset in offsets:
            shifted = pl.DataFrame({"key": keys + _shift(offset), "row": rows})
            pairs = shifted.lazy().join(right, on="key", how="inner").select("row", "j").collect()
            if pairs.height:
                found.append(
                    self._verify(
                        other,
                        pairs.get_column("row").to_numpy().astype(np.int64),
                        pairs.get_column("j").to_numpy().astype(np.int64),
                    )
                )
        return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)

    def _verify(self, other: NearIndex, i: IntArray, j: IntArray) -> IntArray:
        keep = np.zeros(i.size, dtype=bool)
        for lo in range(0, i.size, _VERIFY_CHUNK):
            hi = lo + _VERIFY_CHUNK
            gap = np.abs(self.points[i[lo:hi]] - other.points[j[lo:hi]]).max(axis=1)
            keep[lo:hi] = gap <= 1.0
        return np.column_stack([i[keep], j[keep]])


def near_scale(x: FloatArray, tolerance: float) -> FloatArray:
    """Per-column unit: ``tolerance`` trusted standard deviations (constant column: 1)."""
    with np.errstate(all="ignore"):
        std = np.nan_to_num(np.nanstd(np.where(np.isnan(x).all(0), 0.0, x), axis=0))
    # tolerance 0 degenerates to (almost) exact matching
    return np.asarray(np.where(std > 0, std, 1.0) * max(tolerance, 1e-12), dtype=np.float64)


def grid_columns(schema: TableSchema, x: FloatArray, scale: FloatArray) -> tuple[int, ...]:
    """The numeric columns whose tolerance cells split the trusted rows most finely."""
    numeric = [j for j, f in enumerate(schema.features) if f.kind is FeatureKind.NUMERIC]
    spread = {j: np.unique(np.floor(np.nan_to_num(x[:, j] / scale[j]))).size for j in numeric}
    return tuple(sorted(numeric, key=lambda j: -spread[j])[:_GRID_DIMS])


def build_near_index(
    schema: TableSchema, x: FloatArray, scale: FloatArray, grid: tuple[int, ...]
) -> NearIndex:
    """Index ``x`` in tolerance units (categories and missing patterns must match exactly)."""
    numeric = tuple(f.kind is FeatureKind.NUMERIC for f in schema.features)
    missing = np.isnan(x)
    points = np.where(missing, _MISSING, x)
    for j, is_num in enumerate(numeric):
        points[:, j] = points[:, j] / scale[j] if is_num else points[:, j] * _CATEGORY_SPREAD
    exact = [j for j, is_num in enumerate(numeric) if not is_num]
    frame = pl.DataFrame(
        {
            **{f"c{j}": np.nan_to_num(x[:, j], nan=-1.0) for j in exact},
            **{f"m{j}": missing[:, j] for j in range(x.shape[1])},
        }
    )
    key = frame.hash_rows(seed=0).to_numpy() if frame.width else np.zeros(x.shape[0], np.uint64)
    for k, j in enumerate(grid):
        # uint64 arithmetic wraps: the key is linear in the cell modulo 2**64
        key = key + np.floor(points[:, j]).astype(np.int64).astype(np.uint64) * _KEY_MIX[k]
    cells = pl.DataFrame({"key": key, "row": np.arange(x.shape[0], dtype=np.int64)})
    return NearIndex(scale, numeric, grid, points, cells)


#: odd 64-bit multipliers of the grid coordinates in the join key (one per grid dimension)
_KEY_MIX = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9))
#: the neighbour cells (offsets in -1, 0, 1 per grid dimension) joined for each grid size
_OFFSETS = {d: list(product((-1, 0, 1), repeat=d)) for d in range(_GRID_DIMS + 1)}


def _shift(offset: tuple[int, ...]) -> np.uint64:
    """The key difference between a cell and its neighbour at ``offset`` (modulo 2**64)."""
    total = sum(o * int(m) for o, m in zip(offset, _KEY_MIX, strict=False))
    return np.uint64(total % 2**64)


def _distinct(pairs: IntArray) -> IntArray:
    """Pairs in row order, each once (a key collision may find one twice)."""
    if pairs.shape[0] == 0:
        return pairs
    width = int(pairs[:, 1].max()) + 1
    codes = np.unique(pairs[:, 0] * width + pairs[:, 1])
    return np.column_stack([codes // width, codes % width]).astype(np.int64)


__all__ = [
    "ALL_FOLDS_MAX_ROWS",
    "FoldModels",
    "NearIndex",
    "OutlierModel",
    "build_near_index",
    "fit_label_model",
    "fit_outlier_model",
    "fold_splits",
    "grid_columns",
    "near_scale",
    "new_label_model",
    "out_of_fold_models",
    "out_of_fold_proba",
    "predict_proba",
]
