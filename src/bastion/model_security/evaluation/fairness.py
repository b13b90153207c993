"""Group fairness per sensitive attribute, computed with fairlearn.

For each declared sensitive attribute the rows are grouped (numeric attributes
with many distinct values are binned into quantile bins, and the bin edges are
reported) and fairlearn's ``MetricFrame`` gives per-group count, selection rate,
accuracy, true- and false-positive rates.  Binary classifiers also get the
demographic-parity difference / ratio and the equalized-odds difference;
regressors get per-group MAE and the largest MAE gap.

Example::

    report = attribute_fairness(
        "age", ages, y_true, y_pred, classes=(0, 1), task=Task.CLASSIFICATION
    )
    report.demographic_parity_difference
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bastion.model_security.evaluation._canonical import safe_float, safe_scalar
from bastion.model_security.evaluation.metrics import Task, positive_label

#: a numeric attribute with more distinct values than this is binned
MAX_GROUPS_UNBINNED = 10
#: number of quantile bins for a binned numeric attribute
QUANTILE_BINS = 4
MISSING_GROUP = "<missing>"


@dataclass(frozen=True)
class Binning:
    """How a numeric sensitive attribute was cut into groups."""

    method: str  # "quantile"
    edges: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "edges": [safe_float(e) for e in self.edges]}


@dataclass(frozen=True)
class GroupMetrics:
    """Metrics of one group of one sensitive attribute."""

    group: str
    count: int
    selection_rate: float | None = None
    accuracy: float | None = None
    true_positive_rate: float | None = None
    false_positive_rate: float | None = None
    mae: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "count": self.count,
            "selection_rate": safe_float(self.selection_rate),
            "accuracy": safe_float(self.accuracy),
            "true_positive_rate": safe_float(self.true_positive_rate),
            "false_positive_rate": safe_float(self.false_positive_rate),
            "mae": safe_float(self.mae),
        }


@dataclass(frozen=True)
class FairnessReport:
    """Fairness of the predictions with respect to one sensitive attribute."""

    attribute: str
    binning: Binning | None
    groups: tuple[GroupMetrics, ...]
    positive_label: object | None
    demographic_parity_difference: float | None
    demographic_parity_ratio: float | None
    equalized_odds_difference: float | None
    mae_gap: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "attribute": self.attribute,
            "binning": self.binning.to_dict() if self.binning else None,
            "groups": [g.to_dict() for g in self.groups],
            "positive_label": safe_scalar(self.positive_label),
            "demographic_parity_difference": safe_float(self.demographic_parity_difference),
            "demographic_parity_ratio": safe_float(self.demographic_parity_ratio),
            "equalized_odds_difference": safe_float(self.equalized_odds_difference),
            "mae_gap": safe_float(self.mae_gap),
            "note": self.note,
        }


def group_labels(values: NDArray[np.generic]) -> tuple[NDArray[np.str_], Binning | None]:
    """String group labels for a sensitive column, binning numeric columns with many values."""
    numeric = values.dtype.kind in "iuf"
    if numeric:
        as_float = values.astype(float)
        present = as_float[~np.isnan(as_float)]
        if len(np.unique(present)) > MAX_GROUPS_UNBINNED:
            return _quantile_bins(as_float, present)
        labels = np.array([MISSING_GROUP if np.isnan(v) else _number(v) for v in as_float])
        return labels.astype(str), None
    labels = np.array([MISSING_GROUP if v is None or v != v else str(v) for v in values])
    return labels.astype(str), None


def attribute_fairness(
    attribute: str,
    values: NDArray[np.generic],
    y_true: NDArray[np.generic],
    y_pred: NDArray[np.generic],
    *,
    classes: Sequence[object],
    task: Task,
) -> FairnessReport:
    """Fairness report of ``y_pred`` against ``y_true`` for one sensitive column."""
    groups, binning = group_labels(values)
    if task is Task.REGRESSION:
        return _regression_fairness(attribute, groups, binning, y_true, y_pred)
    pos = positive_label(list(classes))
    if pos is None:
        return _multiclass_fairness(attribute, groups, binning, y_true, y_pred)
    return _binary_fairness(attribute, groups, binning, y_true == pos, y_pred == pos, pos)


def _binary_fairness(
    attribute: str,
    groups: NDArray[np.str_],
    binning: Binning | None,
    truth: NDArray[np.bool_],
    pred: NDArray[np.bool_],
    pos: object,
) -> FairnessReport:
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score

    frame_metrics = {
        "count": flm.count,
        "selection_rate": flm.selection_rate,
        "accuracy": accuracy_score,
        "true_positive_rate": flm.true_positive_rate,
        "false_positive_rate": flm.false_positive_rate,
    }
    with warnings.catch_warnings():
        # a group without positives has an undefined TPR: fairlearn warns, we report None
        warnings.simplefilter("ignore")
        frame = flm.MetricFrame(
            metrics=frame_metrics, y_true=truth, y_pred=pred, sensitive_features=groups
        )
        dpd = flm.demographic_parity_difference(truth, pred, sensitive_features=groups)
        dpr = flm.demographic_parity_ratio(truth, pred, sensitive_features=groups)
        eod = flm.equalized_odds_difference(truth, pred, sensitive_features=groups)
    by_group = frame.by_group
    rows = tuple(
        GroupMetrics(
            group=str(name),
            count=int(by_group.loc[name, "count"]),
            selection_rate=float(by_group.loc[name, "selection_rate"]),
            accuracy=float(by_group.loc[name, "accuracy"]),
            true_positive_rate=float(by_group.loc[name, "true_positive_rate"]),
            false_positive_rate=float(by_group.loc[name, "false_positive_rate"]),
        )
        for name in sorted(by_group.index, key=str)
    )
    return FairnessReport(attribute, binning, rows, pos, float(dpd), float(dpr), float(eod), None)


def _multiclass_fairness(
    attribute: str,
    groups: NDArray[np.str_],
    binning: Binning | None,
    y_true: NDArray[np.generic],
    y_pred: NDArray[np.generic],
) -> FairnessReport:
    rows = tuple(
        GroupMetrics(group=g, count=int(m.sum()), accuracy=float(np.mean(y_true[m] == y_pred[m])))
        for g in sorted(set(groups.tolist()))
        for m in [groups == g]
    )
    note = "more than two classes: demographic parity and equalized odds need a binary outcome"
    return FairnessReport(attribute, binning, rows, None, None, None, None, None, note)


def _regression_fairness(
    attribute: str,
    groups: NDArray[np.str_],
    binning: Binning | None,
    y_true: NDArray[np.generic],
    y_pred: NDArray[np.generic],
) -> FairnessReport:
    errors = np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))
    rows = tuple(
        GroupMetrics(group=g, count=int(m.sum()), mae=float(errors[m].mean()))
        for g in sorted(set(groups.tolist()))
        for m in [groups == g]
    )
    maes = [r.mae for r in rows if r.mae is not None]
    gap = max(maes) - min(maes) if maes else None
    return FairnessReport(attribute, binning, rows, None, None, None, None, gap)


def _quantile_bins(
    as_float: NDArray[np.floating], present: NDArray[np.floating]
) -> tuple[NDArray[np.str_], Binning]:
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, QUANTILE_BINS + 1)))
    # interior edges decide the bin; a value equal to an edge goes to the upper bin
    index = np.searchsorted(edges[1:-1], as_float, side="right")
    names = [
        f"[{_number(edges[i])}, {_number(edges[i + 1])}{']' if i == len(edges) - 2 else ')'}"
        for i in range(len(edges) - 1)
    ]
    labels = np.array(
        [
            MISSING_GROUP if np.isnan(v) else names[int(i)]
            for v, i in zip(as_float, index, strict=True)
        ]
    )
    return labels.astype(str), Binning("quantile", tuple(float(e) for e in edges))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


__all__ = [
    "Binning",
    "FairnessReport",
    "GroupMetrics",
    "attribute_fairness",
    "group_labels",
]
