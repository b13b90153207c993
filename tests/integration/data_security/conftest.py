"""Fixtures for the data-security integration tests.

Ingesting the credit history costs seconds, so one workspace per database
(SQLite and PostgreSQL) is built once per session and shared: tests that need
the trusted history use ``credit``; tests that mutate a dataset's state
(contract, tampered blobs) use their own dataset in ``credit.ws``.

PostgreSQL gets a fresh database on ``BASTION_TEST_POSTGRES_URL`` (skipped
when unset, failed when CI=true), dropped at the end of the session.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from data_security_support import (
    DATASET,
    LABEL,
    PROJECT,
    SOURCE,
    CreditWS,
    credit_split,
    ingest_csv,
    make_actor,
)

from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion

PG_ENV = "BASTION_TEST_POSTGRES_URL"


def _pg_database() -> Iterator[str]:
    import psycopg

    admin = os.environ.get(PG_ENV)
    if not admin:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide PostgreSQL ({PG_ENV} is not set)")
        pytest.skip(f"{PG_ENV} is not set")
    name = f"bastion_ds_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def ds_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('ds-sqlite') / 'meta.db'}"
        return
    yield from _pg_database()


@pytest.fixture(scope="session")
def credit(ds_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CreditWS]:
    root = tmp_path_factory.mktemp("credit-ws")
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, issued = Bastion.init(root / "ws", master, database_url=ds_db_url)
    try:
        admin = ws.access.authenticate(issued.secret)
        steward = make_actor(ws, admin, "dana", "data-steward")
        engineer = make_actor(ws, admin, "eve", "ml-engineer")
        consumer = make_actor(ws, admin, "carl", "consumer")
        auditor = make_actor(ws, admin, "olga", "auditor")
        ws.datasets.register_source(steward, PROJECT, SOURCE, datasets=(DATASET,))
        split = credit_split()
        work = root / "work"
        work.mkdir()
        history = ingest_csv(
            ws,
            steward,
            split.trusted,
            work / "history.csv",
            label=LABEL,
            sensitive=("Age",),
            positive_label="good",
        )
        assert history.accepted, history.report.render_text()
        yield CreditWS(
            ws, ws.home, work, ds_db_url, admin, steward, engineer, consumer, auditor, split,
            history.version,
        )
    finally:
        ws.close()
