"""The estimator allow-list and its hyper-parameter rules.

Only these scikit-learn estimators can be trained from a spec, and only the
listed hyper-parameters, each checked against its type and range, so a spec
cannot smuggle in arbitrary constructor arguments (``n_jobs=-1`` on a shared
box, a custom ``loss`` object, ...).

Example::

    check_params(EstimatorKind.RANDOM_FOREST, Task.CLASSIFICATION, {"n_estimators": 200})
    build_estimator(EstimatorKind.RANDOM_FOREST, Task.CLASSIFICATION, {"n_estimators": 200}, seed=7)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from bastion.model_security.evaluation.metrics import Task

ParamValue = int | float | str | bool | None


class EstimatorKind(enum.StrEnum):
    LOGISTIC_REGRESSION = "logistic_regression"
    RIDGE = "ridge"
    DECISION_TREE = "decision_tree"
    RANDOM_FOREST = "random_forest"
    GRADIENT_BOOSTING = "gradient_boosting"
    HIST_GRADIENT_BOOSTING = "hist_gradient_boosting"


@dataclass(frozen=True)
class ParamRule:
    """Accepted values of one hyper-parameter."""

    kind: type  # int, float or str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def check(self, value: ParamValue) -> str | None:
        """Why ``value`` is not accepted, or ``None``."""
        if value is None:
            return None if self.nullable else "must not be null"
        if self.kind is str:
            if value not in self.choices:
                return f"must be one of {', '.join(self.choices)}"
            return None
        numeric_ok = isinstance(value, int) if self.kind is int else isinstance(value, int | float)
        if isinstance(value, bool | str) or not numeric_ok:
            return f"must be {'an integer' if self.kind is int else 'a number'}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low:g}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}"
        return None


_DEPTH = ParamRule(int, 1, 64, nullable=True)
_LEAF = ParamRule(int, 1, 100_000)
_TREES = ParamRule(int, 1, 2000)
_RATE = ParamRule(float, 1e-6, 10)
_BALANCE = ParamRule(str, choices=("balanced",), nullable=True)

RULES: dict[EstimatorKind, dict[str, ParamRule]] = {
    EstimatorKind.LOGISTIC_REGRESSION: {
        "C": ParamRule(float, 1e-6, 1e6),
        "max_iter": ParamRule(int, 1, 100_000),
        "tol": ParamRule(float, 1e-12, 1),
        "class_weight": _BALANCE,
    },
    EstimatorKind.RIDGE: {"alpha": ParamRule(float, 0, 1e6)},
    EstimatorKind.DECISION_TREE: {
        "max_depth": _DEPTH,
        "min_samples_leaf": _LEAF,
        "criterion": ParamRule(
            str, choices=("gini", "entropy", "log_loss", "squared_error", "absolute_error")
        ),
        "class_weight": _BALANCE,
    },
    EstimatorKind.RANDOM_FOREST: {
        "n_estimators": _TREES,
        "max_depth": _DEPTH,
        "min_samples_leaf": _LEAF,
        "max_features": ParamRule(float, 1e-6, 1.0),
        "class_weight": _BALANCE,
    },
    EstimatorKind.GRADIENT_BOOSTING: {
        "n_estimators": _TREES,
        "learning_rate": _RATE,
        "max_depth": _DEPTH,
        "subsample": ParamRule(float, 1e-6, 1.0),
        "min_samples_leaf": _LEAF,
    },
    EstimatorKind.HIST_GRADIENT_BOOSTING: {
        "max_iter": _TREES,
        "learning_rate": _RATE,
        "max_depth": _DEPTH,
        "max_leaf_nodes": ParamRule(int, 2, 4096, nullable=True),
        "min_samples_leaf": _LEAF,
        "l2_regularization": ParamRule(float, 0, 1e6),
    },
}

#: estimators whose inputs are standardised (distance / penalty based)
NEEDS_SCALING = frozenset({EstimatorKind.LOGISTIC_REGRESSION, EstimatorKind.RIDGE})
_REGRESSION_CRITERIA = frozenset({"squared_error", "absolute_error"})
_CLASSIFICATION_ONLY = frozenset({EstimatorKind.LOGISTIC_REGRESSION})
_REGRESSION_ONLY = frozenset({EstimatorKind.RIDGE})


def check_params(kind: EstimatorKind, task: Task, params: Mapping[str, ParamValue]) -> list[str]:
    """Problems with ``params`` for ``kind`` on ``task`` (empty when valid)."""
    problems = []
    if task is Task.REGRESSION and kind in _CLASSIFICATION_ONLY:
        problems.append(f"estimator {kind.value} is for classification; use ridge for regression")
    if task is Task.CLASSIFICATION and kind in _REGRESSION_ONLY:
        problems.append(f"estimator {kind.value} is for regression; use logistic_regression")
    rules = RULES[kind]
    for name, value in params.items():
        rule = rules.get(name)
        if rule is None:
            allowed = ", ".join(sorted(rules)) or "none"
            problems.append(f"params.{name}: not allowed for {kind.value} (allowed: {allowed})")
        elif (why := rule.check(value)) is not None:
            problems.append(f"params.{name}: {why}, got {value!r}")
    if task is Task.REGRESSION and params.get("class_weight") is not None:
        problems.append("params.class_weight: only for classification")
    criterion = params.get("criterion")
    if criterion is not None and (criterion in _REGRESSION_CRITERIA) != (task is Task.REGRESSION):
        problems.append(f"params.criterion: {criterion!r} does not fit a {task.value} task")
    return problems


def build_estimator(
    kind: EstimatorKind, task: Task, params: Mapping[str, ParamValue], *, seed: int
) -> object:
    """An unfitted scikit-learn estimator (params must have passed :func:`check_params`)."""
    from sklearn import ensemble, linear_model, tree

    kwargs = dict(params)
    classify = task is Task.CLASSIFICATION
    if kind is EstimatorKind.LOGISTIC_REGRESSION:
        kwargs.setdefault("max_iter", 1000)
        return linear_model.LogisticRegression(random_state=seed, **kwargs)
    if kind is EstimatorKind.RIDGE:
        return linear_model.Ridge(**kwargs)
    if kind is EstimatorKind.DECISION_TREE:
        cls = tree.DecisionTreeClassifier if classify else tree.DecisionTreeRegressor
        return cls(random_state=seed, **kwargs)
    classes = {
        EstimatorKind.RANDOM_FOREST: (
            ensemble.RandomForestClassifier,
            ensemble.RandomForestRegressor,
        ),
        EstimatorKind.GRADIENT_BOOSTING: (
            ensemble.GradientBoostingClassifier,
            ensemble.GradientBoostingRegressor,
        ),
        EstimatorKind.HIST_GRADIENT_BOOSTING: (
            ensemble.HistGradientBoostingClassifier,
            ensemble.HistGradientBoostingRegressor,
        ),
    }[kind]
    return classes[0 if classify else 1](random_state=seed, **kwargs)


__all__ = [
    "NEEDS_SCALING",
    "RULES",
    "EstimatorKind",
    "ParamRule",
    "ParamValue",
    "build_estimator",
    "check_params",
]
