"""Numeric arrays that ART attacks operate on, and the way back to raw feature values.

Two representations of an :class:`~._space.AttackSpace` sample:

* **encoded** — when the model is a scikit-learn ``Pipeline`` whose
  preprocessing maps each numeric feature to one output column by an affine
  map (imputer, scaler, passthrough; checked numerically, not assumed), the
  array is the preprocessed matrix and the attacked estimator is the last
  step.  White-box attacks (FGSM, PGD, DecisionTreeAttack) need this, and
  black-box queries are fast because no frame is rebuilt per query.
* **generic** — any other model: the array is the numeric features in std
  units plus one integer code column per categorical (masked: never changed);
  each query rebuilds a frame and calls the model's ``predict_proba``.

Either way the mask is zero on everything except mutable numeric features,
and :meth:`ModelArray.decode` turns an adversarial array into raw values that
``AttackSpace.project`` then checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bastion.model_security.evaluation._space import AttackSpace, FloatArray


@dataclass(frozen=True)
class ModelArray:
    """An attackable array view of the sample and the model."""

    kind: str  # "encoded" | "generic"
    array: FloatArray  # (n, E) the sample in this representation
    mask: FloatArray  # (E,) 1 where an attack may act
    step_budget: FloatArray  # (E,) per-column budget in array units (0 where masked)
    clip_min: FloatArray  # (E,)
    clip_max: FloatArray  # (E,)
    predict_proba: Callable[[NDArray[np.floating]], FloatArray]
    decode: Callable[[NDArray[np.floating]], FloatArray]  # (n, E) -> raw numeric (n, d)
    estimator: object  # the object a white-box attack wraps (last pipeline step) or None


def encoded_array(model: object, space: AttackSpace) -> ModelArray | str:
    """The encoded representation, or the reason it does not apply."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2:
        return "model is not a scikit-learn Pipeline with a preprocessing step"
    preprocess, estimator = model[:-1], steps[-1][1]  # type: ignore[index]
    try:
        names = [str(n) for n in preprocess.get_feature_names_out()]
        enc = [_dense(preprocess.transform(space.frame(space.x + k))) for k in (0.0, 1.0, 2.0)]
    except Exception as e:
        return f"preprocessing output cannot be mapped back to features ({type(e).__name__})"
    missing = [n for n in space.numeric if n not in names]
    if missing:
        return f"numeric features not found in the preprocessed columns: {', '.join(missing)}"
    cols = np.array([names.index(n) for n in space.numeric], dtype=int)
    slope = enc[1][:, cols] - enc[0][:, cols]
    others = np.setdiff1d(np.arange(enc[0].shape[1]), cols)
    affine = (
        np.allclose(enc[2][:, cols] - enc[1][:, cols], slope, rtol=1e-6, atol=1e-9)
        and np.allclose(slope, slope[:1], rtol=1e-6, atol=1e-9)
        and bool(np.all(np.abs(slope[0]) > 1e-12))
        and np.array_equal(enc[0][:, others], enc[1][:, others])
    )
    if not affine:
        return "preprocessing of the numeric features is not a per-feature affine map"
    a = slope[0]
    b = enc[0][0, cols] - a * space.x[0]
    return _encoded(space, enc[0], cols, a, b, estimator)


def _encoded(
    space: AttackSpace,
    array: FloatArray,
    cols: NDArray[np.int_],
    a: FloatArray,
    b: FloatArray,
    estimator: object,
) -> ModelArray:
    width = array.shape[1]
    mask = np.zeros(width)
    mask[cols] = space.mutable.astype(float)
    budget = np.zeros(width)
    budget[cols] = space.budget * np.abs(a)
    ends = np.stack([a * space.low + b, a * space.high + b])
    clip_min = array.min(axis=0) - 1.0
    clip_max = array.max(axis=0) + 1.0
    clip_min[cols] = np.maximum(np.nan_to_num(ends.min(axis=0), nan=-np.inf), clip_min[cols] - 3.0)
    clip_max[cols] = np.minimum(np.nan_to_num(ends.max(axis=0), nan=np.inf), clip_max[cols] + 3.0)
    clip_max = np.maximum(clip_max, clip_min + 1e-6)
    proba = estimator.predict_proba  # type: ignore[attr-defined]

    def predict(arr: NDArray[np.floating]) -> FloatArray:
        return np.asarray(proba(np.asarray(arr, dtype=np.float64)), dtype=np.float64)

    def decode(arr: NDArray[np.floating]) -> FloatArray:
        return (np.asarray(arr, dtype=np.float64)[:, cols] - b) / a

    return ModelArray(
        "encoded", array, mask, budget, clip_min, clip_max, predict, decode, estimator
    )


def generic_array(model: object, space: AttackSpace) -> ModelArray:
    """Numeric features in std units plus masked categorical codes; queries go through the model."""
    d = len(space.numeric)
    scale = np.where(space.std > 0, space.std, 1.0)
    levels = [pd.unique(space.cats[c]).tolist() for c in space.categorical]
    codes = (
        np.column_stack(
            [
                [lv.index(v) for v in space.cats[c].tolist()]
                for c, lv in zip(space.categorical, levels, strict=True)
            ]
        )
        if levels
        else np.zeros((len(space.x), 0))
    )
    array = np.hstack([(space.x - space.mean) / scale, codes.astype(np.float64)])
    mask = np.concatenate([space.mutable.astype(float), np.zeros(len(levels))])
    budget = np.concatenate([space.budget / scale, np.zeros(len(levels))])
    clip_min = array.min(axis=0) - 3.0
    clip_max = np.maximum(array.max(axis=0) + 3.0, clip_min + 1.0)
    proba = model.predict_proba  # type: ignore[attr-defined]

    def decode(arr: NDArray[np.floating]) -> FloatArray:
        return np.asarray(arr, dtype=np.float64)[:, :d] * scale + space.mean

    def predict(arr: NDArray[np.floating]) -> FloatArray:
        raw = np.asarray(arr, dtype=np.float64)
        idx = np.rint(raw[:, d:]).astype(int)
        cats = pd.DataFrame(
            {
                c: [lv[i] for i in idx[:, k]]
                for k, (c, lv) in enumerate(zip(space.categorical, levels, strict=True))
            }
        )
        return np.asarray(proba(space.frame(decode(raw), cats)), dtype=np.float64)

    return ModelArray("generic", array, mask, budget, clip_min, clip_max, predict, decode, None)


def _dense(matrix: object) -> FloatArray:
    to_dense = getattr(matrix, "toarray", None)
    return np.asarray(to_dense() if to_dense else matrix, dtype=np.float64)


__all__ = ["ModelArray", "encoded_array", "generic_array"]
