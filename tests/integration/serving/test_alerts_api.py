"""Alerts and webhooks over REST, through a real ``bastion serve`` on loopback (SQLite):
the same service calls, permissions and audit as the CLI; the attacks by name (a viewer
acking, another project's principal reading, SSRF webhook targets, alert ids with path
tricks, oversized and deeply nested bodies).

Alerts are raised, and delivered to a real loopback receiver, by an alert service in the
test process on the same workspace (``test_alerts.loopback_alerts``; the server only serves
the API): the guard allowing loopback is a constructor argument the server never gets."""

from __future__ import annotations

import base64
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from alert_receiver import Receiver
from serving_fixtures import LiveServer, start_bastion_serve
from test_alerts import loopback_alerts

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving.alerts import AlertKind, AlertService, Severity
from bastion.workspace import Bastion

P = "default"
PUBLIC_HOOK = "https://93.184.216.34/services/T0/B0/s3cr3tPath"  # an IP literal: no DNS


@dataclass
class Env:
    ws: Bastion
    admin: Actor
    srv: LiveServer
    tokens: dict[str, str]  # principal -> token
    raiser: AlertService  # delivers to loopback (test-only guard), same database
    receiver: Receiver

    def call(self, method: str, path: str, who: str = "admin", **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        return httpx.request(method, f"{self.srv.url}/v1/projects/{P}{path}",
                             headers=headers, timeout=30, **kw)

    def raw(self, method: str, path: str, who: str = "admin") -> tuple[int, bytes]:
        """A request whose path is sent byte for byte (no client-side normalisation)."""
        parts = urlsplit(self.srv.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.putheader("Authorization", f"Bearer {self.tokens[who]}")
            conn.putheader("Content-Length", "0")
            conn.endheaders()
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def alert(self, endpoint: str) -> str:
        a, _ = self.raiser.raise_alert(P, endpoint, AlertKind.DRIFT, Severity.WARNING,
                                       f"{endpoint} moved", {"reference": "r", "n": 1})
        return a.id

    def audit(self, action: str, actor: str | None = None) -> list[Any]:
        return list(self.ws.audit.query(AuditQuery(action=action, actor=actor)))


def _principal(ws: Bastion, admin: Actor, name: str, role: str, project: str) -> str:
    ws.access.create_principal(admin, name, PrincipalKind.USER)
    ws.access.bind(admin, name, role, project)
    return ws.access.create_token(admin, name).secret


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("alerts-api")
    ws, issued = Bastion.init(home / "ws", MasterKeySource.from_env_key(key))
    admin = ws.access.authenticate(issued.secret)
    ws.access.create_project(admin, "other")
    tokens = {"admin": issued.secret,
              "dora": _principal(ws, admin, "dora", "deployer", P),
              "vic": _principal(ws, admin, "vic", "auditor", P),  # reads, may not ack
              "eve": _principal(ws, admin, "eve", "ml-engineer", P),
              "olga": _principal(ws, admin, "olga", "admin", "other")}  # another project
    raiser = loopback_alerts(ws)  # the delivery wiring test_alerts.py keeps current
    receiver = Receiver().start()
    srv = start_bastion_serve(ws.home, key, {})
    try:
        yield Env(ws, admin, srv, tokens, raiser, receiver)
    finally:
        srv.stop()
        receiver.stop()
        ws.close()


def test_list_filters_by_endpoint_and_open_with_a_bounded_page(env: Env) -> None:
    ids = [env.alert(f"page-{i}") for i in range(3)]
    acked = env.alert("page-acked")
    env.raiser.ack(env.admin, P, acked, note="done")
    r = env.call("GET", "/alerts", params={"limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["limit"] == 2 and page["more"] is True and len(page["alerts"]) == 2
    r = env.call("GET", "/alerts", who="dora", params={"endpoint": "page-1"})
    assert [a["id"] for a in r.json()["alerts"]] == [ids[1]] and not r.json()["more"]
    first = r.json()["alerts"][0]
    assert first["kind"] == "drift" and first["evidence"] == {"reference": "r", "n": 1}
    assert first["open"] is True and first["severity"] == "warning"
    r = env.call("GET", "/alerts", params={"open": "true", "limit": 500})
    listed = {a["id"] for a in r.json()["alerts"]}
    assert set(ids) <= listed and acked not in listed
    for bad in ({"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"endpoint": "../x"},
                {"endpoint": "a" * 101}):
        r = env.call("GET", "/alerts", params=bad)
        assert r.status_code == 422 and r.json()["problems"][0]["where"].startswith("query."), \
            (bad, r.text)


def test_show_gives_the_alert_and_its_delivery_log(env: Env) -> None:
    hook, _ = env.raiser.add_webhook(env.admin, P, env.receiver.url + "/hook",
                                     endpoint="delivered")
    try:
        alert_id = env.alert("delivered")
        assert env.raiser.deliveries.wait_idle(10)
    finally:
        env.raiser.remove_webhook(env.admin, P, hook.id)
    r = env.call("GET", f"/alerts/{alert_id}", who="eve")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alert"]["id"] == alert_id and body["alert"]["endpoint"] == "delivered"
    assert [(d["webhook_id"], d["status"], d["attempts"]) for d in body["deliveries"]] == [
        (hook.id, "delivered", 1)]
    r = env.call("GET", "/alerts/" + "0" * 32)
    assert r.status_code == 404 and r.json()["error"] == "alert_not_found", r.text
    reads = env.audit("alert.read", "eve")
    assert reads and all(e.outcome == "allowed" for e in reads)


def test_ack_closes_the_alert_with_its_note_and_a_second_ack_is_refused(env: Env) -> None:
    alert_id = env.alert("to-ack")
    r = env.call("POST", f"/alerts/{alert_id}/ack", who="dora", json={"note": "retrained"})
    assert r.status_code == 200, r.text
    assert r.json()["open"] is False and r.json()["acknowledged_by"] == "dora"
    assert r.json()["ack_note"] == "retrained"
    r = env.call("POST", f"/alerts/{alert_id}/ack", who="dora")
    assert r.status_code == 404 and "already acknowledged" in r.json()["message"], r.text
    assert env.audit("alert.acknowledged", "dora")[-1].outcome == "ok"
    assert env.audit("alert.ack.refused", "dora")[-1].outcome == "failed"
    for bad in ({"note": "x" * 501}, {"note": "x", "extra": 1}, {"note": 7}):
        r = env.call("POST", f"/alerts/{env.alert('bad-ack')}/ack", json=bad)
        assert r.status_code == 422 and r.json()["problems"][0]["where"].startswith("body"), \
            (bad, r.text)


def test_viewer_acking_an_alert_is_refused_with_403_and_audited(env: Env) -> None:
    alert_id = env.alert("viewer-ack")
    assert env.call("GET", f"/alerts/{alert_id}", who="vic").status_code == 200  # may read
    r = env.call("POST", f"/alerts/{alert_id}/ack", who="vic", json={"note": "mine now"})
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "forbidden" and "vic may not alert.ack" in body["message"]
    assert "alert.ack" in body["hint"]
    assert env.raiser.show(env.admin, P, alert_id).open  # nothing changed
    denied = env.audit("alert.ack", "vic")
    assert denied and denied[-1].outcome == "denied" and alert_id in denied[-1].resource
    for who, method, path in (("vic", "POST", "/alerts/webhooks"),
                              ("dora", "POST", "/alerts/webhooks"),
                              ("eve", "DELETE", "/alerts/webhooks/" + "0" * 32)):
        kw = {"json": {"url": PUBLIC_HOOK}} if method == "POST" else {}
        r = env.call(method, path, who=who, **kw)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (who, r.text)
        assert env.audit("alert.webhook", who)[-1].outcome == "denied"


def test_principal_of_another_project_reading_alerts_is_answered_as_not_found(
        env: Env) -> None:
    alert_id = env.alert("foreign-read")
    answers = [env.call("GET", "/alerts", who="olga"),
               env.call("GET", f"/alerts/{alert_id}", who="olga"),
               env.call("GET", "/alerts/" + "f" * 32, who="olga"),  # no such alert
               env.call("GET", "/alerts/webhooks", who="olga"),
               env.call("POST", f"/alerts/{alert_id}/ack", who="olga", json={})]
    assert [r.status_code for r in answers] == [404] * 5, [r.text for r in answers]
    # an existing and a missing alert look alike (no probe learns which ids exist)
    shown, missing = answers[1].json(), answers[2].json()
    assert shown["error"] == missing["error"] == "not_found"
    assert shown["message"].replace(alert_id, "ID") == missing["message"].replace("f" * 32,
                                                                                  "ID")
    assert "foreign-read" not in json.dumps([r.json() for r in answers])
    assert env.raiser.show(env.admin, P, alert_id).open
    denied = env.audit("alert.read", "olga") + env.audit("alert.ack", "olga")
    assert len(denied) == 5 and {e.outcome for e in denied} == {"denied"}


SSRF = {"metadata": "http://169.254.169.254/latest/meta-data/",
        "mapped_loopback": "http://[::ffff:127.0.0.1]/hook",
        "decimal_loopback": "http://2130706433/hook"}


@pytest.mark.parametrize("attack", sorted(SSRF))
def test_webhook_to_an_internal_address_via_the_api_is_refused_naming_the_field(
        env: Env, attack: str) -> None:
    before = len(env.audit("alert.webhook.refused"))
    r = env.call("POST", "/alerts/webhooks", json={"url": SSRF[attack]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "webhook_refused" and body["field"] == "url"
    assert "refused" in body["message"] and body.get("hint")
    assert env.ws.alerts.webhooks(env.admin, P) == []  # nothing stored
    refused = env.audit("alert.webhook.refused")
    assert len(refused) == before + 1 and refused[-1].outcome == "failed"


def test_webhook_added_shows_its_secret_once_and_lists_without_the_path(env: Env) -> None:
    r = env.call("POST", "/alerts/webhooks", json={"url": PUBLIC_HOOK, "endpoint": "fraud"})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    hook = created["webhook"]
    assert bytes.fromhex(created["secret"]) == env.ws.webhook_secret(hook["id"])
    assert hook["endpoint"] == "fraud" and hook["url"] == "https://93.184.216.34/…"
    listed = env.call("GET", "/alerts/webhooks", who="eve")  # alert.read: no path, no secret
    assert listed.status_code == 200 and listed.json() == [hook]
    assert "s3cr3tPath" not in listed.text and created["secret"] not in listed.text
    r = env.call("DELETE", f"/alerts/webhooks/{hook['id']}")
    assert r.status_code == 204 and r.content == b""
    r = env.call("DELETE", f"/alerts/webhooks/{hook['id']}")
    assert r.status_code == 404 and r.json()["error"] == "alert_not_found"
    assert env.call("GET", "/alerts/webhooks").json() == []
    added = env.audit("alert.webhook.added")[-1]
    assert added.outcome == "ok" and hook["id"] in added.details and "s3cr3t" not in added.details
    assert env.audit("alert.webhook.removed")[-1].outcome == "ok"
    r = env.call("POST", "/alerts/webhooks", json={"url": PUBLIC_HOOK, "endpoint": "a/../b"})
    assert r.status_code == 422 and r.json()["problems"][0]["where"] == "body.endpoint"


TRICKS = ["..", "%2e%2e", "..%2fwebhooks", "%2e%2e%2f%2e%2e%2fobjects", "x%00y", "a%0ab",
          "%EF%BC%A1", "a" * 65, "*", "x;y", "x%20y"]


@pytest.mark.parametrize("trick", TRICKS)
def test_alert_id_with_path_tricks_is_refused_before_any_lookup(env: Env, trick: str) -> None:
    before = len(list(env.ws.audit.query(AuditQuery(actor="vic"))))
    for method, path in (("GET", f"/v1/projects/{P}/alerts/{trick}"),
                         ("POST", f"/v1/projects/{P}/alerts/{trick}/ack"),
                         ("DELETE", f"/v1/projects/{P}/alerts/webhooks/{trick}")):
        status, body = env.raw(method, path, who="vic")
        assert status in (404, 405, 422), (method, trick, status, body[:300])
        answer = json.loads(body)
        assert answer["error"] in ("invalid_input", "not_found", "method_not_allowed")
    # refused before the service ran: no decision, nothing of the trick in the audit log
    assert len(list(env.ws.audit.query(AuditQuery(actor="vic")))) == before


def test_unauthenticated_oversized_and_deeply_nested_requests_are_refused(env: Env) -> None:
    r = httpx.get(f"{env.srv.url}/v1/projects/{P}/alerts", timeout=30)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    big = b'{"url": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    r = env.call("POST", "/alerts/webhooks", content=big,
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large", r.text[:300]
    deep = b'{"note": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    alert_id = env.alert("deep")
    r = env.call("POST", f"/alerts/{alert_id}/ack", content=deep,
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "parsing the body" in r.json()["message"], r.text[:300]
    assert env.raiser.show(env.admin, P, alert_id).open
    assert httpx.get(f"{env.srv.url}/health", timeout=10).status_code == 200  # still serving


def test_openapi_describes_the_alert_routes_and_their_models(env: Env) -> None:
    r = httpx.get(f"{env.srv.url}/v1/openapi.json", timeout=30,
                  headers={"Authorization": f"Bearer {env.tokens['admin']}"})
    doc = r.json()
    base = "/v1/projects/{project}/alerts"
    assert set(doc["paths"][base]) == {"get"}
    assert set(doc["paths"][base + "/webhooks"]) == {"get", "post"}
    assert set(doc["paths"][base + "/webhooks/{webhook_id}"]) == {"delete"}
    assert set(doc["paths"][base + "/{alert_id}"]) == {"get"}
    assert set(doc["paths"][base + "/{alert_id}/ack"]) == {"post"}
    schemas = doc["components"]["schemas"]
    assert {"AlertPage", "AlertOut", "AlertDetail", "AckIn", "WebhookIn", "WebhookOut",
            "WebhookCreated", "DeliveryOut"} <= set(schemas)
    created = doc["paths"][base + "/webhooks"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith(
        "/WebhookCreated")
    assert schemas["WebhookIn"]["properties"]["url"]["maxLength"] == 2048
