"""The gateway's hot path through a real ``bastion serve`` (SQLite): the access cache does
not let a revoked token go on predicting beyond its window, and a revocation through the
gateway's own API is refused at once.  Every answered prediction's ``predict`` decision is
in the audit log (group-committed, durable before the answer)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from serving_fixtures import Credit, LiveServer, build_credit, start_bastion_serve

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource

P = "default"
PREDICT = "/v1/endpoints/scoring/predict"
WINDOW = 1.0  # BASTION_API_ACCESS_CACHE_SECONDS of the server


@dataclass
class Env:
    c: Credit
    srv: LiveServer
    admin: str

    def token(self, name: str) -> tuple[str, str]:
        self.c.ws.access.create_principal(self.c.admin, name, PrincipalKind.SERVICE)
        self.c.ws.access.bind(self.c.admin, name, "consumer", P)
        issued = self.c.ws.access.create_token(self.c.admin, name)
        return issued.secret, issued.record.id

    def predict(self, token: str, i: int = 0) -> httpx.Response:
        return httpx.post(self.srv.url + PREDICT, json={"row": self.c.holdout[i]}, timeout=30,
                          headers={"Authorization": f"Bearer {token}",
                                   "X-Request-Id": f"hot-{time.monotonic_ns()}"})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    key = base64.b64encode(os.urandom(32)).decode()
    c = build_credit(tmp_path_factory.mktemp("hot"), MasterKeySource.from_env_key(key), None)
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, "scoring")
    srv = start_bastion_serve(c.ws.home, key, {
        "BASTION_API_ACCESS_CACHE_SECONDS": str(WINDOW),
        "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
    })
    try:
        yield Env(c, srv, c.ws.stored_token() or "")
    finally:
        srv.stop()
        c.ws.close()


def test_revoked_token_cannot_keep_predicting_from_the_cache(env: Env) -> None:
    secret, tid = env.token("app")
    for i in range(3):  # verified once, then served from the cache
        assert env.predict(secret, i).status_code == 200
    env.c.ws.access.revoke_token(env.c.admin, tid)  # another process: the CLI, a replica
    revoked_at = time.monotonic()
    while True:
        r = env.predict(secret)
        took = time.monotonic() - revoked_at
        if r.status_code != 200:
            break
        assert took < WINDOW + 1.0, "the revoked token still predicts after the window"
        time.sleep(0.05)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated", r.text
    for _ in range(3):  # and it stays refused
        assert env.predict(secret).status_code == 401


def test_token_revoked_through_the_gateway_is_refused_at_once(env: Env) -> None:
    secret, tid = env.token("app2")
    assert env.predict(secret).status_code == 200
    r = httpx.delete(f"{env.srv.url}/v1/tokens/{tid}", timeout=30,
                     headers={"Authorization": f"Bearer {env.admin}"})
    assert r.status_code == 200, r.text
    assert env.predict(secret).status_code == 401  # no window: this process revoked it


def test_every_answered_prediction_has_its_decision_in_the_audit_log(env: Env) -> None:
    secret, _ = env.token("app3")
    rids = []
    for i in range(10):
        r = env.predict(secret, i)
        assert r.status_code == 200
        rids.append(r.json()["request_id"])
    allowed = env.c.ws.audit.query(AuditQuery(action="predict", actor="app3", limit=1000))
    assert {e.request_id for e in allowed if e.outcome == "allowed"} >= set(rids)
