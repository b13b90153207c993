"""The prediction gateway through a real ``bastion serve`` on loopback (SQLite and
PostgreSQL): real tokens, the request gate, rate limits, contract-derived validation,
the sandboxed worker, the prediction log and ``/metrics``.  Each bad input is named
after the attack; each gets the right status and a clear body, and the server keeps
serving.  (One server per database; tests run in file order; revocation comes last.)"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from serving_fixtures import Credit, LiveServer, build_credit, start_bastion_serve

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving._adapters.sql_repo import SqlDeploymentRepository

P = "default"
PREDICT = "/v1/endpoints/scoring/predict"


@dataclass
class Env:
    c: Credit
    srv: LiveServer
    consumer: str  # token with predict in the project
    flooder: str  # another consumer token, for the flood test
    stranger: str  # token with no role in the project
    admin: str
    loaders: list[str]  # consumer tokens for the load of the rollback test

    def post(self, body: object, token: str | None = None, *, raw: bytes | None = None,
             ctype: str = "application/json", path: str = PREDICT) -> httpx.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        return httpx.post(self.srv.url + path, content=data, timeout=30, headers={
            "Authorization": f"Bearer {token or self.consumer}", "Content-Type": ctype})


def _token(c: Credit, name: str, role: str | None) -> str:
    c.ws.access.create_principal(c.admin, name, PrincipalKind.SERVICE
                                 if hasattr(PrincipalKind, "SERVICE") else PrincipalKind.USER)
    if role:
        c.ws.access.bind(c.admin, name, role, P)
    return c.ws.access.create_token(c.admin, name).secret


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from conftest import _pg_database  # the serving conftest's helper

    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp(f"gw-{request.param}")
    urls = iter(_pg_database()) if request.param == "postgresql" else iter([None])
    url = next(urls)
    c = build_credit(home, MasterKeySource.from_env_key(key), url)
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, "scoring")
    c.ws.deployments.deploy(c.admin, P, c.v2.ref, "scoring")
    tokens = [_token(c, n, r) for n, r in
              (("app", "consumer"), ("flood", "consumer"), ("mallory", None))]
    srv = start_bastion_serve(c.ws.home, key, {
        "BASTION_SERVING_RATE_PRINCIPAL": "20/second",
        "BASTION_SERVING_REFRESH_SECONDS": "0.2",
        "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
        "BASTION_SERVING_VERIFY_SECONDS": "3",
    })
    try:
        loaders = [_token(c, f"load{i}", "consumer") for i in range(4)]
        yield Env(c, srv, *tokens, admin=c.ws.stored_token() or "", loaders=loaders)
    finally:
        srv.stop()
        c.ws.close()
        for _ in urls:  # drop the PostgreSQL database
            pass


def _row(e: Env, i: int = 0) -> dict[str, object]:
    return dict(e.c.holdout[i])


def _refused(r: httpx.Response, status: int, field: str, words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field and words in body["reason"], body


def test_predict_answers_from_the_sandboxed_worker_with_policy_precision(env: Env) -> None:
    r = env.post({"rows": [_row(env, 0), _row(env, 1)]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == env.c.v2.ref and len(body["predictions"]) == 2
    for p in body["predictions"]:
        assert p["label"] in ("good", "bad")
        assert set(p["scores"]) == {"bad", "good"}
        assert all(round(s, 2) == s for s in p["scores"].values())
    one = env.post({"row": _row(env, 2)})
    assert one.status_code == 200 and len(one.json()["predictions"]) == 1


@pytest.mark.parametrize(("name", "mutate", "field", "words"), [
    ("wrong_type", lambda r: r.update(Income="lots"), "rows[0].Income", "must be a number"),
    ("boolean_as_number", lambda r: r.update(Income=True), "rows[0].Income", "must be a number"),
    ("missing_field", lambda r: r.pop("Income"), "rows[0].Income", "is required"),
    ("unknown_field", lambda r: r.update(is_admin=1), "rows[0].is_admin", "not an input"),
    ("unicode_lookalike_category", lambda r: r.update(Home="\u043ewner"), "rows[0].Home",
     "not an allowed category"),
    ("null_where_training_had_none", lambda r: r.update(Home=None), "rows[0].Home",
     "may not be null"),
])
def test_bad_rows_are_refused_naming_the_field(env: Env, name: str, mutate: object,
                                               field: str, words: str) -> None:
    row = _row(env)
    mutate(row)  # type: ignore[operator]
    _refused(env.post({"rows": [row]}), 422, field, words)


@pytest.mark.parametrize(("name", "literal"), [
    ("nan", "NaN"), ("infinity", "Infinity"), ("overflow_1e309", "1e309")])
def test_nan_infinity_and_overflowing_numbers_are_refused(env: Env, name: str,
                                                          literal: str) -> None:
    text = json.dumps({"rows": [_row(env)]}).replace(
        f'"Income": {json.dumps(_row(env)["Income"])}', f'"Income": {literal}')
    assert literal in text
    r = env.post(None, raw=text.encode())
    assert r.status_code == 422 and r.json()["field"] == "body", r.text


def test_malformed_and_deeply_nested_json_are_refused_and_the_server_keeps_serving(
    env: Env,
) -> None:
    _refused(env.post(None, raw=b'{"rows": [{"Income": 1'), 422, "body", "not valid JSON")
    deep = b'{"rows": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    _refused(env.post(None, raw=deep), 422, "body", "nested deeper")
    assert env.post({"row": _row(env)}).status_code == 200


def test_ten_megabyte_body_is_refused_before_it_is_read(env: Env) -> None:
    r = env.post(None, raw=b'{"rows": [' + b" " * (10 * 1024 * 1024) + b"]}")
    assert r.status_code == 413, r.text


def test_pickle_content_type_is_refused_unread(env: Env) -> None:
    import pickle

    r = env.post(None, raw=pickle.dumps({"rows": []}), ctype="application/python-pickle")
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"


def test_unauthenticated_and_unauthorized_callers_are_refused(env: Env) -> None:
    assert env.post({"row": _row(env)}, token="not-a-token").status_code == 401
    r = env.post({"row": _row(env)}, token=env.stranger)
    assert r.status_code in (403, 404), r.text
    denied = env.c.ws.audit.query(AuditQuery(action="predict", outcome="denied"))
    assert any(e.resource == f"project/{P}/endpoint/scoring" for e in denied)


def test_flood_from_one_token_gets_429_with_retry_after_and_others_keep_serving(
    env: Env,
) -> None:
    codes: list[int] = []
    retry: list[str] = []
    lock = threading.Lock()

    def flood() -> None:  # six clients at once: faster than 20/s on any database
        with httpx.Client(timeout=30) as client:
            for _ in range(10):
                r = client.post(env.srv.url + PREDICT, content=json.dumps({"row": _row(env)}),
                                headers={"Authorization": f"Bearer {env.flooder}",
                                         "Content-Type": "application/json"})
                with lock:
                    codes.append(r.status_code)
                    if r.status_code == 429:
                        retry.append(r.headers.get("Retry-After", ""))

    started = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # 20/second per principal, whatever the database's speed: never more served than that
    assert 200 in codes and codes.count(429) >= 10, codes
    assert codes.count(200) <= 20 * (elapsed + 1), (codes, elapsed)
    assert retry and all(v.isdigit() and int(v) >= 1 for v in retry)
    assert env.post({"row": _row(env)}).status_code == 200  # another principal is served
    refused = env.c.ws.audit.query(AuditQuery(action="predict.refused"))
    assert any(json.loads(e.details)["reason"] == "rate_limited_principal" for e in refused)


def test_every_prediction_is_logged_with_version_latency_and_hashed_features(env: Env) -> None:
    r = env.post({"row": _row(env, 5)}, ctype="application/json")
    rid = r.json()["request_id"]
    repo = SqlDeploymentRepository(env.c.ws.engine)
    deadline = time.monotonic() + 10
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline and not found:
        found = [p for p in repo.predictions(P, "scoring", limit=100_000)
                 if p["request_id"] == rid]
        time.sleep(0.3)
    (entry,) = found
    assert entry["model"] == "scorer" and entry["version"] == env.c.v2.version
    assert entry["outcome"] == "ok" and float(entry["latency_ms"]) > 0  # type: ignore[arg-type]
    assert len(str(entry["features_digest"])) == 64
    # keyed: a plain SHA-256 of the body (guessable rows) must not match
    body = json.dumps({"row": _row(env, 5)}).encode()
    assert entry["features_digest"] != hashlib.sha256(body).hexdigest()
    assert entry["features_digest"] == env.c.ws.keyring.keyed_digest("prediction-features", body)
    text = json.dumps(entry)
    assert str(_row(env, 5)["Income"]) not in text.replace(rid, "")


def test_metrics_show_requests_latency_and_refusals(env: Env) -> None:
    r = httpx.get(env.srv.url + "/metrics", headers={"Authorization": f"Bearer {env.admin}"})
    assert r.status_code == 200, r.text
    text = r.text
    assert 'bastion_predict_requests_total{endpoint="scoring",outcome="ok"}' in text
    assert "bastion_predict_latency_seconds_bucket" in text
    assert 'reason="invalid_input"' in text and 'reason="rate_limited_principal"' in text
    assert httpx.get(env.srv.url + "/metrics").status_code == 401


def test_rollback_under_concurrent_load_fails_no_request(env: Env) -> None:
    # Each answer is kept with when it was sent and received (one clock, this process):
    # the order in which threads append is not the order the server answered in.
    stop = threading.Event()
    results: list[tuple[float, float, int, str]] = []  # sent, received, status, model
    lock = threading.Lock()

    def load(token: str) -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                sent = time.monotonic()
                r = client.post(env.srv.url + PREDICT, content=json.dumps({"row": _row(env)}),
                                headers={"Authorization": f"Bearer {token}",
                                         "Content-Type": "application/json"})
                model = r.json().get("model", "") if r.status_code == 200 else r.text
                with lock:
                    results.append((sent, time.monotonic(), r.status_code, str(model)))
                time.sleep(0.06)  # one principal per thread, under its limit of 20/s

    def wait_for(enough: Callable[[list[tuple[float, float, int, str]]], bool]) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                if enough(list(results)):
                    return
            time.sleep(0.05)

    v1, v2 = env.c.v1.ref, env.c.v2.ref
    threads = [threading.Thread(target=load, args=(t,)) for t in env.loaders]
    for t in threads:
        t.start()
    wait_for(lambda rs: len(rs) >= 4)
    rolled = time.monotonic()
    env.c.ws.deployments.rollback(env.c.admin, P, "scoring")

    def first_v1(rs: list[tuple[float, float, int, str]]) -> float:
        return min((got for _, got, _, m in rs if m == v1), default=float("inf"))

    # enough requests sent after the first v1 answer came back to see a flap, if any
    wait_for(lambda rs: sum(1 for sent, *_ in rs if sent > first_v1(rs)) >= 8)
    stop.set()
    for t in threads:
        t.join()
    failed = [r for r in results if r[2] != 200]
    assert not failed, failed[:5]
    before = [m for _, got, _, m in results if got < rolled]
    assert before and set(before) == {v2}  # answered before the rollback: the old version
    switched = first_v1(results)
    after = [m for sent, _, _, m in results if sent > switched]
    assert len(after) >= 8, "the rollback did not reach the gateway within 20 s"
    assert set(after) == {v1}  # no flapping back: every request sent after the switch


def test_revoked_signing_key_takes_the_version_out_of_service(env: Env) -> None:
    ws = env.c.ws
    ws.keys.revoke_signing(env.c.admin, env.c.v1.signer_key_id)
    # nobody calls enforce_revocations: the gateway's own re-verification finds it
    deadline = time.monotonic() + 15
    r = env.post({"row": _row(env)})
    while r.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        r = env.post({"row": _row(env)})
    assert r.status_code == 404 and r.json()["error"] == "no_deployment", r.text
    revoked = ws.audit.query(AuditQuery(action="deployment.revoked"))
    assert revoked and revoked[-1].actor == "system:gateway"
    last = ws.deployments.status(env.c.admin, P, "scoring").history[-1]
    assert last.state.value == "revoked"
