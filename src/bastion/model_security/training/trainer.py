"""Train a scikit-learn pipeline from a :class:`TrainingSpec` and a polars frame.

The pipeline is ``Pipeline([("features", ColumnTransformer(...)), ("model", estimator)])``:
numeric columns get a median imputer (and a ``StandardScaler`` for linear
models), categorical columns a ``OneHotEncoder(handle_unknown="ignore")`` (or an
``OrdinalEncoder``).  It holds scikit-learn objects only, so the saved joblib
file passes the serialization scanner.  Everything is seeded by ``spec.seed``:
the same spec and frame give the same split, model and metrics.

Example::

    spec = parse_spec(Path("train.yaml").read_text())
    trained = train(spec, frame)
    files = save_model(trained.pipeline, Path("out"))
    trained.to_dict()["holdout"]["accuracy"]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from bastion.model_security.errors import TrainingFailed, TrainingSpecInvalid
from bastion.model_security.evaluation._canonical import safe_scalar
from bastion.model_security.evaluation.metrics import (
    Task,
    TaskMetrics,
    classification_metrics,
    regression_metrics,
)
from bastion.model_security.training.estimators import NEEDS_SCALING, build_estimator
from bastion.model_security.training.spec import CategoricalEncoding, TrainingSpec

MODEL_FILENAME = "model.joblib"


class FeatureKind(enum.StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    kind: FeatureKind
    dtype: str  # the polars dtype it was trained on

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind.value, "dtype": self.dtype}


@dataclass(frozen=True)
class TrainedModel:
    """A fitted pipeline and what is needed to register and reproduce it."""

    pipeline: Any = field(compare=False, repr=False)  # sklearn Pipeline (untyped library)
    spec: TrainingSpec
    spec_digest: str
    features: tuple[FeatureInfo, ...]
    params: dict[str, object]  # the estimator's full, JSON-safe parameters
    classes: tuple[object, ...]  # () for regression
    n_train: int
    n_test: int
    holdout: TaskMetrics
    test_rows: tuple[int, ...] = field(compare=False, repr=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec.to_dict(),
            "spec_digest": self.spec_digest,
            "estimator": self.spec.estimator.value,
            "task": self.spec.task.value,
            "features": [f.to_dict() for f in self.features],
            "params": self.params,
            "classes": list(self.classes),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "holdout": self.holdout.to_dict(),
        }


def resolve_features(spec: TrainingSpec, frame: pl.DataFrame) -> tuple[FeatureInfo, ...]:
    """The model's input columns with their kinds; raises ``TrainingSpecInvalid`` on a mismatch."""
    columns = frame.columns
    declared = [spec.label, *spec.sensitive, *spec.categorical, *(spec.features or ())]
    missing = [c for c in dict.fromkeys(declared) if c not in columns]
    if missing:
        what = "label column" if missing[0] == spec.label else "columns"
        raise TrainingSpecInvalid(
            f"{what} not in the data: {', '.join(repr(m) for m in missing)}",
            hint=f"the data has: {', '.join(columns)}",
        )
    skip = {spec.label, *spec.exclude, *spec.sensitive}
    names = (
        list(spec.features) if spec.features is not None else [c for c in columns if c not in skip]
    )
    if not names:
        raise TrainingSpecInvalid(
            "no feature columns left after excluding label, exclude and sensitive"
        )
    return tuple(_feature(name, frame.schema[name], spec) for name in names)


def split_rows(
    spec: TrainingSpec, frame: pl.DataFrame
) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """Seeded train / test row indices (stratified by label for classification when possible)."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(frame))
    labels = frame.get_column(spec.label).to_numpy()
    stratify = None
    if spec.task is Task.CLASSIFICATION:
        _, counts = np.unique(labels.astype(str), return_counts=True)
        stratify = labels if counts.min() >= 2 else None
    try:
        train_idx, test_idx = train_test_split(
            rows, test_size=spec.test_fraction, random_state=spec.seed, stratify=stratify
        )
    except ValueError as e:
        raise TrainingFailed(f"cannot split {len(frame)} rows: {e}", hint="use more rows") from e
    return np.sort(train_idx), np.sort(test_idx)


def build_pipeline(spec: TrainingSpec, features: tuple[FeatureInfo, ...]) -> Any:
    """The unfitted pipeline for ``spec`` (scikit-learn objects only)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = [f.name for f in features if f.kind is not FeatureKind.CATEGORICAL]
    categorical = [f.name for f in features if f.kind is FeatureKind.CATEGORICAL]
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if spec.estimator in NEEDS_SCALING:
        numeric_steps.append(("scale", StandardScaler()))
    encoder: Any = (
        OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if spec.categorical_encoding is CategoricalEncoding.ONEHOT
        else OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
        )
    )
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("num", Pipeline(numeric_steps), numeric))
    if categorical:
        transformers.append(("cat", encoder, categorical))
    preprocess = ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )
    estimator = build_estimator(spec.estimator, spec.task, spec.params, seed=spec.seed)
    return Pipeline([("features", preprocess), ("model", estimator)])


