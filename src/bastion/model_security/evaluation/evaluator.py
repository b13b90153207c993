"""``evaluate``: task metrics, fairness and adversarial robustness of one model on one frame.

The result is a frozen :class:`EvaluationResult` whose ``to_dict()`` is JSON-safe
and canonical-friendly (floats rounded, NaN / inf as ``None``, sorted names),
ready to be signed as an in-toto statement bound to the model and dataset
digests by the caller.

Example::

    result = evaluate(
        trained.pipeline, holdout, label="default", task=Task.CLASSIFICATION,
        sensitive=["gender", "age"], features=trained.feature_names,
        categorical=trained.spec.categorical,
        constraints=TabularConstraints.from_frame(
            holdout, trained.feature_names, immutable={"age"}
        ),
        suite=RobustnessSuite(eps=0.5, sample_size=200),
    )
    json.dumps(result.to_dict())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from bastion.model_security.errors import EvaluationError, EvaluationInputInvalid
from bastion.model_security.evaluation.constraints import (
    AttackKind,
    RobustnessSuite,
    TabularConstraints,
)
from bastion.model_security.evaluation.fairness import FairnessReport, attribute_fairness
from bastion.model_security.evaluation.metrics import (
    Task,
    TaskMetrics,
    classification_metrics,
    regression_metrics,
)
from bastion.model_security.evaluation.robustness import RobustnessReport, run_robustness

#: version of the ``to_dict()`` layout, bumped on any change a verifier must know about
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EvaluationProgress:
    """One progress event: ``stage`` is metrics, fairness, or robustness:<attack>."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[EvaluationProgress], None]


@dataclass(frozen=True)
class EvaluationResult:
    """Everything an evaluation measured."""

    task: Task
    label: str
    features: tuple[str, ...]
    n_rows: int
    metrics: TaskMetrics
    fairness: tuple[FairnessReport, ...]
    robustness: RobustnessReport | None
    robustness_note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task.value,
            "label": self.label,
            "features": list(self.features),
            "n_rows": self.n_rows,
            "metrics": self.metrics.to_dict(),
            "fairness": [f.to_dict() for f in self.fairness],
            "robustness": self.robustness.to_dict() if self.robustness else None,
            "robustness_note": self.robustness_note,
        }


def evaluate(
    model: object,
    frame: pl.DataFrame,
    *,
    label: str,
    task: Task,
    sensitive: Sequence[str],
    constraints: TabularConstraints,
    suite: RobustnessSuite,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Evaluate a fitted model that takes a pandas frame of ``features``.

    ``features`` defaults to the model's ``feature_names_in_``; ``categorical``
    names numeric columns the model was trained on as categories (a spec's
    ``categorical``): they are passed as strings and never attacked.
    """
    report = progress or (lambda _event: None)
    names = _features(model, frame, label, features)
    _check_columns(frame, label, sensitive, names)
    inputs = frame.select(
        [pl.col(c).cast(pl.String) if c in categorical else pl.col(c) for c in names]
    )
    y = frame.get_column(label).to_numpy()
    report(EvaluationProgress("metrics", 0, 3))
    try:
        pred = np.asarray(model.predict(inputs.to_pandas()))  # type: ignore[attr-defined]
        metrics, classes = _metrics(model, inputs, y, pred, task)
    except EvaluationError:
        raise
    except Exception as e:  # the model itself failed on this frame
        raise EvaluationError(
            f"the model failed to predict on the frame: {type(e).__name__}: {e}",
            hint="check that the frame has the columns and types the model was trained on",
        ) from e
    report(EvaluationProgress("fairness", 1, 3))
    fairness = tuple(
        attribute_fairness(s, frame.get_column(s).to_numpy(), y, pred, classes=classes, task=task)
        for s in sensitive
    )
    robustness, note = None, None
    if task is Task.REGRESSION:
        note = "adversarial attacks of the suite target classifiers; skipped for regression"
    elif not hasattr(model, "predict_proba"):
        note = "the model has no predict_proba; the attacks need class scores"
    else:

        def on_attack(kind: AttackKind, i: int, n: int) -> None:
            report(EvaluationProgress(f"robustness:{kind.value}", 2, 3))

        robustness = run_robustness(
            model,
            inputs,
            y,
            classes=classes,
            features=names,
            constraints=constraints,
            suite=suite,
            on_attack=on_attack,
        )
    report(EvaluationProgress("done", 3, 3))
    return EvaluationResult(task, label, names, len(frame), metrics, fairness, robustness, note)


def _metrics(
    model: object, inputs: pl.DataFrame, y: np.ndarray, pred: np.ndarray, task: Task
) -> tuple[TaskMetrics, list[object]]:
    if task is Task.REGRESSION:
        return regression_metrics(y, pred), []
    known = getattr(model, "classes_", None)
    classes = (
        list(known) if known is not None else sorted(set(y.tolist()) | set(pred.tolist()), key=str)
    )
    unknown = set(y.tolist()) - set(classes)
    if unknown:
        raise EvaluationInputInvalid(
            f"label values the model never saw: {', '.join(sorted(map(str, unknown)))}",
            hint="evaluate on data with the same label coding as the training data",
        )
    proba = None
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(inputs.to_pandas()))
    metrics = classification_metrics(y, pred, classes=classes, proba=proba)
    return metrics, classes


def _features(
    model: object, frame: pl.DataFrame, label: str, features: Sequence[str] | None
) -> tuple[str, ...]:
    if features is not None:
        return tuple(features)
    known = getattr(model, "feature_names_in_", None)
    if known is None:
        raise EvaluationInputInvalid(
            "cannot tell which columns the model takes",
            hint="pass features=... (for a trained spec: trained.feature_names)",
        )
    return tuple(str(n) for n in known)


def _check_columns(
    frame: pl.DataFrame, label: str, sensitive: Sequence[str], names: Sequence[str]
) -> None:
    if frame.is_empty():
        raise EvaluationInputInvalid("the evaluation frame has no rows")
    missing = [c for c in dict.fromkeys([label, *sensitive, *names]) if c not in frame.columns]
    if missing:
        raise EvaluationInputInvalid(
            f"columns not in the evaluation frame: {', '.join(repr(m) for m in missing)}",
            hint=f"the frame has: {', '.join(frame.columns)}",
        )
    nulls = frame.get_column(label).null_count()
    if nulls:
        raise EvaluationInputInvalid(
            f"label column {label!r} has {nulls} missing values",
            hint="evaluate on labelled rows only",
        )


__all__ = [
    "SCHEMA_VERSION",
    "EvaluationProgress",
    "EvaluationResult",
    "ProgressCallback",
    "evaluate",
]
