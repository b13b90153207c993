"""Performance decay: once labels arrive, compare live metrics with the reference ones.

``compute_metrics`` measures a model on labelled data (at training time on the
validation split: the reference; later on labelled production traffic).
``performance_decay`` compares the two and flags each metric whose drop (for
scores such as accuracy, F1, AUC, R²) or relative rise (for errors such as
MAE, RMSE) passes its threshold.

Example::

    from bastion.model_security.monitoring import Task, compute_metrics, performance_decay
    ref = compute_metrics([0, 1, 1, 0] * 25, [0, 1, 1, 0] * 25, Task.BINARY)
    report = performance_decay(ref, [0, 1, 1, 0] * 25, [1, 1, 0, 0] * 25, Task.BINARY)
    assert report.decayed and "accuracy" in report.decayed_metrics
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

from bastion.model_security.errors import MonitoringInputInvalid

#: metrics where lower is better; their change is judged relative to the reference
_ERRORS = frozenset({"mae", "rmse"})


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


@dataclass(frozen=True)
class PerformanceMetrics:
    """Metric values of one model on one labelled set of ``n`` rows."""

    task: Task
    values: Mapping[str, float]
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def to_dict(self) -> dict[str, object]:
        return {"task": self.task.value, "values": dict(self.values), "n": self.n}


@dataclass(frozen=True)
class DecayThresholds:
    """``max_drop``: absolute drop allowed for scores in [0, 1] (accuracy, F1, AUC, R²);
    ``max_error_increase``: relative rise allowed for errors (MAE, RMSE);
    ``per_metric``: overrides by metric name; ``min_samples``: fewer labels, no verdict."""

    max_drop: float = 0.05
    max_error_increase: float = 0.10
    per_metric: Mapping[str, float] = field(default_factory=dict)
    min_samples: int = 30

    def for_metric(self, name: str) -> float:
        if name in self.per_metric:
            return float(self.per_metric[name])
        return self.max_error_increase if name in _ERRORS else self.max_drop


@dataclass(frozen=True)
class MetricDecay:
    """One metric: reference vs current, the change that was judged, and the verdict."""

    name: str
    reference: float
    current: float
    change: float  # drop for scores, relative increase for errors (positive = worse)
    threshold: float
    higher_is_better: bool
    decayed: bool

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "reference": self.reference, "current": self.current,
                "change": self.change, "threshold": self.threshold,
                "higher_is_better": self.higher_is_better, "decayed": self.decayed}


@dataclass(frozen=True)
class DecayReport:
    task: Task
    metrics: tuple[MetricDecay, ...]
    n: int
    enough_labels: bool
    notes: tuple[str, ...] = ()

    @property
    def decayed_metrics(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.decayed)

    @property
    def decayed(self) -> bool:
        return bool(self.decayed_metrics)

    def render_text(self) -> str:
        head = "PERFORMANCE DECAY" if self.decayed else "performance ok"
        lines = [f"{head}: {self.task.value}, {self.n} labelled rows"]
        for m in self.metrics:
            flag = "DECAYED" if m.decayed else "ok"
            lines.append(f"  {m.name}: {m.reference:.4f} -> {m.current:.4f} "
                         f"(change {m.change:+.4f}, limit {m.threshold:g}) {flag}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {"task": self.task.value, "n": self.n, "decayed": self.decayed,
                "enough_labels": self.enough_labels,
                "decayed_metrics": list(self.decayed_metrics),
                "metrics": [m.to_dict() for m in self.metrics], "notes": list(self.notes)}


def _arrays(y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
            y_score: npt.ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape or t.size == 0:
        raise MonitoringInputInvalid(
            f"y_true and y_pred must be non-empty 1-D arrays of one length "
            f"(got shapes {t.shape} and {p.shape})")
    s = None
    if y_score is not None:
        s = np.asarray(y_score, dtype=np.float64)
        if s.shape != t.shape or not np.all(np.isfinite(s)):
            raise MonitoringInputInvalid("y_score must be finite and as long as y_true")
    return t, p, s


def compute_metrics(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, task: Task, *,
    y_score: npt.ArrayLike | None = None, positive_label: int | str | bool = 1,
) -> PerformanceMetrics:
    """Accuracy/precision/recall/F1(/AUC with ``y_score``) for binary, accuracy/macro-F1/
    balanced accuracy for multiclass, MAE/RMSE/R² for regression."""
    t, p, s = _arrays(y_true, y_pred, y_score)
    values: dict[str, float] = {}
    try:
        if task is Task.REGRESSION:
            tf, pf = t.astype(np.float64), p.astype(np.float64)
            values["mae"] = float(skm.mean_absolute_error(tf, pf))
            values["rmse"] = float(math.sqrt(skm.mean_squared_error(tf, pf)))
            if t.size > 1:
                values["r2"] = float(skm.r2_score(tf, pf))
        elif task is Task.BINARY:
            values["accuracy"] = float(skm.accuracy_score(t, p))
            kw = {"pos_label": positive_label, "zero_division": 0.0}
            values["precision"] = float(skm.precision_score(t, p, **kw))
            values["recall"] = float(skm.recall_score(t, p, **kw))
            values["f1"] = float(skm.f1_score(t, p, **kw))
            if s is not None and np.unique(t).size == 2:
                values["auc"] = float(skm.roc_auc_score(t == positive_label, s))
        else:
            values["accuracy"] = float(skm.accuracy_score(t, p))
            values["f1_macro"] = float(skm.f1_score(t, p, average="macro", zero_division=0.0))
            values["balanced_accuracy"] = float(skm.balanced_accuracy_score(t, p))
    except (ValueError, TypeError) as e:
        raise MonitoringInputInvalid(f"cannot compute {task.value} metrics: {e}") from e
    return PerformanceMetrics(task, values, int(t.size))


def performance_decay(
    reference_metrics: PerformanceMetrics | Mapping[str, float], y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike, task: Task, *, y_score: npt.ArrayLike | None = None,
    positive_label: int | str | bool = 1, thresholds: DecayThresholds | None = None,
) -> DecayReport:
    """Compare metrics on newly labelled data with the reference metrics."""
    th = thresholds or DecayThresholds()
    ref = (reference_metrics.values if isinstance(reference_metrics, PerformanceMetrics)
           else reference_metrics)
    if isinstance(reference_metrics, PerformanceMetrics) and reference_metrics.task is not task:
        raise MonitoringInputInvalid(
            f"reference metrics are for {reference_metrics.task.value}, not {task.value}")
    current = compute_metrics(y_true, y_pred, task, y_score=y_score,
                              positive_label=positive_label)
    enough = current.n >= th.min_samples
    notes = [] if enough else [f"only {current.n} labels (< {th.min_samples}): no verdict"]
    decays = []
    for name, cur in current.values.items():
        if name not in ref:
            notes.append(f"{name}: no reference value, not compared")
            continue
        before = float(ref[name])
        higher = name not in _ERRORS
        change = (before - cur) if higher else (cur - before) / max(abs(before), 1e-12)
        limit = th.for_metric(name)
        decays.append(MetricDecay(name, before, cur, change, limit, higher,
                                  enough and change > limit))
    notes += [f"{name}: in the reference but not measurable now" for name in ref
              if name not in current.values]
    return DecayReport(task, tuple(decays), current.n, enough, tuple(notes))


__all__ = [
    "DecayReport",
    "DecayThresholds",
    "MetricDecay",
    "PerformanceMetrics",
    "Task",
    "compute_metrics",
    "performance_decay",
]
