"""Two real ``bastion serve`` replicas on one PostgreSQL judge one canary: both write their
samples to the database, the analysis reads every replica's, and when both decide at about
the same moment exactly one decision is made and audited once."""

from __future__ import annotations

import base64
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from canary_fixtures import one_class_version
from serving_fixtures import build_credit, start_bastion_serve

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving.canary_values import CanaryState, canary_plan

P, EP = "default", "scoring"
ENV = {"BASTION_SERVING_REFRESH_SECONDS": "0.3", "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
       "BASTION_SERVING_RATE_PRINCIPAL": "1000/second"}


def _decisions(url: str, token: str) -> int:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=30).text
    return sum(int(float(m)) for m in re.findall(
        r'^bastion_canary_decisions_total\{[^}]*\} (\S+)$', text, re.M))


def test_two_replicas_on_one_postgresql_make_one_canary_decision(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from conftest import _pg_database  # the serving conftest's helper

    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("canary-replicas")
    for url in _pg_database():
        c = build_credit(home, MasterKeySource.from_env_key(key), url)
        servers = []
        try:
            c.ws.deployments.deploy(c.admin, P, c.v1.ref, EP)
            garbage = one_class_version(c, home / "one")
            c.ws.access.create_principal(c.admin, "app", PrincipalKind.USER)
            c.ws.access.bind(c.admin, "app", "consumer", P)
            token = c.ws.access.create_token(c.admin, "app").secret
            env = dict(ENV)
            servers = [start_bastion_serve(c.ws.home, key, env) for _ in range(2)]
            c.ws.deployments.deploy(c.admin, P, garbage.ref, EP,
                                    canary=canary_plan(50, promote_after=5000))

            def predict(i: int) -> tuple[int, int, str]:
                r = httpx.post(f"{servers[i % 2].url}/v1/endpoints/{EP}/predict",
                               json={"row": c.holdout[i % len(c.holdout)]}, timeout=30,
                               headers={"Authorization": f"Bearer {token}"})
                return i % 2, r.status_code, r.json().get("model", "")

            def state() -> CanaryState | None:
                canary = c.ws.deployments.status(c.admin, P, EP).canary
                return canary.state if canary else None

            answered: Counter[tuple[int, str]] = Counter()
            statuses: Counter[int] = Counter()
            sent = 0
            with ThreadPoolExecutor(6) as pool:
                while sent < 3000 and state() is CanaryState.RUNNING:
                    for replica, status, model in pool.map(predict, range(sent, sent + 30)):
                        statuses[status] += 1
                        answered[(replica, model)] += 1
                    sent += 30
            assert state() is CanaryState.ROLLED_BACK and set(statuses) == {200}, statuses
            # both replicas routed to the canary, and the analysis saw both's samples
            assert answered[(0, garbage.ref)] > 0 and answered[(1, garbage.ref)] > 0, answered
            time.sleep(2.5)  # every replica has flushed and followed the decision
            canary = c.ws.deployments.status(c.admin, P, EP).canary
            assert canary is not None
            assert canary.canary_requests == answered[(0, garbage.ref)] + answered[
                (1, garbage.ref)]
            entries = c.ws.audit.query(AuditQuery(action="deployment.canary.rolled_back"))
            assert len(entries) == 1
            admin = c.ws.stored_token() or ""
            assert sum(_decisions(s.url, admin) for s in servers) == 1
        finally:
            for s in servers:
                s.stop()
            c.ws.close()
