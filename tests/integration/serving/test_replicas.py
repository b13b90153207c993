"""Several gateway replicas: two real ``bastion serve`` processes on one PostgreSQL and one
Redis serving the same endpoint share one rate limit (429 + Retry-After at the shared
limit), one audit log (every prediction of both verifies in ``bastion audit verify``) and
one deployment state (a rollback and a deploy are followed by both within their refresh
interval).  Redis down fails closed: 503 ``rate_limit_unavailable``, never unlimited."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from serving_fixtures import (
    Credit,
    LiveServer,
    PrivateRedis,
    build_credit,
    run_cli,
    start_bastion_serve,
)

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving._adapters.sql_repo import SqlDeploymentRepository
from bastion.serving.errors import RateLimitUnavailable, Throttled
from bastion.serving.ratelimit import RateLimiter, RateLimitOptions

P = "default"
PREDICT = "/v1/endpoints/scoring/predict"
REFRESH = 0.5  # BASTION_SERVING_REFRESH_SECONDS of both gateways
PER_PRINCIPAL = 30  # per minute: a window far longer than the test's bursts


# -- the limiter alone, on the CI Redis -------------------------------------------------
def test_two_limiters_on_one_redis_share_one_limit(redis_url: str) -> None:
    """Two limiters (as two processes hold) on one Redis: 5/minute in all, not 5 each."""
    opts = RateLimitOptions(per_principal="5/minute", storage_url=redis_url)
    a, b = RateLimiter(opts), RateLimiter(opts)
    who = f"alice-{uuid.uuid4().hex[:8]}"  # the CI Redis is shared by other tests
    served, throttled = 0, []
    for i in range(10):
        try:
            (a if i % 2 else b).hit_principal(who)
            served += 1
        except Throttled as e:
            throttled.append(e.retry_after)
    assert served == 5 and len(throttled) == 5
    assert all(1 <= s <= 60 for s in throttled)
    # the control: in-process storage gives each limiter its own 5
    mem = RateLimitOptions(per_principal="5/minute")
    m1, m2 = RateLimiter(mem), RateLimiter(mem)
    for _ in range(5):
        m1.hit_principal(who)
        m2.hit_principal(who)


def test_another_workspace_on_the_same_redis_cannot_drain_or_reset_our_limit(
        redis_url: str) -> None:
    """Two workspaces pointed at one Redis (a shared cache in a cluster): a principal of
    the same name in the other workspace neither uses up our budget nor gets its own
    refilled by ours; both keep 5/minute."""
    who = f"alice-{uuid.uuid4().hex[:8]}"
    ours = RateLimiter(RateLimitOptions(per_principal="5/minute", storage_url=redis_url,
                                        namespace=f"ws-{uuid.uuid4().hex[:12]}"))
    theirs = RateLimiter(RateLimitOptions(per_principal="5/minute", storage_url=redis_url,
                                          namespace=f"ws-{uuid.uuid4().hex[:12]}"))
    for _ in range(5):
        theirs.hit_principal(who)  # the other workspace floods under the same name
    with pytest.raises(Throttled):
        theirs.hit_principal(who)
    for _ in range(5):
        ours.hit_principal(who)  # our budget is untouched
    with pytest.raises(Throttled):
        ours.hit_principal(who)


def test_redis_down_fails_closed_instead_of_serving_unlimited(
        private_redis: PrivateRedis) -> None:
    limiter = RateLimiter(RateLimitOptions(per_principal="100/second",
                                           storage_url=private_redis.url))
    limiter.hit_principal("bob")
    private_redis.stop()
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(RateLimitUnavailable, match="rate-limit storage is unreachable"):
            limiter.hit_principal("bob")
        assert time.monotonic() - started < 2  # refused at once, not hung
    private_redis.start()  # back: served again without a restart of the gateway
    limiter.hit_principal("bob")


# -- two real gateways ------------------------------------------------------------------
@dataclass
class Pair:
    c: Credit
    key: str
    redis: PrivateRedis
    gateways: tuple[LiveServer, LiveServer]

    def post(self, gw: int, token: str, row: dict[str, object]) -> httpx.Response:
        return httpx.post(self.gateways[gw].url + PREDICT, json={"row": row}, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})

    def token(self, name: str) -> str:
        self.c.ws.access.create_principal(self.c.admin, name, PrincipalKind.USER)
        self.c.ws.access.bind(self.c.admin, name, "consumer", P)
        return self.c.ws.access.create_token(self.c.admin, name).secret


@pytest.fixture
def pair(private_redis: PrivateRedis,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    from conftest import _pg_database  # the serving conftest's helper

    key = base64.b64encode(os.urandom(32)).decode()
    urls = iter(_pg_database())
    c = build_credit(tmp_path_factory.mktemp("replicas"), MasterKeySource.from_env_key(key),
                     next(urls))
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, "scoring")
    c.ws.deployments.deploy(c.admin, P, c.v2.ref, "scoring")
    env = {
        "BASTION_SERVING_RATE_STORAGE": private_redis.url,
        "BASTION_SERVING_RATE_PRINCIPAL": f"{PER_PRINCIPAL}/minute",
        "BASTION_SERVING_REFRESH_SECONDS": str(REFRESH),
        "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
    }
    started: list[LiveServer] = []
    try:
        started.append(start_bastion_serve(c.ws.home, key, env))
        started.append(start_bastion_serve(c.ws.home, key, env))
        yield Pair(c, key, private_redis, (started[0], started[1]))
    finally:
        for srv in started:
            srv.stop()
        c.ws.close()
        for _ in urls:  # drop the PostgreSQL database
            pass


def _wait_for_model(p: Pair, gw: int, token: str, model: str, limit: float) -> float:
    """Seconds until gateway ``gw`` answers with ``model`` (fails after ``limit``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        r = p.post(gw, token, p.c.holdout[0])
        assert r.status_code == 200, r.text  # no failed request during the switch
        if r.json()["model"] == model:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"gateway {gw} still does not serve {model} after {limit} s")


