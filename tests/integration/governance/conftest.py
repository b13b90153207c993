"""A workspace with a source, an accepted dataset version and a registered model
(on SQLite and PostgreSQL): what the provider and compliance tests need."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from governed_ws import Governed, P, model_file

from bastion.data_security.service import IngestRequest
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework


@pytest.fixture
def governed(workspace: Any, tmp_path: Path) -> Iterator[Governed]:
    """``workspace`` is the root conftest's ``WS`` (SQLite and PostgreSQL)."""
    from bastion.demo.data_steps import credit_data

    ws, admin = workspace.ws, workspace.admin
    ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
    batch = tmp_path / "train.csv"
    credit_data().drop_nulls().head(600).write_csv(batch)
    digest = hashlib.sha256(batch.read_bytes()).hexdigest()
    res = ws.datasets.ingest(
        admin, IngestRequest(P, "credit", batch, "bureau", digest, label="Status")
    )
    assert res.accepted
    model = ws.models.register(
        admin,
        RegisterRequest(
            P, "scorer", model_file(tmp_path), Framework.SKLEARN, trained_on=(res.version.ref,)
        ),
    )
    yield Governed(ws, admin, model, workspace.home)
