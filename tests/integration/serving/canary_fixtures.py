"""Canary test helpers: broken versions of ``scorer`` that pass the release gate (signed,
scanned, trained-on metadata, complete card) and misbehave only when served."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from serving_fixtures import CARD, Credit
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework, ModelVersion


def _register(c: Credit, model: object, folder: Path) -> ModelVersion:
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    v = c.ws.models.register(c.admin, RegisterRequest(
        "default", "scorer", folder, Framework.SKLEARN,
        trained_on=tuple(t.split("#")[0].split("/", 1)[1] for t in c.v1.trained_on),
        training_run=json.loads(c.v1.training_run or "{}")))
    c.ws.cards.edit(c.admin, "default", v.ref, CARD, source="card.yaml")
    return v


def one_class_version(c: Credit, folder: Path) -> ModelVersion:
    """Always answers "bad" (a garbage canary: its prediction distribution shifts)."""
    x = pd.DataFrame(c.holdout)
    model = DummyClassifier(strategy="constant", constant="bad").fit(
        x, np.array(["good", "bad"] * (len(x) // 2) + ["good"] * (len(x) % 2)))
    return _register(c, model, folder)


def erroring_version(c: Credit, folder: Path) -> ModelVersion:
    """Raises on every predict (its pipeline selects a column no request carries)."""
    x = pd.DataFrame(c.holdout)
    x["no_such_feature"] = 1.0
    y = np.array(["good", "bad"] * (len(x) // 2) + ["good"] * (len(x) % 2))
    model = Pipeline([("pick", ColumnTransformer([("n", "passthrough", ["no_such_feature"])])),
                      ("m", LogisticRegression())]).fit(x, y)
    return _register(c, model, folder)


def fewer_features_version(c: Credit, folder: Path) -> ModelVersion:
    """Trained (by its record) on one feature fewer: another input schema."""
    run = json.loads(c.v1.training_run or "{}")
    run["features"] = list(run["features"])[:-1]
    x = pd.DataFrame(c.holdout)[run["features"]]
    model = DummyClassifier(strategy="most_frequent").fit(x, ["good"] * len(x))
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    v = c.ws.models.register(c.admin, RegisterRequest(
        "default", "scorer", folder, Framework.SKLEARN,
        trained_on=tuple(t.split("#")[0].split("/", 1)[1] for t in c.v1.trained_on),
        training_run=run))
    c.ws.cards.edit(c.admin, "default", v.ref, CARD, source="card.yaml")
    return v
