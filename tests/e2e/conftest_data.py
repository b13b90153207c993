"""Module-scoped fixtures for the data-security end-to-end tests (imported explicitly
by ``test_cli_data.py`` and ``test_api_data.py``).

The shared ``cli`` and ``server`` fixtures in ``tests/conftest.py`` are per test;
ingesting the credit history takes seconds, so these build one workspace per
module: the history is ingested in-process (the CLI and the server are the
subjects under test, not the setup), then the workspace is closed and only the
real ``bastion`` subprocesses touch it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.crypto.keyring import MasterKeySource
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.workspace import Bastion

PROJECT = "default"
DATASET = "credit"
SOURCE = "credit-bureau"
LABEL = "Status"


def _root_conftest() -> ModuleType:
    """``tests/conftest.py`` under a private name (its helpers, not its fixtures)."""
    name = "_bastion_root_conftest"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class DataWS:
    """A workspace folder with the credit history accepted as ``credit@1`` and tokens
    for a steward, an ML engineer, an auditor and a consumer (admin token: ``admin``)."""

    home: Path
    master_key_b64: str
    work: Path
    tokens: dict[str, str]
    trusted: pl.DataFrame
    holdout: pl.DataFrame
    counter: int = 0

    def open(self) -> Bastion:
        return Bastion.open(self.home, MasterKeySource.from_env_key(self.master_key_b64))

    def batch_file(self, frame: pl.DataFrame, stem: str) -> tuple[Path, str]:
        self.counter += 1
        path = self.work / f"{stem}-{self.counter}.csv"
        frame.write_csv(path)
        return path, hashlib.sha256(path.read_bytes()).hexdigest()


def build_data_ws(root: Path) -> DataWS:
    key = base64.b64encode(os.urandom(32)).decode()
    ws, issued = Bastion.init(root / "ws", MasterKeySource.from_env_key(key))
    work = root / "work"
    work.mkdir()
    try:
        admin = ws.access.authenticate(issued.secret)
        tokens = {"admin": issued.secret}
        for name, role in (
            ("dana", "data-steward"),
            ("eve", "ml-engineer"),
            ("olga", "auditor"),
            ("carl", "consumer"),
        ):
            ws.access.create_principal(admin, name, PrincipalKind.USER)
            ws.access.bind(admin, name, role, PROJECT)
            tokens[name] = ws.access.create_token(admin, name).secret
        steward = ws.access.authenticate(tokens["dana"])
        ws.datasets.register_source(steward, PROJECT, SOURCE, datasets=(DATASET,))
        full = credit_data().drop_nulls().with_row_index("application_id")
        shuffled = full.sample(fraction=1.0, shuffle=True, seed=7)
        cut = int(shuffled.height * 0.7)
        data = DataWS(
            ws.home, key, work, tokens, shuffled.head(cut), shuffled.tail(shuffled.height - cut)
        )
        path, digest = data.batch_file(data.trusted, "history")
        res = ws.datasets.ingest(
            steward,
            IngestRequest(
                PROJECT, DATASET, path, SOURCE, digest, LABEL, ("Age",), positive_label="good"
            ),
        )
        assert res.accepted, res.report.render_text()
        return data
    finally:
        ws.close()


@pytest.fixture(scope="module", name="data_ws")
def data_ws_fixture(tmp_path_factory: pytest.TempPathFactory) -> DataWS:
    return build_data_ws(tmp_path_factory.mktemp("data-e2e"))


@pytest.fixture(scope="module", name="data_cli")
def data_cli_fixture(data_ws: DataWS) -> Any:
    """The shared ``CLI`` runner (tests/conftest.py) over the module's workspace."""
    return _root_conftest().CLI(data_ws.home, data_ws.master_key_b64)


@pytest.fixture(scope="module", name="data_server")
def data_server_fixture(data_ws: DataWS) -> Iterator[Any]:
    """A real ``bastion serve`` on loopback over the module's workspace."""
    root = _root_conftest()
    srv = root.start_server(data_ws.home, data_ws.master_key_b64, data_ws.tokens["admin"])
    try:
        yield srv
    finally:
        root.stop_server(srv.proc)


#: import these into a test module to make the fixtures visible there
FIXTURES = (data_ws_fixture, data_cli_fixture, data_server_fixture)

__all__ = [
    "DATASET",
    "FIXTURES",
    "LABEL",
    "PROJECT",
    "SOURCE",
    "DataWS",
    "build_data_ws",
    "data_cli_fixture",
    "data_server_fixture",
    "data_ws_fixture",
]
