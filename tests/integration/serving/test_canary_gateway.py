"""Canary releases through a real ``bastion serve`` on loopback (SQLite): real bubblewrap
workers for both versions, the analysis over the samples every flush, decisions in the
database.  Tests run in file order on one server (restarted once)."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from canary_fixtures import erroring_version, one_class_version
from serving_fixtures import Credit, LiveServer, build_credit, run_cli, start_bastion_serve

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.model_security.values import ModelVersion
from bastion.serving.canary_values import CanaryState, canary_plan

P = "default"
EP = "scoring"
SERVER_ENV = {
    "BASTION_SERVING_RATE_PRINCIPAL": "120/10 seconds",
    "BASTION_SERVING_RATE_ENDPOINT": "5000/second",
    "BASTION_SERVING_REFRESH_SECONDS": "0.2",
    "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
}


@dataclass
class Env:
    c: Credit
    key: str
    srv: LiveServer
    tokens: list[str]  # consumers sending the traffic
    other: str  # another consumer (foreign request ids)
    flooder: str
    one_class: ModelVersion
    erroring: ModelVersion
    seen: dict[str, int] = field(default_factory=dict)

    def predict(self, i: int, *, key: str | None = None, rid: str | None = None,
                token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.tokens[i % len(self.tokens)]}"}
        if key is not None:
            headers["X-Bastion-Request-Key"] = key
        if rid is not None:
            headers["X-Request-Id"] = rid
        return httpx.post(f"{self.srv.url}/v1/endpoints/{EP}/predict",
                          json={"row": self.c.holdout[i % len(self.c.holdout)]},
                          headers=headers, timeout=30)

    def status(self) -> object:
        return self.c.ws.deployments.status(self.c.admin, P, EP)


def _token(c: Credit, name: str) -> str:
    c.ws.access.create_principal(c.admin, name, PrincipalKind.USER)
    c.ws.access.bind(c.admin, name, "consumer", P)
    return c.ws.access.create_token(c.admin, name).secret


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("canary-gw")
    c = build_credit(home, MasterKeySource.from_env_key(key), None)
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, EP)
    one, err = one_class_version(c, home / "one"), erroring_version(c, home / "err")
    tokens = [_token(c, f"app{i}") for i in range(12)]
    other, flooder = _token(c, "other-app"), _token(c, "flooder")
    srv = start_bastion_serve(c.ws.home, key, SERVER_ENV)
    e = Env(c, key, srv, tokens, other, flooder, one, err)
    try:
        yield e
    finally:
        e.srv.stop()
        c.ws.close()


def _traffic(e: Env, until: object, limit: int) -> tuple[Counter[str], Counter[int]]:
    """Send requests (6 at a time) until ``until()`` or ``limit``; models and statuses."""
    models: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    sent = 0
    with ThreadPoolExecutor(6) as pool:
        while sent < limit and not until():  # type: ignore[operator]
            for r in pool.map(e.predict, range(sent, sent + 30)):
                statuses[r.status_code] += 1
                if r.status_code != 200:
                    e.seen[f"error:{r.status_code}"] = r.text  # type: ignore[assignment]
                if r.status_code == 200:
                    models[r.json()["model"]] += 1
            sent += 30
    return models, statuses


def _canary_state(e: Env) -> CanaryState | None:
    canary = e.status().canary  # type: ignore[attr-defined]
    return canary.state if canary is not None else None


def _wait_for_canary_worker(e: Env, ref: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.predict(i).json().get("model") == ref for i in range(10)):
            return
    raise AssertionError(f"{ref} never answered")


def _audit(e: Env, action: str) -> list[object]:
    return list(e.c.ws.audit.query(AuditQuery(action=action)))


def test_canary_that_always_predicts_one_class_is_rolled_back_within_500_requests(
        env: Env) -> None:
    env.c.ws.deployments.deploy(env.c.admin, P, env.one_class.ref, EP,
                                canary=canary_plan(50, promote_after=5000))
    models, statuses = _traffic(env, lambda: _canary_state(env) is not CanaryState.RUNNING,
                                3000)
    assert _canary_state(env) is CanaryState.ROLLED_BACK, models
    assert set(statuses) == {200}, (statuses, env.seen)  # no failed request
    assert 0 < models[env.one_class.ref] <= 500, models
    entry = [e for e in _audit(env, "deployment.canary.rolled_back")]
    assert len(entry) == 1
    evidence = json.loads(entry[0].details)  # type: ignore[attr-defined]
    assert "prediction_shift" in evidence["failed"] and evidence["model"] == env.one_class.ref
    time.sleep(0.5)  # the gateway's next refresh: the canary's worker is gone
    after, _ = _traffic(env, lambda: False, 60)
    assert set(after) == {env.c.v1.ref}
    env.seen["one_class_requests"] = models[env.one_class.ref]
    print(f"one-class canary: {models[env.one_class.ref]} canary answers of "
          f"{sum(models.values())} before its rollback")


def test_canary_whose_worker_errors_is_rolled_back_and_stable_answers_every_request(
        env: Env) -> None:
    env.c.ws.deployments.deploy(env.c.admin, P, env.erroring.ref, EP,
                                canary=canary_plan(50, promote_after=5000))
    models, statuses = _traffic(env, lambda: _canary_state(env) is not CanaryState.RUNNING,
                                3000)
    assert _canary_state(env) is CanaryState.ROLLED_BACK
    assert set(statuses) == {200} and set(models) == {env.c.v1.ref}, (statuses, models)
    entries = _audit(env, "deployment.canary.rolled_back")
    assert len(entries) == 2
    evidence = json.loads(entries[-1].details)  # type: ignore[attr-defined]
    assert evidence["failed"] == ["error_rate"]
    code, out = run_cli(env.c.ws.home, env.key, "deploy", "status", EP)
    assert code == 0 and "canary rolled_back" in out and "error_rate" in out, out


def test_canary_metrics_are_exported(env: Env) -> None:
    token = env.c.ws.stored_token() or ""
    text = httpx.get(f"{env.srv.url}/metrics", timeout=30,
                     headers={"Authorization": f"Bearer {token}"}).text
    assert 'bastion_canary_requests_total{arm="canary",endpoint="scoring",outcome="ok"}' in text
    assert 'bastion_canary_requests_total{arm="canary",endpoint="scoring",outcome="error"}' in text
    assert "bastion_canary_weight_percent" in text
    assert 'bastion_canary_decisions_total{decision="rolled_back",endpoint="scoring"}' in text


def test_sticky_request_key_always_lands_on_the_same_version(env: Env) -> None:
    env.c.ws.deployments.deploy(env.c.admin, P, env.c.v2.ref, EP,
                                canary=canary_plan(50, promote_after=100_000))
    _wait_for_canary_worker(env, env.c.v2.ref)
    by_key: dict[str, set[str]] = {}
    for k in range(24):
        key = f"customer-{k}"
        for i in range(4):
            r = env.predict(k + i, key=key)
            assert r.status_code == 200, r.text
            by_key.setdefault(key, set()).add(r.json()["model"])
    assert all(len(v) == 1 for v in by_key.values()), by_key
    landed = Counter(next(iter(v)) for v in by_key.values())
    assert set(landed) == {env.c.v1.ref, env.c.v2.ref}, landed  # 24 keys at 50 %: both
    env.seen["sticky"] = len(landed)
    env.seen.update({f"key:{k}": 1 if v == {env.c.v2.ref} else 0 for k, v in by_key.items()})


def test_canary_state_and_stickiness_survive_a_gateway_restart(env: Env) -> None:
    before = env.status().canary  # type: ignore[attr-defined]
    assert before is not None and before.state is CanaryState.RUNNING
    time.sleep(1.5)  # the last samples are flushed
    counted = env.status().canary.canary_requests  # type: ignore[attr-defined]
    env.srv.stop()
    env.srv = start_bastion_serve(env.c.ws.home, env.key, SERVER_ENV)
    _wait_for_canary_worker(env, env.c.v2.ref)
    for k in range(24):  # the same keys land where they landed before the restart
        r = env.predict(k, key=f"customer-{k}")
        assert (r.json()["model"] == env.c.v2.ref) == bool(env.seen[f"key:customer-{k}"])
    time.sleep(1.5)
    after = env.status().canary  # type: ignore[attr-defined]
    assert after.id == before.id and after.state is CanaryState.RUNNING
    assert after.canary_requests > counted


def test_rollback_during_the_canary_aborts_it_and_a_healthy_canary_is_promoted_after_n(
        env: Env) -> None:
    assert env.c.ws.deployments.rollback(env.c.admin, P, EP).ref == env.c.v1.ref
    assert _canary_state(env) is CanaryState.ABORTED
    env.c.ws.deployments.deploy(env.c.admin, P, env.c.v2.ref, EP,
                                canary=canary_plan(50, promote_after=80))
    models, statuses = _traffic(env, lambda: _canary_state(env) is not CanaryState.RUNNING,
                                3000)
    assert _canary_state(env) is CanaryState.PROMOTED, models
    assert set(statuses) == {200}
    status = env.status()
    assert status.active.ref == env.c.v2.ref  # type: ignore[attr-defined]
    assert len(_audit(env, "deployment.canary.promoted")) == 1
    time.sleep(0.6)
    after, _ = _traffic(env, lambda: False, 60)
    assert set(after) == {env.c.v2.ref}


def test_feedback_labels_own_answered_predictions_once(env: Env) -> None:
    rid = f"fb-{uuid.uuid4().hex[:12]}"
    assert env.predict(0, rid=rid, token=env.tokens[0]).status_code == 200
    theirs = f"fb-{uuid.uuid4().hex[:12]}"
    assert env.predict(0, rid=theirs, token=env.other).status_code == 200
    time.sleep(1.5)  # the prediction log is flushed about every second
    url = f"{env.srv.url}/v1/endpoints/{EP}/feedback"

    def post(body: object, token: str) -> httpx.Response:
        return httpx.post(url, json=body, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})

    assert post({"request_id": rid, "label": "good"}, env.tokens[0]).status_code == 201
    again = post({"request_id": rid, "label": "bad"}, env.tokens[0])
    assert again.status_code == 409, again.text
    foreign = post({"request_id": theirs, "label": "bad"}, env.tokens[0])
    unknown = post({"request_id": "fb-never", "label": "bad"}, env.tokens[0])
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"] == unknown.json()["error"]
    extra = post({"request_id": rid, "label": "good", "sql": "1"}, env.tokens[0])
    assert extra.status_code in (400, 422)


def test_feedback_flood_from_one_token_is_bounded_by_its_rate_limit(env: Env) -> None:
    url = f"{env.srv.url}/v1/endpoints/{EP}/feedback"
    before = len(_audit(env, "predict.feedback.refused"))

    def post(i: int) -> httpx.Response:
        return httpx.post(url, json={"request_id": f"flood-{i}", "label": "x"}, timeout=30,
                          headers={"Authorization": f"Bearer {env.flooder}"})

    codes: Counter[int] = Counter()
    with ThreadPoolExecutor(8) as pool:
        for start in range(0, 1000, 40):  # until the limit answers (120 per 10 s)
            codes.update(r.status_code for r in pool.map(post, range(start, start + 40)))
            if codes[429]:
                break
    assert codes[429] > 0 and set(codes) <= {404, 429}, codes
    refused = len(_audit(env, "predict.feedback.refused")) - before
    assert refused == codes[404]  # every 429 stopped before the database and the audit
    env.seen["flood"] = codes[429]


def test_feedback_body_flood_from_a_throttled_token_is_refused_unread(env: Env) -> None:
    """Malformed bodies spend the caller's rate limit too: past it each is refused (429)
    before it is read or parsed, not validated (422) however many come."""
    url = f"{env.srv.url}/v1/endpoints/{EP}/feedback"
    token = _token(env.c, "malformed-feedback")
    junk = json.dumps({"request_id": 5, "label": list(range(2000))}).encode()

    def post(_: int) -> httpx.Response:
        return httpx.post(url, content=junk, timeout=30, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    codes: Counter[int] = Counter()
    with ThreadPoolExecutor(8) as pool:
        for start in range(0, 400, 40):  # the limit is 120 per 10 s
            codes.update(r.status_code for r in pool.map(post, range(start, start + 40)))
            if codes[429]:
                break
    assert codes[429] > 0 and set(codes) <= {422, 429}, codes
    first = post(0)
    assert first.status_code == 429 and first.headers.get("retry-after"), first.text
