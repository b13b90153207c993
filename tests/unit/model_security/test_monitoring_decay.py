"""Performance decay on real scikit-learn models once labels arrive."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from bastion.model_security.errors import MonitoringInputInvalid
from bastion.model_security.monitoring import (
    DecayThresholds,
    Task,
    compute_metrics,
    performance_decay,
)


def _credit(n: int, seed: int, *, flip: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x @ np.array([1.5, -1.0, 0.5, 0.0]) + rng.normal(0, 0.5, n) > 0).astype(int)
    flipped = rng.random(n) < flip  # the world changed: the old rule no longer holds
    return x, np.where(flipped, 1 - y, y)


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    x, y = _credit(3000, 0)
    return LogisticRegression().fit(x, y)


def test_stable_labels_show_no_decay(model: LogisticRegression) -> None:
    xv, yv = _credit(2000, 1)
    ref = compute_metrics(yv, model.predict(xv), Task.BINARY,
                          y_score=model.predict_proba(xv)[:, 1])
    assert set(ref.values) == {"accuracy", "precision", "recall", "f1", "auc"}
    xl, yl = _credit(2000, 2)
    report = performance_decay(ref, yl, model.predict(xl), Task.BINARY,
                               y_score=model.predict_proba(xl)[:, 1])
    assert not report.decayed, report.render_text()


def test_concept_drift_shows_accuracy_and_auc_decay(model: LogisticRegression) -> None:
    xv, yv = _credit(2000, 1)
    ref = compute_metrics(yv, model.predict(xv), Task.BINARY,
                          y_score=model.predict_proba(xv)[:, 1])
    xl, yl = _credit(2000, 3, flip=0.25)
    report = performance_decay(ref, yl, model.predict(xl), Task.BINARY,
                               y_score=model.predict_proba(xl)[:, 1])
    assert report.decayed
    assert {"accuracy", "auc"} <= set(report.decayed_metrics)
    acc = next(m for m in report.metrics if m.name == "accuracy")
    assert acc.change == pytest.approx(acc.reference - acc.current)
    assert json.loads(json.dumps(report.to_dict()))["decayed"] is True
    assert "PERFORMANCE DECAY" in report.render_text()


def test_regression_error_increase_is_relative() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1000, 2))
    y = x @ np.array([2.0, 1.0]) + rng.normal(0, 0.3, 1000)
    reg = LinearRegression().fit(x, y)
    ref = compute_metrics(y, reg.predict(x), Task.REGRESSION)
    noisy = y + rng.normal(0, 1.0, 1000)
    report = performance_decay(ref, noisy, reg.predict(x), Task.REGRESSION)
    rmse = next(m for m in report.metrics if m.name == "rmse")
    assert rmse.decayed and not rmse.higher_is_better and rmse.change > 1.0


def test_multiclass_metrics_and_per_metric_threshold() -> None:
    y = np.array([0, 1, 2] * 40)
    pred = y.copy()
    pred[:12] = (pred[:12] + 1) % 3  # 10 % wrong
    ref = compute_metrics(y, y, Task.MULTICLASS)
    strict = performance_decay(ref, y, pred, Task.MULTICLASS)
    lax = performance_decay(ref, y, pred, Task.MULTICLASS,
                            thresholds=DecayThresholds(per_metric={"accuracy": 0.2,
                                                                   "f1_macro": 0.2,
                                                                   "balanced_accuracy": 0.2}))
    assert "accuracy" in strict.decayed_metrics and not lax.decayed


def test_too_few_labels_gives_no_verdict() -> None:
    ref = compute_metrics([0, 1] * 50, [0, 1] * 50, Task.BINARY)
    report = performance_decay(ref, [0, 1] * 5, [1, 0] * 5, Task.BINARY)
    assert not report.enough_labels and not report.decayed
    assert "no verdict" in report.notes[0]


def test_bad_label_inputs_are_refused() -> None:
    ref = compute_metrics([0, 1] * 50, [0, 1] * 50, Task.BINARY)
    with pytest.raises(MonitoringInputInvalid, match="one length"):
        performance_decay(ref, [0, 1, 1], [0, 1], Task.BINARY)
    with pytest.raises(MonitoringInputInvalid, match="reference metrics are for binary"):
        performance_decay(ref, [0.5, 1.0], [0.4, 1.1], Task.REGRESSION)
    with pytest.raises(MonitoringInputInvalid, match="y_score"):
        compute_metrics([0, 1], [0, 1], Task.BINARY, y_score=[0.1, float("nan")])