def model_input(frame: pl.DataFrame, features: tuple[FeatureInfo, ...]) -> Any:
    """The pandas frame a trained pipeline expects (categorical numeric codes as strings)."""
    casts = [
        pl.col(f.name).cast(pl.String) if f.kind is FeatureKind.CATEGORICAL else pl.col(f.name)
        for f in features
    ]
    return frame.select(casts).to_pandas()


def train(spec: TrainingSpec, frame: pl.DataFrame) -> TrainedModel:
    """Fit the pipeline of ``spec`` on a seeded split of ``frame`` and score the holdout."""
    features = resolve_features(spec, frame)
    labels = frame.get_column(spec.label)
    if labels.null_count():
        raise TrainingFailed(
            f"label column {spec.label!r} has {labels.null_count()} missing values",
            hint="drop or fill rows without a label before training",
        )
    if spec.task is Task.CLASSIFICATION and labels.n_unique() < 2:
        raise TrainingFailed(f"label column {spec.label!r} has a single class; nothing to learn")
    train_idx, test_idx = split_rows(spec, frame)
    x = model_input(frame, features)
    y = labels.to_numpy()
    pipeline = build_pipeline(spec, features)
    try:
        pipeline.fit(x.iloc[train_idx], y[train_idx])
    except ValueError as e:
        raise TrainingFailed(f"fitting {spec.estimator.value} failed: {e}") from e
    holdout = _holdout_metrics(spec, pipeline, x.iloc[test_idx], y[test_idx])
    estimator = pipeline.named_steps["model"]
    classes = tuple(safe_scalar(c) for c in getattr(estimator, "classes_", ()))
    return TrainedModel(
        pipeline=pipeline,
        spec=spec,
        spec_digest=spec.digest(),
        features=features,
        params={k: safe_scalar(v) for k, v in sorted(estimator.get_params().items())},
        classes=classes,
        n_train=len(train_idx),
        n_test=len(test_idx),
        holdout=holdout,
        test_rows=tuple(int(i) for i in test_idx),
    )


def save_model(pipeline: Any, directory: Path) -> list[Path]:
    """Write the fitted pipeline as ``<directory>/model.joblib``; returns the files written."""
    import joblib
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline):
        raise TrainingFailed(
            f"save_model expects a scikit-learn Pipeline, got {type(pipeline).__name__}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILENAME
    joblib.dump(pipeline, path)
    return [path]


def _holdout_metrics(spec: TrainingSpec, pipeline: Any, x: Any, y: NDArray[Any]) -> TaskMetrics:
    pred = pipeline.predict(x)
    if spec.task is Task.REGRESSION:
        return regression_metrics(y, pred)
    proba = pipeline.predict_proba(x) if hasattr(pipeline, "predict_proba") else None
    return classification_metrics(y, pred, classes=list(pipeline.classes_), proba=proba)


def _feature(name: str, dtype: pl.DataType, spec: TrainingSpec) -> FeatureInfo:
    if (
        name in spec.categorical
        or dtype in (pl.String, pl.Boolean)
        or isinstance(dtype, pl.Categorical | pl.Enum)
    ):
        return FeatureInfo(name, FeatureKind.CATEGORICAL, str(dtype))
    if dtype.is_integer():
        return FeatureInfo(name, FeatureKind.INTEGER, str(dtype))
    if dtype.is_float():
        return FeatureInfo(name, FeatureKind.FLOAT, str(dtype))
    raise TrainingSpecInvalid(
        f"column {name!r} has type {dtype}, which a model cannot take as a feature",
        hint=f"add {name!r} to 'exclude', or convert it to a number or a string first",
    )


__all__ = [
    "MODEL_FILENAME",
    "FeatureInfo",
    "FeatureKind",
    "TrainedModel",
    "build_pipeline",
    "model_input",
    "resolve_features",
    "save_model",
    "split_rows",
    "train",
]
