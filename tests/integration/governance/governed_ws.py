"""Helpers of the governance integration tests (the fixture lives in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np

from bastion.core.access.values import Actor, PrincipalKind
from bastion.model_security.values import ModelVersion
from bastion.workspace import Bastion

P = "default"


@dataclass
class Governed:
    ws: Bastion
    admin: Actor
    model: ModelVersion
    home: Path

    def user(self, name: str, role: str) -> Actor:
        self.ws.access.create_principal(self.admin, name, PrincipalKind.USER)
        self.ws.access.bind(self.admin, name, role, P)
        return self.ws.access.authenticate(self.ws.access.create_token(self.admin, name).secret)


def model_file(tmp: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(2).normal(size=(80, 3))
    path = tmp / "model.joblib"
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), path)
    return path


__all__ = ["Governed", "P", "model_file"]
