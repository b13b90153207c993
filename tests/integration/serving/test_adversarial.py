"""Out-of-distribution rows and adversarial query patterns through a real ``bastion serve``
on loopback (sandboxed worker, real tokens, the prediction log in SQLite and PostgreSQL).

ART's HopSkipJump attacks the live endpoint over HTTP through a ``BlackBoxClassifier``;
its principal must be suspected and throttled within a bounded number of queried rows,
while ordinary traffic (rows of the real credit data the model was not trained on, the
same volume) from another principal is never flagged.  A one-feature sweep and an
extraction-style uniform random query stream are caught the same way."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from serving_fixtures import Credit, LiveServer, build_credit, run_cli, start_bastion_serve

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving._adapters.sql_repo import SqlDeploymentRepository
from bastion.serving.ood import OodPolicy
from bastion.serving.values import FieldKind, ResponsePolicy

P = "default"
FLAG = "/v1/endpoints/scoring/predict"
STRICT = "/v1/endpoints/strict/predict"


@dataclass
class Env:
    c: Credit
    srv: LiveServer
    db: str = "sqlite"
    key: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    ordinary: list[dict[str, Any]] = field(default_factory=list)  # unseen real rows

    def post(self, who: str, rows: list[dict[str, Any]], path: str = FLAG) -> httpx.Response:
        return httpx.post(self.srv.url + path, json={"rows": rows}, timeout=30,
                          headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def suspected(self, who: str) -> list[dict[str, Any]]:
        found = self.c.ws.audit.query(AuditQuery(action="predict.adversarial_suspected"))
        return [json.loads(e.details) for e in found if e.actor == who]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from bastion.demo.data_steps import credit_data
    from conftest import _pg_database

    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp(f"adv-{request.param}")
    urls = iter(_pg_database()) if request.param == "postgresql" else iter([None])
    c = build_credit(home, MasterKeySource.from_env_key(key), next(urls))
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, "scoring")
    c.ws.deployments.deploy(c.admin, P, c.v2.ref, "strict", ResponsePolicy(ood=OodPolicy.REFUSE))
    tokens = {}
    for name in ("app", "attacker0", "attacker1", "attacker2", "sweeper", "extractor"):
        c.ws.access.create_principal(c.admin, name, PrincipalKind.USER)
        c.ws.access.bind(c.admin, name, "consumer", P)
        tokens[name] = c.ws.access.create_token(c.admin, name).secret
    # the rows build_credit did not train on (same shuffle): ordinary traffic
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    ordinary = full.slice(850).select(c.features).to_dicts()
    srv = start_bastion_serve(c.ws.home, key, {
        "BASTION_SERVING_RATE_PRINCIPAL": "2000/second",
        "BASTION_SERVING_RATE_ENDPOINT": "5000/second",
        # the policy: throttle on the SQLite server, block on the PostgreSQL one
        "BASTION_SERVING_ADVERSARIAL": "throttle" if request.param == "sqlite" else "block",
        "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
    })
    try:
        yield Env(c, srv, request.param, key, tokens, ordinary)
    finally:
        srv.stop()
        c.ws.close()
        for _ in urls:
            pass


def _schema(env: Env) -> Any:
    d = env.c.ws.deployments.active(P, "scoring")
    assert d is not None and d.schema.ood is not None
    return d.schema


# -- out of distribution --------------------------------------------------------------------
def test_far_out_of_distribution_row_is_answered_and_flagged(env: Env) -> None:
    row = dict(env.ordinary[0])
    far = {**row, "Income": 50_000}
    r = env.post("app", [row, far])
    assert r.status_code == 200, r.text
    first, second = r.json()["predictions"]
    assert "ood" not in first
    assert second["ood"] is True and second["ood_fields"] == ["Income"]
    metrics = httpx.get(env.srv.url + "/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {env.c.ws.stored_token()}"}).text
    assert 'bastion_predict_ood_rows_total{endpoint="scoring"} 1.0' in metrics
    rid = r.json()["request_id"]
    repo = SqlDeploymentRepository(env.c.ws.engine)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server flushes its log about every second
        logged = [x for x in repo.predictions(P, "scoring") if x["request_id"] == rid]
        if logged:
            assert logged[0]["ood"] == 1 and logged[0]["rows"] == 2
            return
        time.sleep(0.2)
    pytest.fail("the prediction was not logged")


def test_out_of_distribution_row_is_refused_where_policy_says_so(env: Env) -> None:
    ok = env.post("app", [env.ordinary[1]], STRICT)
    assert ok.status_code == 200 and "ood" not in ok.json()["predictions"][0]
    far = {**env.ordinary[1], "Seniority": 90, "Debt": 90_000}
    r = env.post("app", [env.ordinary[1], far], STRICT)
    assert r.status_code == 422, r.text
    body = r.text
    assert "rows[1]" in body and "Seniority" in body and "Debt" in body
    assert "out of the training distribution" in body
    refused = env.c.ws.audit.query(AuditQuery(action="predict.refused"))
    assert any(json.loads(e.details).get("reason") == "out_of_distribution" for e in refused)


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)  # one CLI run is enough
def test_cli_deploy_sets_the_ood_policy(env: Env) -> None:
    code, out = run_cli(env.c.ws.home, env.key, "deploy", env.c.v1.ref, "--endpoint",
                        "cli-strict", "--ood", "refuse")
    assert code == 0, out
    d = env.c.ws.deployments.active(P, "cli-strict")
    assert d is not None and d.policy.ood is OodPolicy.REFUSE and d.schema.ood is not None
    code, out = run_cli(env.c.ws.home, env.key, "deploy", env.c.v1.ref, "--endpoint",
                        "cli-other", "--ood", "ignore")
    assert code != 0 and "ignore" in out
    assert env.c.ws.deployments.active(P, "cli-other") is None


# -- adversarial queries --------------------------------------------------------------------
class _Refused(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.text)
        self.response = response


def _hopskipjump(env: Env, who: str, seed: int) -> tuple[httpx.Response, list[int], float]:
    """Run ART's HopSkipJump as ``who`` against the live endpoint until the gateway
    refuses; the refusal, the rows per answered request, the seconds taken."""
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    schema = _schema(env)
    bands = {b.name: b for b in schema.ood.bands}
    kinds = {f.name: f.kind for f in schema.fields}
    numeric = [n for n in env.c.features if n in bands]
    lo = np.array([bands[n].seen_low for n in numeric])  # the attacker's box: the training
    hi = np.array([bands[n].seen_high for n in numeric])  # range (the least off-range)
    base = dict(env.ordinary[5 + seed])
    sent: list[int] = []
    classes = ["bad", "good"]

    def predict(u: np.ndarray) -> np.ndarray:
        rows = []
        for vec in np.atleast_2d(u):
            row = dict(base)
            for n, v in zip(numeric, lo + np.clip(vec, 0, 1) * (hi - lo), strict=True):
                row[n] = int(np.rint(v)) if kinds[n] is FieldKind.INTEGER else float(v)
            rows.append(row)
        labels: list[str] = []
        for i in range(0, len(rows), 64):
            r = env.post(who, rows[i:i + 64])
            if r.status_code != 200:
                raise _Refused(r)
            sent.append(len(rows[i:i + 64]))
            labels += [p["label"] for p in r.json()["predictions"]]
        return np.eye(2)[[classes.index(x) for x in labels]]

    x0 = (np.array([base[n] for n in numeric], dtype=float) - lo) / (hi - lo)
    clf = BlackBoxClassifier(predict, input_shape=(len(numeric),), nb_classes=2,
                             clip_values=(0.0, 1.0))
    attack = HopSkipJump(clf, max_iter=5, max_eval=200, init_eval=20, init_size=200,
                         batch_size=64, verbose=False)
    np.random.seed(seed)  # ART draws from numpy's global generator
    started = time.monotonic()
    with pytest.raises(_Refused) as refused:
        attack.generate(x=x0[None, :].astype(np.float32))
    return refused.value.response, sent, time.monotonic() - started


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)  # memory-only state: once
def test_hopskipjump_attacker_is_suspected_and_throttled_ordinary_traffic_is_not(
        env: Env) -> None:
    volume = 0
    for seed in range(2):
        who = f"attacker{seed}"
        response, sent, elapsed = _hopskipjump(env, who, seed)
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert "attack" in response.text  # the reason is given
        found = env.suspected(who)
        assert len(found) == 1, found
        seen = found[0]["rows_seen"]
        print(f"\nHopSkipJump seed {seed}: suspected after {seen} rows ({len(sent)} requests "
              f"answered, {sum(sent)} rows, {elapsed:.1f} s), signals {found[0]['signals']}")
        assert seen <= 200 and set(found[0]["signals"]) <= {"near_duplicate", "boundary"}
        volume += sum(sent)
    # ordinary traffic from another principal, at least the attackers' volume: never flagged
    volume, i = max(volume, 600), 0
    while i < volume:  # single rows and small batches
        size = (1, 16, 32)[i % 3]
        r = env.post("app", env.ordinary[100 + i:100 + i + size])
        assert r.status_code == 200, r.text
        i += size
    assert env.suspected("app") == []
    refusals = env.c.ws.audit.query(AuditQuery(action="predict.refused"))
    assert any(e.actor == "attacker0" and json.loads(e.details)["reason"]
               == "adversarial_throttle" for e in refusals)
    alerts = [a for a in env.c.ws.alerts.alerts(env.c.admin, P, endpoint="scoring")
              if a.kind == "adversarial"]
    assert len(alerts) == 1 and alerts[0].open and alerts[0].occurrences == 2  # a repeat
    assert json.loads(alerts[0].evidence)["principal"] == "attacker0"


def test_one_feature_sweep_is_suspected_and_throttled_or_blocked(env: Env) -> None:
    base = dict(env.ordinary[7])
    answers = []
    for k in range(40):
        answers.append(env.post("sweeper", [{**base, "Income": 60 + 10 * k}]))
        if answers[-1].status_code != 200:
            break
    found = env.suspected("sweeper")
    assert len(found) == 1 and "sweep" in found[0]["signals"]
    print(f"\nsweep: suspected after {found[0]['rows_seen']} rows ({env.db})")
    last = answers[-1]
    if env.db == "sqlite":  # throttle: one request per 5 s, then 429
        assert found[0]["rows_seen"] <= 30 and last.status_code == 429
    else:  # block: the very next request is 403, with the reason
        assert len(answers) == found[0]["rows_seen"] + 1 and last.status_code == 403
        assert last.json()["error"] == "adversarial_blocked" and "sweep" in last.text
        again = env.post("sweeper", [env.ordinary[8]])  # any row: the principal is blocked
        assert again.status_code == 403
        assert env.post("app", [env.ordinary[8]]).status_code == 200  # others are served
        refused = env.c.ws.audit.query(AuditQuery(action="predict.refused"))
        assert any(e.actor == "sweeper" and json.loads(e.details)["reason"]
                   == "adversarial_block" for e in refused)


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)  # memory-only state: once
def test_extraction_by_uniform_random_queries_is_suspected(env: Env) -> None:
    schema = _schema(env)
    rng = np.random.default_rng(11)
    specs = {f.name: f for f in schema.fields}
    codes = []
    for _k in range(20):  # batches of 4 rows, uniform over the accepted feature box
        rows = []
        for _ in range(4):
            row = dict(env.ordinary[int(rng.integers(len(env.ordinary)))])
            for b in schema.ood.bands:
                low = max(b.low, specs[b.name].minimum or b.low)
                v = float(rng.uniform(low, b.high))
                row[b.name] = round(v) if specs[b.name].kind is FieldKind.INTEGER else v
            rows.append(row)
        codes.append(env.post("extractor", rows).status_code)
        if codes[-1] != 200:
            break
    found = env.suspected("extractor")
    assert len(found) == 1 and "off_range" in found[0]["signals"], found
    print(f"\nuniform extraction: suspected after {found[0]['rows_seen']} rows")
    assert found[0]["rows_seen"] <= 40 and codes[-1] == 429
