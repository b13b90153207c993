"""Fixtures of the serving tests (helpers live in ``serving_fixtures``)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import joblib
import pytest
from serving_fixtures import Toy, toy_model

from bastion.core.crypto.keyring import MasterKeySource
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework
from bastion.workspace import Bastion


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toy]:
    work = tmp_path_factory.mktemp("toy")
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, token = Bastion.init(work / "ws", master)
    admin = ws.access.authenticate(token.secret)
    model = toy_model()
    (work / "m").mkdir()
    joblib.dump(model, work / "m" / "model.joblib")
    v = ws.models.register(admin, RegisterRequest("default", "toy", work / "m", Framework.SKLEARN))
    try:
        yield Toy(ws, admin, v, model, work)
    finally:
        ws.close()
