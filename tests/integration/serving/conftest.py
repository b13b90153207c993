"""Fixtures of the serving tests (helpers live in ``serving_fixtures``)."""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import joblib
import pytest
from serving_fixtures import Credit, PrivateRedis, Toy, build_credit, toy_model

from bastion.core.crypto.keyring import MasterKeySource
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework
from bastion.workspace import Bastion

PG_ENV = "BASTION_TEST_POSTGRES_URL"


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


def _pg_database() -> Iterator[str]:
    import psycopg

    admin = os.environ.get(PG_ENV)
    if not admin:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide PostgreSQL ({PG_ENV} is not set)")
        pytest.skip(f"{PG_ENV} is not set")
    name = f"bastion_sv_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def credit(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Credit]:
    """Credit data, its contract and two approved scorer versions (SQLite, PostgreSQL)."""
    home = tmp_path_factory.mktemp(f"credit-{request.param}")
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    if request.param == "sqlite":
        c = build_credit(home, master, None)
        try:
            yield c
        finally:
            c.ws.close()
        return
    for url in _pg_database():
        c = build_credit(home, master, url)
        try:
            yield c
        finally:
            c.ws.close()


# -- Redis ------------------------------------------------------------------------------
REDIS_ENV = "BASTION_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> str:
    """The Redis server CI starts (``.ci/run``); skipped when unset, *failed* when CI=true."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide Redis ({REDIS_ENV} is not set)")
        pytest.skip(f"{REDIS_ENV} is not set")
    return url


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A Redis of this test's own (``redis-server`` on a free loopback port), which the
    test may stop and start again; the shared CI instance is never stopped."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must provide redis-server (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    r = PrivateRedis(tmp_path_factory.mktemp("redis"))
    r.start()
    try:
        yield r
    finally:
        r.stop()
