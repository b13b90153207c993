"""The worker transforms a Pipeline's batch once for both predict and predict_proba: its
answers must be exactly what the model itself gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bastion.serving.worker import _predict, _stages

COLUMNS = ["age", "income", "home"]


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    r = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": r.integers(18, 80, n), "income": r.lognormal(10, 0.5, n),
                          "home": r.choice(["own", "rent", "other"], n)})
    y = ((frame["income"] > 22_000) ^ (frame["home"] == "rent")).map({True: "good",
                                                                     False: "bad"})
    return frame, y.to_numpy()


def _pre() -> ColumnTransformer:
    return ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ["home"])])


@pytest.mark.parametrize("model", [
    Pipeline([("features", _pre()), ("model", LogisticRegression(max_iter=500))]),
    Pipeline([("features", _pre()), ("noop", "passthrough"),
              ("model", RandomForestClassifier(n_estimators=20, random_state=0))]),
    Pipeline([("features", _pre()), ("model", RandomForestClassifier(n_estimators=5,
                                                                     random_state=1))]),
], ids=["pipeline-lr", "pipeline-passthrough-rf", "pipeline-rf"])
def test_worker_answers_equal_the_models_own_predictions(model: Any) -> None:
    frame, y = _data(400, 0)
    model.fit(frame, y)
    batch, _ = _data(57, 1)
    msg = {"id": 1, "columns": COLUMNS, "rows": batch[COLUMNS].to_numpy().tolist()}
    answer = _predict(_stages(model), msg)
    assert answer["labels"] == model.predict(batch).tolist()
    assert answer["scores"] == model.predict_proba(batch).tolist()


def test_a_model_that_is_no_pipeline_is_asked_as_it_is() -> None:
    r = np.random.default_rng(2)
    x, y = r.normal(size=(200, 3)), r.integers(0, 2, 200)
    model = LogisticRegression().fit(x, y)
    transforms, final = _stages(model)
    assert transforms is None and final is model
    answer = _predict((transforms, final), {"id": 2, "columns": ["a", "b", "c"],
                                            "rows": x[:9].tolist()})
    assert answer["labels"] == model.predict(x[:9]).tolist()


class _StrictPipeline(Pipeline):
    """A Pipeline subclass with its own decision rule (a stricter threshold than 0.5), as a
    signed artifact may declare one: what it predicts is the model that was evaluated."""

    def predict(self, X: Any, **params: Any) -> Any:
        proba = super().predict_proba(X)[:, 1]
        return np.where(proba > 0.8, self.classes_[1], self.classes_[0])


def test_pipeline_subclass_with_its_own_decision_rule_is_not_bypassed_by_the_stage_split(
) -> None:
    frame, y = _data(400, 0)
    model = _StrictPipeline([("features", _pre()),
                             ("model", LogisticRegression(max_iter=500))]).fit(frame, y)
    batch, _ = _data(200, 3)
    assert (model.predict(batch) != Pipeline.predict(model, batch)).any()  # the rule matters
    msg = {"id": 3, "columns": COLUMNS, "rows": batch[COLUMNS].to_numpy().tolist()}
    answer = _predict(_stages(model), msg)
    assert answer["labels"] == model.predict(batch).tolist()
    assert answer["scores"] == model.predict_proba(batch).tolist()
