"""Layer-3 steps of the demo: deploy through the gate, serve from a sandbox, refuse bad
input, throttle a flood, refuse an SSRF webhook, raise a drift alert on shifted traffic.

A real ``bastion serve`` runs on a free loopback port against the demo's workspace (its
model worker in a bubblewrap sandbox); the steps talk HTTP to it.  Without bubblewrap the
steps fail with "install bubblewrap" — never an unsandboxed worker.  One function per
control, each asserting the control by name: the 422 names the field, the 429 carries
``Retry-After`` and the ``rate_limited`` code, the webhook refusal names the link-local
address, the alert's kind is ``drift``.

Example::

    with demo_server(state, master_key_b64) as server:    # bastion serve starts now
        governance_story = run_governance(runner, state, model_story)
        run_serving(runner, state, governance_story, server)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.demo.data_steps import PROJECT
from bastion.demo.foundation import DemoState
from bastion.demo.governance_steps import GovernanceStory
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.serving.errors import WebhookRefused
from bastion.serving.values import FieldKind

ENDPOINT = "credit-scoring"
FLOOD = 60  # concurrent requests from one token against a 10/second per-principal limit
SHIFTED_ROWS = 400
_SERVER_ENV = {
    "BASTION_SERVING_RATE_PRINCIPAL": "10/second",
    "BASTION_SERVING_REFRESH_SECONDS": "0.5",
    "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
}


@dataclass
class DemoServer:
    """A ``bastion serve`` on a free loopback port, started early (its start-up overlaps
    the model and governance steps); ``missing`` says why it could not start."""

    url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    missing: str = ""
    ready: bool = False

    def wait_healthy(self, timeout: float = 60.0) -> None:
        if self.missing:
            raise DemoFailed(self.missing)
        if self.ready:
            return
        assert self.proc is not None and self.log is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoFailed(f"bastion serve exited: {self.log.read_text()[-500:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    self.ready = True
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise DemoFailed(f"bastion serve did not become healthy in {timeout:.0f} s")


@dataclass
class ServingStory:
    governance: GovernanceStory
    server: DemoServer
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, body: dict[str, Any], who: str = "loan-app") -> httpx.Response:
        self.server.wait_healthy()
        return httpx.post(f"{self.url}/v1/endpoints/{ENDPOINT}/predict",
                          params={"project": PROJECT}, json=body, timeout=30,
                          headers={"Authorization": f"Bearer {self.tokens[who]}"})


def _rows(st: DemoState, story: ServingStory, n: int, offset: int = 0) -> list[dict[str, Any]]:
    story.server.wait_healthy()  # without bubblewrap: "install bubblewrap", in every step
    d = st.ws.deployments.status(st.admin, PROJECT, ENDPOINT).active
    expect(d is not None, f"nothing in service on {ENDPOINT}")
    assert d is not None
    holdout = story.governance.models.data.holdout
    return holdout.slice(offset, n).select(list(d.schema.columns)).to_dicts()


def deploy(st: DemoState, story: ServingStory) -> list[str]:
    ref = story.governance.models.ref()
    d = st.ws.deployments.deploy(st.admin, PROJECT, ref, ENDPOINT)
    expect(d.root_digest == story.governance.root_digest,
           "the deployed digest is not the one the committee approved")
    return [f"{d.ref} on endpoint {ENDPOINT} (#{d.seq}): release gate passed, signature and "
            f"scan re-verified, root sha256 {d.root_digest[:16]}… (the approved digest)",
            f"input schema from {d.schema.source}: {len(d.schema.fields)} fields"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(st: DemoState, name: str) -> str:
    st.ws.access.create_principal(st.admin, name, PrincipalKind.USER)
    st.ws.access.bind(st.admin, name, "consumer", PROJECT)
    return st.ws.access.create_token(st.admin, name).secret


@contextmanager
def demo_server(st: DemoState, master_key_b64: str) -> Iterator[DemoServer]:
    """Start ``bastion serve`` on the demo workspace now; stop it on exit.  Without
    bubblewrap nothing starts and the serving steps fail saying so (never unsandboxed)."""
    server = DemoServer()
    if shutil.which("bwrap") is None:
        server.missing = ("model workers run in a bubblewrap sandbox and bwrap is missing: "
                          "install bubblewrap (apt-get install bubblewrap)")
        yield server
        return
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_HOME": str(st.ws.home), "BASTION_MASTER_KEY": master_key_b64,
                **_SERVER_ENV})
    server.url, server.log = f"http://127.0.0.1:{port}", st.work / f"bastion-serve-{port}.log"
    with open(server.log, "wb") as out:
        server.proc = subprocess.Popen(
            [sys.executable, "-c", "from bastion.cli.main import run; run()", "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield server
    finally:
        _stop(server.proc)


def serve(st: DemoState, story: ServingStory) -> list[str]:
    started = time.monotonic()
    story.server.wait_healthy()
    healthy = time.monotonic()
    story.tokens = {n: _token(st, n) for n in ("loan-app", "flood-bot", "branch-office")}
    rows = _rows(st, story, 3)
    r = story.post({"rows": rows})
    answered = time.monotonic()
    expect(r.status_code == 200, f"prediction refused: {r.status_code} {r.text[:200]}")
    body = r.json()
    expect(body["model"] == story.governance.models.ref(), f"served {body['model']}")
    labels = [p["label"] for p in body["predictions"]]
    expect(len(labels) == 3, f"{len(labels)} answers for 3 rows")
    return [f"bastion serve on {story.url}: POST /v1/endpoints/{ENDPOINT}/predict → 200",
            f"{body['model']} answered {labels} from a bubblewrap-sandboxed worker "
            "(no network, read-only root, only its verified artifact mounted)",
            f"scores rounded to policy precision: {body['predictions'][0].get('scores')}",
            f"waited {healthy - started:.1f} s for the server (started before the model "
            f"steps); first answer (artifact verified, staged, worker started) "
            f"{answered - healthy:.1f} s later"]


def bad_input(st: DemoState, story: ServingStory) -> list[str]:
    row = _rows(st, story, 1)[0]
    row["Income"] = "lots"
    before = _audited(st, "predict.refused")
    r = story.post({"rows": [row]})
    expect(r.status_code == 422, f"a wrong-typed Income got {r.status_code}")
    body = r.json()
    expect(body.get("field") == "rows[0].Income", f"the 422 names {body.get('field')!r}")
    expect(_audited(st, "predict.refused") > before, "the refused input was not audited")
    return [f"422 {body.get('error')}: field {body['field']} — {body.get('reason')}",
            "audited as predict.refused; the worker never saw the row"]


def flood(st: DemoState, story: ServingStory) -> list[str]:
    rows = _rows(st, story, FLOOD, offset=600)  # distinct rows: the live sample stays honest
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=20)) as c, \
            ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda row: c.post(
            f"{story.url}/v1/endpoints/{ENDPOINT}/predict", params={"project": PROJECT},
            json={"row": row}, headers={"Authorization": f"Bearer {story.tokens['flood-bot']}"}),
            rows))
    throttled = [a for a in answers if a.status_code == 429]
    codes = sorted({a.status_code for a in answers})
    expect(bool(throttled), f"{FLOOD} concurrent requests from one token, none throttled "
                            f"(statuses {codes})")
    first = throttled[0]
    expect(first.headers.get("Retry-After", "").isdigit(), "429 without Retry-After")
    expect(first.json().get("error") == "rate_limited", f"429 error {first.json().get('error')}")
    other = story.post({"row": rows[0]}, who="loan-app")
    expect(other.status_code == 200, f"another client got {other.status_code} during the flood")
    return [f"{len(throttled)}/{FLOOD} requests from flood-bot → 429 rate_limited, "
            f"Retry-After {first.headers['Retry-After']} s",
            "loan-app kept being served (limits are per principal)"]


def _audited(st: DemoState, action: str) -> int:
    return len(st.ws.audit.query(AuditQuery(action=action)))


def ssrf_webhook(st: DemoState, story: ServingStory) -> list[str]:
    before = _audited(st, "alert.webhook.refused")
    try:
        st.ws.alerts.add_webhook(st.admin, PROJECT, "http://169.254.169.254/latest/meta-data/")
    except WebhookRefused as e:
        expect("link-local" in e.message, f"refused for another reason: {e.message}")
        expect(_audited(st, "alert.webhook.refused") == before + 1,
               "the refused webhook was not audited")
        return [f"refused: {e.message[:150]}", "audited as alert.webhook.refused"]
    raise DemoFailed("a webhook to the cloud metadata address was accepted")


def _shifted(st: DemoState, story: ServingStory) -> list[dict[str, Any]]:
    story.server.wait_healthy()
    d = st.ws.deployments.status(st.admin, PROJECT, ENDPOINT).active
    assert d is not None
    spec = {f.name: f for f in d.schema.fields}
    rows = _rows(st, story, SHIFTED_ROWS, offset=100)
    for r in rows:  # income and loan amounts move up, inside the contract's ranges
        for name, factor in (("Income", 1.8), ("Amount", 1.5)):
            f = spec[name]
            top = f.maximum if f.maximum is not None else float("inf")
            value = min(r[name] * factor, top)
            r[name] = int(value) if f.kind is FieldKind.INTEGER else float(value)
    return rows


def drift_alert(st: DemoState, story: ServingStory) -> list[str]:
    rows = _shifted(st, story)
    for i in range(0, len(rows), 50):
        r = story.post({"rows": rows[i:i + 50]}, who="branch-office")
        expect(r.status_code == 200, f"shifted batch refused: {r.status_code} {r.text[:200]}")
    result = None
    deadline = time.monotonic() + 20  # the server writes its sample every ~2 s
    while time.monotonic() < deadline:
        result = st.ws.monitor.run(st.admin, PROJECT, ENDPOINT)
        if result.rows >= SHIFTED_ROWS:
            break
        time.sleep(0.5)
    expect(result is not None and result.alert_id is not None,
           f"no drift alert on shifted traffic: {result}")
    assert result is not None and result.alert_id is not None
    alert = st.ws.alerts.show(st.admin, PROJECT, result.alert_id)
    expect(alert.kind == "drift", f"alert kind {alert.kind}")
    expect({"Income", "Amount"} <= set(result.drifted), f"drifted: {result.drifted}")
    return [f"{alert.kind} alert {alert.id[:12]}… ({alert.severity.value}): {alert.summary}",
            f"live sample of {result.rows} rows (encrypted at rest) vs {result.reference}",
            "the release gate's drift rule now counts this open alert"]


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


SERVING: tuple[tuple[str, Callable[[DemoState, ServingStory], list[str]]], ...] = (
    ("deploy the approved model through the release gate", deploy),
    ("gateway serves predictions from a sandboxed worker", serve),
    ("bad input refused: 422 names the field", bad_input),
    ("a flood from one token throttled: 429 with Retry-After", flood),
    ("webhook to the cloud metadata address refused (SSRF)", ssrf_webhook),
    ("shifted live traffic raises a drift alert", drift_alert),
)


def run_serving(r: Runner, st: DemoState, governance: GovernanceStory, server: DemoServer,
                extra: Callable[[Runner, ServingStory], None] | None = None) -> None:
    """Every serving step against ``server``; ``extra`` runs more steps (the canary) while
    the server is up, before the drift step."""
    story = ServingStory(governance, server)
    for name, control in SERVING[:-1]:
        r.step("serving", name, partial(control, st, story))
    if extra is not None:
        extra(r, story)
    name, control = SERVING[-1]
    r.step("serving", name, partial(control, st, story))


__all__ = ["SERVING", "DemoServer", "ServingStory", "demo_server", "run_serving"]
