"""Task metrics: what a model gets right on a labelled frame.

Classification: accuracy, balanced accuracy, precision, recall, F1 (for the
positive class when binary, macro-averaged otherwise), ROC-AUC when the model
gives probabilities, and the confusion matrix.  Regression: MAE, RMSE, R².

Example::

    m = classification_metrics(y_true, y_pred, proba=p, classes=(0, 1))
    m.to_dict()["accuracy"]
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn import metrics as skm

from bastion.model_security.evaluation._canonical import safe_float, safe_scalar


class Task(enum.StrEnum):
    """What the model predicts."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


def positive_label(classes: Sequence[object]) -> object | None:
    """The class treated as "positive" (approved, flagged) in a binary task.

    ``1`` / ``True`` when the classes are ``{0, 1}`` / ``{False, True}``,
    otherwise the last class in sorted order; ``None`` when not binary.
    """
    if len(classes) != 2:
        return None
    if set(classes) == {0, 1}:  # also {False, True}
        return next(c for c in classes if c == 1)
    return sorted(classes, key=str)[-1]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Metrics of a classifier on one labelled sample."""

    n: int
    classes: tuple[object, ...]
    positive_label: object | None
    averaging: str  # "binary" (for positive_label) or "macro"
    accuracy: float | None
    balanced_accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    confusion_matrix: tuple[
        tuple[int, ...], ...
    ]  # rows: true class, cols: predicted, in `classes` order

    def to_dict(self) -> dict[str, object]:
        return {
            "task": Task.CLASSIFICATION.value,
            "n": self.n,
            "classes": [safe_scalar(c) for c in self.classes],
            "positive_label": safe_scalar(self.positive_label),
            "averaging": self.averaging,
            "accuracy": safe_float(self.accuracy),
            "balanced_accuracy": safe_float(self.balanced_accuracy),
            "precision": safe_float(self.precision),
            "recall": safe_float(self.recall),
            "f1": safe_float(self.f1),
            "roc_auc": safe_float(self.roc_auc),
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
        }


@dataclass(frozen=True)
class RegressionMetrics:
    """Metrics of a regressor on one labelled sample."""

    n: int
    mae: float | None
    rmse: float | None
    r2: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "task": Task.REGRESSION.value,
            "n": self.n,
            "mae": safe_float(self.mae),
            "rmse": safe_float(self.rmse),
            "r2": safe_float(self.r2),
        }


TaskMetrics = ClassificationMetrics | RegressionMetrics


def classification_metrics(
    y_true: NDArray[np.generic],
    y_pred: NDArray[np.generic],
    *,
    classes: Sequence[object],
    proba: NDArray[np.floating] | None = None,
) -> ClassificationMetrics:
    """Classification metrics; ``proba`` columns follow ``classes`` order."""
    labels = list(classes)
    pos = positive_label(labels)
    binary = pos is not None
    average = "binary" if binary else "macro"
    prf_kwargs: dict[str, object] = {"average": average, "zero_division": 0}
    if binary:
        prf_kwargs["pos_label"] = pos
    else:
        prf_kwargs["labels"] = labels
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y_true, y_pred, **prf_kwargs)
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    return ClassificationMetrics(
        n=len(y_true),
        classes=tuple(safe_scalar(c) for c in labels),
        positive_label=safe_scalar(pos),
        averaging=average,
        accuracy=float(skm.accuracy_score(y_true, y_pred)),
        balanced_accuracy=_balanced_accuracy(y_true, y_pred),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        roc_auc=_roc_auc(y_true, proba, labels, pos),
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in matrix),
    )


def regression_metrics(
    y_true: NDArray[np.floating], y_pred: NDArray[np.floating]
) -> RegressionMetrics:
    """MAE, RMSE and R² (R² is ``None`` for fewer than two rows)."""
    truth = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    return RegressionMetrics(
        n=len(truth),
        mae=float(skm.mean_absolute_error(truth, pred)),
        rmse=float(np.sqrt(skm.mean_squared_error(truth, pred))),
        r2=float(skm.r2_score(truth, pred)) if len(truth) >= 2 else None,
    )


def _balanced_accuracy(y_true: NDArray[np.generic], y_pred: NDArray[np.generic]) -> float:
    # sklearn warns when a predicted class is absent from y_true; the value is still defined
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(skm.balanced_accuracy_score(y_true, y_pred))


def _roc_auc(
    y_true: NDArray[np.generic],
    proba: NDArray[np.floating] | None,
    labels: list[object],
    pos: object | None,
) -> float | None:
    """ROC-AUC, or ``None`` without probabilities or when a class is absent from ``y_true``."""
    if proba is None or len(np.unique(y_true)) != len(labels):
        return None
    if pos is not None:
        column = labels.index(pos)
        return float(skm.roc_auc_score(np.asarray(y_true) == pos, proba[:, column]))
    return float(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
    )


__all__ = [
    "ClassificationMetrics",
    "RegressionMetrics",
    "Task",
    "TaskMetrics",
    "classification_metrics",
    "positive_label",
    "regression_metrics",
]