def test_two_gateways_share_one_limit_one_audit_log_and_one_deployment_state(
        pair: Pair) -> None:
    p, v1, v2 = pair, pair.c.v1.ref, pair.c.v2.ref
    # 1. one shared per-principal limit: requests alternate between the two processes
    burst = p.token("burst")
    seen: dict[int, list[str]] = {0: [], 1: []}  # request ids served by each gateway
    refused: list[httpx.Response] = []
    for i in range(PER_PRINCIPAL + 10):
        r = p.post(i % 2, burst, p.c.holdout[i % len(p.c.holdout)])
        if r.status_code == 200:
            assert r.json()["model"] == v2
            seen[i % 2].append(r.json()["request_id"])
        else:
            assert r.status_code == 429, r.text
            refused.append(r)
    assert len(seen[0]) + len(seen[1]) == PER_PRINCIPAL  # not PER_PRINCIPAL per gateway
    assert seen[0] and seen[1] and len(refused) == 10
    assert {r.json()["error"] for r in refused} == {"rate_limited"}
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in refused)
    assert {i % 2 for i in range(PER_PRINCIPAL, PER_PRINCIPAL + 10)} == {0, 1}  # both 429

    # 2. one audit log: both processes' decisions are in it, and it verifies
    both = seen[0][:5] + seen[1][:5]
    entries = p.c.ws.audit.query(AuditQuery(action="predict", actor="burst", limit=100_000))
    by_rid = {e.request_id: e for e in entries}
    assert all(by_rid[rid].outcome == "allowed" for rid in both)  # KeyError: missing
    repo = SqlDeploymentRepository(p.c.ws.engine)
    deadline = time.monotonic() + 10  # each gateway writes its prediction log every second
    logged: set[str] = set()
    while time.monotonic() < deadline and not set(both) <= logged:
        logged = {str(x["request_id"]) for x in repo.predictions(P, "scoring", limit=100_000)}
        time.sleep(0.3)
    assert set(both) <= logged
    code, out = run_cli(p.c.ws.home, p.key, "audit", "verify")
    assert code == 0, out

    # 3. one deployment state: a rollback and a deploy, written once, followed by both
    watch = (p.token("watch0"), p.token("watch1"))
    code, out = run_cli(p.c.ws.home, p.key, "rollback", "scoring")
    assert code == 0 and v1 in out, out
    took = [_wait_for_model(p, gw, watch[gw], v1, 20) for gw in (0, 1)]
    code, out = run_cli(p.c.ws.home, p.key, "deploy", v2, "--endpoint", "scoring")
    assert code == 0, out
    took += [_wait_for_model(p, gw, watch[gw], v2, 20) for gw in (0, 1)]
    print(f"replicas followed the switch in {', '.join(f'{t:.1f}' for t in took)} s")

    # 4. Redis down: both gateways refuse (fail closed) with a clear 503, then recover
    p.redis.stop()
    for gw in (0, 1):
        started = time.monotonic()
        r = p.post(gw, watch[gw], p.c.holdout[0])
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "rate_limit_unavailable"
        assert time.monotonic() - started < 5
    p.redis.start()
    assert all(p.post(gw, watch[gw], p.c.holdout[0]).status_code == 200 for gw in (0, 1))
