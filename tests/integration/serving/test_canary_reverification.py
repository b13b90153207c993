"""The gateway's periodic re-verification covers the canary: through a real ``bastion
serve`` on loopback (SQLite, real bubblewrap workers, re-verification every 2 s), a canary
whose stored artifact is tampered with, or whose signing key is revoked, while it serves
is rolled back at the next re-verification (audited with the reason, shown by ``deploy
status``) while every request keeps succeeding from the stable version.  Tests run in file
order on one server."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serving_fixtures import CARD, LR_SPEC, Credit, LiveServer, build_credit, run_cli
from serving_fixtures import start_bastion_serve as start_serve

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.model_security.registry import signing_purpose
from bastion.model_security.values import ModelVersion
from bastion.serving.canary_values import CanaryState, canary_plan

P = "default"
EP = "scoring"
SERVER_ENV = {
    "BASTION_SERVING_RATE_PRINCIPAL": "1000/second",
    "BASTION_SERVING_RATE_ENDPOINT": "5000/second",
    "BASTION_SERVING_REFRESH_SECONDS": "0.2",
    "BASTION_SERVING_VERIFY_SECONDS": "2",
    "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
}


@dataclass
class Env:
    c: Credit
    key: str
    srv: LiveServer
    token: str

    def predict(self, i: int) -> httpx.Response:
        return httpx.post(f"{self.srv.url}/v1/endpoints/{EP}/predict",
                          json={"row": self.c.holdout[i % len(self.c.holdout)]},
                          headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def canary_state(self) -> CanaryState | None:
        c = self.c.ws.deployments.status(self.c.admin, P, EP).canary
        return c.state if c is not None else None


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("canary-reverify")
    c = build_credit(home, MasterKeySource.from_env_key(key), None)
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, EP)
    c.ws.access.create_principal(c.admin, "app", PrincipalKind.USER)
    c.ws.access.bind(c.admin, "app", "consumer", P)
    token = c.ws.access.create_token(c.admin, "app").secret
    srv = start_serve(c.ws.home, key, SERVER_ENV)
    e = Env(c, key, srv, token)
    try:
        yield e
    finally:
        e.srv.stop()
        c.ws.close()


class Traffic:
    """Requests 4 at a time in the background until stopped: models and statuses seen."""

    def __init__(self, e: Env) -> None:
        self.e = e
        self.models: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        sent = 0
        with ThreadPoolExecutor(4) as pool:
            while not self._stop.is_set():
                for r in pool.map(self.e.predict, range(sent, sent + 8)):
                    self.statuses[r.status_code] += 1
                    if r.status_code == 200:
                        self.models[r.json()["model"]] += 1
                    else:
                        self.errors.append(r.text[:300])
                sent += 8


def _wait(until: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _blob(c: Credit, digest: str) -> Path:
    return c.ws.home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"


def _own_model_blob(c: Credit, v: ModelVersion, others: list[ModelVersion]) -> Path:
    """The stored blob of ``v``'s model file, shared with none of ``others``."""
    target = next(f for f in v.manifest if f.path.endswith(".joblib"))
    assert all(target.digest not in {f.digest for f in o.manifest} for o in others)
    return _blob(c, target.digest)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _rolled_back_entries(e: Env, canary_id: str) -> list[dict[str, object]]:
    found = e.c.ws.audit.query(AuditQuery(action="deployment.canary.rolled_back"))
    details = [json.loads(x.details) for x in found]
    return [d for d in details if d.get("canary") == canary_id]


def _serve_canary(e: Env, v: ModelVersion, traffic: Traffic) -> str:
    """Deploy ``v`` as a 50 % canary that the analysis will not decide; wait for its worker."""
    e.c.ws.deployments.deploy(e.c.admin, P, v.ref, EP,
                              canary=canary_plan(50, promote_after=1_000_000))
    _wait(lambda: traffic.models[v.ref] >= 5, 60, f"{v.ref} answering as the canary")
    canary = e.c.ws.deployments.status(e.c.admin, P, EP).canary
    assert canary is not None and canary.state is CanaryState.RUNNING
    return canary.id


def _taken_out(e: Env, v: ModelVersion, canary_id: str, traffic: Traffic) -> None:
    _wait(lambda: e.canary_state() is not CanaryState.RUNNING, 30, "the canary's rollback")
    assert e.canary_state() is CanaryState.ROLLED_BACK
    time.sleep(1.0)  # requests after the rollback
    answered_before = traffic.models[v.ref]
    stable_before = traffic.models[e.c.v1.ref]
    time.sleep(1.5)
    assert traffic.models[v.ref] == answered_before  # no longer routed to the canary
    assert traffic.models[e.c.v1.ref] > stable_before  # the stable version serves on
    [entry] = _rolled_back_entries(e, canary_id)
    assert entry["model"] == v.ref and "no longer verifies" in str(entry["reason"]), entry
    status = e.c.ws.deployments.status(e.c.admin, P, EP)
    assert status.active is not None and status.active.ref == e.c.v1.ref
    code, out = run_cli(e.c.ws.home, e.key, "deploy", "status", EP)
    assert code == 0 and "canary rolled_back" in out and "no longer verifies" in out, out


def test_canary_artifact_tampered_on_disk_while_serving_is_taken_out_at_reverification(
        env: Env) -> None:
    v2 = env.c.v2
    with Traffic(env) as traffic:
        canary_id = _serve_canary(env, v2, traffic)
        _flip(_own_model_blob(env.c, v2, [env.c.v1]))
        _taken_out(env, v2, canary_id, traffic)
    assert set(traffic.statuses) == {200}, (traffic.statuses, traffic.errors[:3])


def test_canary_signed_by_a_key_revoked_while_it_serves_is_taken_out_at_reverification(
        env: Env) -> None:
    ws, admin = env.c.ws, env.c.admin
    ws.keys.rotate_signing(admin, signing_purpose(P))  # v1 keeps its (rotated) key
    dataset = env.c.v1.trained_on[0].split("#")[0].split("/", 1)[1]
    v3 = ws.lab.train(admin, P, "scorer", LR_SPEC.replace("C: 1.0", "C: 0.7"), dataset)
    ws.cards.edit(admin, P, v3.ref, CARD, source="card.yaml")
    assert v3.signer_key_id != env.c.v1.signer_key_id
    with Traffic(env) as traffic:
        canary_id = _serve_canary(env, v3, traffic)
        # only the key: nobody calls enforce_revocations, the periodic re-verification must
        ws.keys.revoke_signing(admin, v3.signer_key_id)
        _taken_out(env, v3, canary_id, traffic)
    assert set(traffic.statuses) == {200}, (traffic.statuses, traffic.errors[:3])


def test_stable_artifact_tampered_on_disk_is_taken_out_at_reverification(env: Env) -> None:
    """A tampered stored blob fails decryption before the signature is checked (a
    BlobCorrupted, not a SignatureInvalid): it takes the version out all the same."""
    active = env.c.ws.deployments.status(env.c.admin, P, EP).active
    assert active is not None and active.ref == env.c.v1.ref
    _flip(_own_model_blob(env.c, env.c.v1, [env.c.v2]))
    deadline = time.monotonic() + 20
    r = env.predict(0)
    while r.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        r = env.predict(0)
    assert r.status_code == 404 and r.json()["error"] == "no_deployment", r.text
    history = env.c.ws.deployments.status(env.c.admin, P, EP).history
    assert next(d for d in history if d.id == active.id).state.value == "revoked"
    revoked = env.c.ws.audit.query(AuditQuery(action="deployment.revoked"))
    assert revoked and revoked[-1].actor == "system:gateway"
