"""Task metrics and fairness on cases small enough to check by hand or against fairlearn."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    selection_rate,
)
from sklearn.linear_model import LogisticRegression

from bastion.model_security.errors import EvaluationInputInvalid
from bastion.model_security.evaluation import (
    AttackKind,
    RobustnessSuite,
    TabularConstraints,
    Task,
    attribute_fairness,
    classification_metrics,
    evaluate,
    regression_metrics,
)


def test_classification_metrics_on_a_toy_case() -> None:
    y_true = np.array([0, 1, 1, 0, 1, 0])
    y_pred = np.array([0, 1, 0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9], [0.45, 0.55]])
    m = classification_metrics(y_true, y_pred, classes=[0, 1], proba=proba)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.precision == pytest.approx(2 / 3)  # predicted 1: rows 1, 4, 5; right on 1, 4
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    assert m.balanced_accuracy == pytest.approx(2 / 3)
    assert m.confusion_matrix == ((2, 1), (1, 2))
    # positives score 0.8, 0.4, 0.9; negatives 0.1, 0.3, 0.55 -> 8 of 9 pairs ordered right
    assert m.roc_auc == pytest.approx(8 / 9)
    assert m.positive_label == 1


def test_string_labels_use_the_last_class_as_positive_and_no_proba_means_no_auc() -> None:
    y = np.array(["bad", "good", "good", "bad"])
    m = classification_metrics(y, y, classes=["bad", "good"])
    assert m.positive_label == "good"
    assert m.accuracy == 1.0
    assert m.roc_auc is None


def test_multiclass_uses_macro_averaging() -> None:
    y = np.array([0, 1, 2, 2])
    m = classification_metrics(y, np.array([0, 1, 2, 1]), classes=[0, 1, 2])
    assert m.averaging == "macro"
    assert m.recall == pytest.approx((1 + 1 + 0.5) / 3)


def test_regression_metrics_on_a_toy_case() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m.mae == pytest.approx(0.5)
    assert m.rmse == pytest.approx(1.0)
    assert m.r2 == pytest.approx(1 - 4 / 5)


def test_fairness_numbers_match_fairlearn_directly() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 400)
    group = rng.choice(["a", "b", "c"], 400)
    y_pred = np.where(group == "a", rng.random(400) < 0.7, rng.random(400) < 0.4).astype(int)
    report = attribute_fairness(
        "group", group, y_true, y_pred, classes=[0, 1], task=Task.CLASSIFICATION
    )
    assert report.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=group)
    )
    assert report.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=group)
    )
    rates = MetricFrame(
        metrics=selection_rate, y_true=y_true, y_pred=y_pred, sensitive_features=group
    ).by_group
    for g in report.groups:
        assert g.selection_rate == pytest.approx(rates[g.group])
    assert report.demographic_parity_difference > 0.2  # the bias planted above is seen


def test_numeric_sensitive_attribute_is_binned_and_the_binning_is_stated() -> None:
    ages = np.arange(18, 98)
    y = (ages > 50).astype(int)
    report = attribute_fairness("age", ages, y, y, classes=[0, 1], task=Task.CLASSIFICATION)
    assert report.binning is not None
    assert report.binning.method == "quantile"
    assert report.binning.edges[0] == 18 and report.binning.edges[-1] == 97
    assert len(report.groups) == 4
    assert sum(g.count for g in report.groups) == len(ages)
    few = attribute_fairness(
        "kids", np.array([0, 1, 2, 0, 1, 2]), y[:6], y[:6], classes=[0, 1], task=Task.CLASSIFICATION
    )
    assert few.binning is None and {g.group for g in few.groups} == {"0", "1", "2"}


def _small_frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    return pl.DataFrame({"x": x, "s": rng.choice(["p", "q"], 200), "y": (x > 0).astype(int)})


def test_evaluate_result_is_json_safe_without_nan() -> None:
    frame = _small_frame()
    model = LogisticRegression().fit(frame.select("x").to_pandas(), frame["y"].to_numpy())
    result = evaluate(
        model,
        frame,
        label="y",
        task=Task.CLASSIFICATION,
        sensitive=["s"],
        constraints=TabularConstraints(),
        suite=RobustnessSuite(attacks=(AttackKind.FGSM,)),
    )
    text = json.dumps(result.to_dict(), allow_nan=False, sort_keys=True)
    assert '"accuracy"' in text
    assert result.robustness is not None
    # a bare estimator is not a pipeline: the gradient attack is skipped with a reason, not faked
    assert result.robustness.attacks[0].status.value == "skipped"


def test_evaluate_rejects_a_missing_label_column_clearly() -> None:
    frame = _small_frame()
    model = LogisticRegression().fit(frame.select("x").to_pandas(), frame["y"].to_numpy())
    with pytest.raises(EvaluationInputInvalid, match="'target'"):
        evaluate(
            model,
            frame,
            label="target",
            task=Task.CLASSIFICATION,
            sensitive=[],
            constraints=TabularConstraints(),
            suite=RobustnessSuite(),
        )
