"""Isolation Forest scores exactly as scikit-learn computes them, the same on any thread count.

scikit-learn's ``score_samples`` walks the whole batch through one tree at a
time and, when threaded, adds each tree's depths into one shared array under a
lock, in the order the threads happen to finish: the last bits of a score (and
so, for a row right at the threshold, the outlier count) depended on thread
timing.  Here the rows are cut into blocks; each block goes through every tree
in the forest's order (``tree.apply`` releases the GIL, so blocks run on
threads), and a tree's per-node depth (path length + average path length of the
node's training rows - 1) is computed once per node instead of once per row.
A row's sum is the very sum scikit-learn computes sequentially, bit for bit,
whatever the number of threads (a unit test holds it to that).  The CPU work is
the same as scikit-learn's (measured: about 45 ns per row and tree, almost all
in ``tree.apply``): this module buys determinism, not speed.

Example::

    scores = score_samples(forest, x, threads=2)   # == forest.score_samples(x)
    scores = forest_scores(outlier_model, batch_matrix)  # imputation + threads chosen
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from bastion.data_security.poisoning._models import OutlierModel, _threads
from bastion.data_security.poisoning._schema import FloatArray

#: rows per block: a block's float32 rows and depths stay in a core's cache
_BLOCK_ROWS = 1 << 14


def _node_depths(forest: IsolationForest) -> list[FloatArray] | None:
    """Per tree, the depth a row landing in each node adds; None when sklearn lacks them."""
    paths = getattr(forest, "_decision_path_lengths", None)
    averages = getattr(forest, "_average_path_length_per_tree", None)
    if paths is None or averages is None or forest.max_features != 1.0:
        return None
    # the same expression, in the same order, as sklearn's per-row sum
    return [np.asarray(p + a - 1.0, dtype=np.float64) for p, a in zip(paths, averages, strict=True)]


def score_samples(forest: IsolationForest, x: FloatArray, threads: int = 1) -> FloatArray:
    """``forest.score_samples(x)`` (higher is more normal), blocks of rows on ``threads``."""
    nodes = _node_depths(forest)
    if nodes is None:  # an sklearn without the precomputed depths: its own scoring
        return np.asarray(forest.score_samples(x), dtype=np.float64)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    depths = np.zeros(x32.shape[0], dtype=np.float64)
    trees = list(zip(forest.estimators_, nodes, strict=True))

    def block(lo: int) -> None:
        rows, acc = x32[lo : lo + _BLOCK_ROWS], depths[lo : lo + _BLOCK_ROWS]
        for tree, depth in trees:
            acc += depth[tree.apply(rows, check_input=False)]

    starts = range(0, x32.shape[0], _BLOCK_ROWS)
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(block, starts))
    else:
        for lo in starts:
            block(lo)
    # sklearn's own normalisation: trees x the average path length of its sample size
    size = getattr(forest, "_max_samples", forest.max_samples_)
    denominator = len(forest.estimators_) * _average_path_length([size])
    scores = 2 ** (
        -np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
    )
    return np.asarray(-scores, dtype=np.float64)


def forest_scores(model: OutlierModel, x: FloatArray) -> FloatArray:
    """``model.scores(x)`` computed as above: exact, and threaded on large inputs."""
    return score_samples(model.forest, model.prepare(x), _threads(x.shape[0]))


__all__ = ["forest_scores", "score_samples"]
