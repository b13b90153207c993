"""The alert store on real SQLite and PostgreSQL, and webhook deliveries (SQLite: the
HTTP behaviour does not depend on the database) to a real HTTP receiver on loopback
(allowed only through the guard's test-only constructor argument): one open alert per
endpoint and kind, acknowledgement, signatures, retries with backoff, redirects not
followed, SSRF refusals at registration audited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alert_receiver import Receiver

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied
from bastion.serving._adapters.sql_alerts import (
    alerts,
    deliveries,
    outbox,
    webhooks,
    windows,
)
from bastion.serving._adapters.webhook_http import HttpPoster
from bastion.serving.alerts import AlertKind, AlertService, Severity
from bastion.serving.delivery import Deliveries, DeliveryOptions, Poster
from bastion.serving.errors import AlertNotFound, WebhookRefused
from bastion.serving.webhooks import TargetGuard, verify_signature

P = "default"


def alert_service(ws: Any, guard: TargetGuard, poster: Poster | None = None,
                  sender_class: type[Deliveries] = Deliveries,
                  **options: Any) -> AlertService:
    """The workspace's alert service with another guard / poster / delivery options (its
    sender is stopped by ``ws.close()``, like the workspace's own)."""
    opts = DeliveryOptions(**{"backoff": 0.05, "timeout": 2.0, **options})
    service: AlertService = ws.alert_service(guard, poster, opts, sender_class)
    return service


def loopback_alerts(ws: Any, **options: Any) -> AlertService:
    """The workspace's alert service, but allowed to deliver to a loopback receiver."""
    return alert_service(ws, TargetGuard(unsafe_allow_loopback_for_tests=True), **options)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def test_alert_tables_match_the_migration_and_refuse_a_second_open_alert(
        workspace: Any) -> None:
    inspector = sa.inspect(workspace.ws.engine)
    for table in (alerts, webhooks, deliveries, windows, outbox):
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == set(table.c.keys()), table.name
    # and the database itself refuses a second open alert of one kind on one endpoint
    row = {"project": P, "endpoint": "scoring", "kind": "drift", "severity": "warning",
           "summary": "s", "evidence": "{}", "created_at": "t", "last_seen_at": "t",
           "occurrences": 1, "open_slot": "open"}
    with workspace.ws.engine.begin() as c:
        c.execute(alerts.insert().values(id="a1", **row))
        c.execute(alerts.insert().values(id="a2", **{**row, "open_slot": "a2"}))  # acked
    with pytest.raises(sa.exc.IntegrityError), workspace.ws.engine.begin() as c:
        c.execute(alerts.insert().values(id="a3", **row))


def test_repeat_detection_counts_on_the_open_alert_and_ack_closes_it(workspace: Any) -> None:
    ws, admin = workspace.ws, workspace.admin
    svc = ws.alerts
    a, new = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {"n": 1})
    b, again = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {"n": 2})
    assert new and not again and b.id == a.id and b.occurrences == 2
    other, fresh = svc.raise_alert(P, "other", AlertKind.DRIFT, Severity.WARNING, "y", {})
    assert fresh and other.id != a.id  # dedup is per endpoint
    assert [x.id for x in svc.alerts(admin, P, endpoint="scoring", only_open=True)] == [a.id]
    done = svc.ack(admin, P, a.id, note="retraining")
    assert not done.open and done.acknowledged_by == admin.name
    assert svc.alerts(admin, P, endpoint="scoring", only_open=True) == []
    with pytest.raises(AlertNotFound, match="already acknowledged"):
        svc.ack(admin, P, a.id)
    c, reopened = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert reopened and c.id != a.id  # after an ack the same detection opens a new one
    raised = ws.audit.query(AuditQuery(action="alert.raised"))
    assert {json.loads(e.details)["alert"] for e in raised} >= {a.id, c.id}


def test_consumer_acknowledging_an_alert_is_refused_and_audited(workspace: Any) -> None:
    ws, admin = workspace.ws, workspace.admin
    ws.access.create_principal(admin, "app", PrincipalKind.USER)
    ws.access.bind(admin, "app", "consumer", P)
    app = ws.access.authenticate(ws.access.create_token(admin, "app").secret)
    a, _ = ws.alerts.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    with pytest.raises(AccessDenied):
        ws.alerts.ack(app, P, a.id)
    with pytest.raises(AccessDenied):
        ws.alerts.alerts(app, P)
    assert ws.alerts.show(admin, P, a.id).open  # nothing changed
    denied = ws.audit.query(AuditQuery(action="alert.ack", actor="app"))
    assert denied and denied[-1].outcome == "denied"


def test_deployer_adding_a_webhook_and_consumer_running_the_monitor_are_refused(
        workspace: Any) -> None:
    ws, admin = workspace.ws, workspace.admin
    actors = {}
    for name, role in (("dora", "deployer"), ("app", "consumer")):
        ws.access.create_principal(admin, name, PrincipalKind.USER)
        ws.access.bind(admin, name, role, P)
        actors[name] = ws.access.authenticate(ws.access.create_token(admin, name).secret)
    with pytest.raises(AccessDenied):  # webhooks make the server send requests: admin only
        ws.alerts.add_webhook(actors["dora"], P, "https://hooks.example.com/x")
    with pytest.raises(AccessDenied):
        ws.monitor.run(actors["app"], P, "scoring")
    assert ws.alerts.webhooks(admin, P) == []
    assert ws.audit.query(AuditQuery(action="alert.webhook", actor="dora"))[-1].outcome \
        == "denied"
    assert ws.audit.query(AuditQuery(action="monitor.run", actor="app"))[-1].outcome == "denied"


ATTACKS = ("http://127.0.0.1:8080/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
           "http://10.0.0.1/", "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/",
           "http://[::ffff:127.0.0.1]/", "http://evil@127.0.0.1/")


def test_webhook_to_an_internal_address_is_refused_at_registration_and_audited(
        workspace: Any) -> None:
    ws, admin = workspace.ws, workspace.admin
    for url in ATTACKS:
        with pytest.raises(WebhookRefused):
            ws.alerts.add_webhook(admin, P, url)  # the production guard: no allowance
    assert ws.alerts.webhooks(admin, P) == []
    refused = ws.audit.query(AuditQuery(action="alert.webhook.refused"))
    assert len(refused) == len(ATTACKS)
    assert all(e.outcome == "failed" and "refused" in e.details for e in refused)


def test_webhook_delivery_is_signed_and_retried_with_backoff(sqlite_workspace: Any,
                                                            receiver: Receiver) -> None:
    ws, admin = sqlite_workspace.ws, sqlite_workspace.admin
    svc = loopback_alerts(ws)
    hook, secret = svc.add_webhook(admin, P, receiver.url + "/hook")
    receiver.statuses = [500, 503]  # two failures, then 200
    started = time.monotonic()
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.CRITICAL, "moved", {})
    assert svc.deliveries.wait_idle(10)
    assert len(receiver.got) == 3 and time.monotonic() - started >= 0.05 + 0.1
    last = receiver.got[-1]
    ts = int(last.headers["X-Bastion-Timestamp"])
    assert verify_signature(secret, last.body, ts, last.headers["X-Bastion-Signature"])
    assert not verify_signature(b"wrong" * 8, last.body, ts, last.headers["X-Bastion-Signature"])
    assert json.loads(last.body)["alert"]["id"] == alert.id
    assert secret == ws.webhook_secret(hook.id)  # recomputable from the keyring, not stored
    log = svc.delivery_log(admin, P, alert.id)
    assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 3)]


def test_webhook_gives_up_after_the_configured_attempts(sqlite_workspace: Any,
                                                       receiver: Receiver) -> None:
    svc = loopback_alerts(sqlite_workspace.ws, attempts=3)
    svc.add_webhook(sqlite_workspace.admin, P, receiver.url + "/down")
    receiver.statuses = [500] * 10
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert svc.deliveries.wait_idle(10)
    assert len(receiver.got) == 3
    [d] = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
    assert d["status"] == "failed" and d["attempts"] == 3 and "HTTP 500" in str(d["error"])


def test_redirect_to_a_private_address_is_not_followed(sqlite_workspace: Any,
                                                       receiver: Receiver) -> None:
    svc = loopback_alerts(sqlite_workspace.ws)
    svc.add_webhook(sqlite_workspace.admin, P, receiver.url + "/moved")
    receiver.statuses = [302]
    receiver.redirect_to = receiver.url + "/internal"  # loopback: followed, it would land
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert svc.deliveries.wait_idle(10)
    assert [g.path for g in receiver.got] == ["/moved"]  # never /internal
    [d] = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
    assert d["status"] == "failed" and "redirects are not followed" in str(d["error"])


def test_dns_rebinding_after_registration_is_refused_at_delivery(sqlite_workspace: Any,
                                                                receiver: Receiver) -> None:
    answers = {"hooks.example": ["93.184.216.34"]}
    svc = alert_service(sqlite_workspace.ws, TargetGuard(lambda host, port: answers[host]))
    svc.add_webhook(sqlite_workspace.admin, P, "http://hooks.example/hook")  # public now
    answers["hooks.example"] = ["127.0.0.1"]  # the attacker's DNS now answers loopback
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert svc.deliveries.wait_idle(10)
    [d] = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
    assert d["status"] == "refused" and "127.0.0.1" in str(d["error"])
    audited = sqlite_workspace.ws.audit.query(AuditQuery(action="alert.delivery_refused"))
    assert audited and alert.id in audited[-1].details


def test_many_webhooks_neither_block_the_caller_nor_get_dropped(sqlite_workspace: Any,
                                                                receiver: Receiver) -> None:
    svc = loopback_alerts(sqlite_workspace.ws, attempts=1, batch=2)
    for i in range(5):
        svc.add_webhook(sqlite_workspace.admin, P, receiver.url + f"/h{i}")
    receiver.delay = 0.2  # a slow receiver: the caller must not wait for it
    started = time.monotonic()
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert time.monotonic() - started < 0.5
    assert svc.deliveries.wait_idle(10)
    assert sorted(g.path for g in receiver.got) == [f"/h{i}" for i in range(5)]
    log = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
    assert [d["status"] for d in log] == ["delivered"] * 5


def test_cli_lists_and_acknowledges_alerts_and_refuses_a_metadata_webhook(
        sqlite_workspace: Any, master_key_b64: str) -> None:
    from serving_fixtures import run_cli

    ws = sqlite_workspace.ws
    a, _ = ws.alerts.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "moved", {})

    def cli(*args: str) -> tuple[int, str]:
        return run_cli(ws.home, master_key_b64, *args)

    code, out = cli("alerts", "list", "--open", "--json")
    assert code == 0 and [x["id"] for x in json.loads(out)] == [a.id], out
    code, out = cli("alerts", "ack", a.id, "--note", "looked at it")
    assert code == 0 and "acknowledged" in out, out
    assert ws.alerts.alerts(sqlite_workspace.admin, P, only_open=True) == []
    code, out = cli("alerts", "webhook", "add", "http://169.254.169.254/latest/meta-data/")
    assert code != 0 and "link-local" in out, out
    code, out = cli("monitor", "run", "scoring")
    assert code != 0 and "no model in service" in out, out


def test_receiver_answering_an_endless_gzip_bomb_cannot_hold_or_exhaust_the_sender(
        sqlite_workspace: Any, receiver: Receiver) -> None:
    svc = loopback_alerts(sqlite_workspace.ws)
    svc.add_webhook(sqlite_workspace.admin, P, receiver.url + "/bomb")
    receiver.endless = True  # 200, then a gzip body that never ends (1 MiB decoded a chunk)
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert svc.deliveries.wait_idle(10)  # the status line is enough: the body is not read
    [d] = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
    assert d["status"] == "delivered" and d["attempts"] == 1


def test_engineer_reading_webhooks_or_the_audit_cannot_learn_a_capability_url(
        sqlite_workspace: Any, receiver: Receiver) -> None:
    """Chat webhooks take the URL path as their only credential: an ml-engineer may list
    webhooks (alert.read), and the audit and delivery log are read by others, but none of
    them shows the path; deliveries still go to the whole URL."""
    ws, admin = sqlite_workspace.ws, sqlite_workspace.admin
    ws.access.create_principal(admin, "eve", PrincipalKind.USER)
    ws.access.bind(admin, "eve", "ml-engineer", P)
    eve = ws.access.authenticate(ws.access.create_token(admin, "eve").secret)
    svc = loopback_alerts(ws, attempts=1)
    secret_path = "/services/T0/B0/s3cr3tPath?token=abc"
    svc.add_webhook(admin, P, receiver.url + secret_path)
    receiver.statuses = [404]  # a failed delivery is audited with its error
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert svc.deliveries.wait_idle(10)
    assert [g.path for g in receiver.got] == [secret_path]
    [hook] = svc.webhooks(eve, P)
    assert hook.to_dict()["url"] == receiver.url + "/…"
    with pytest.raises(WebhookRefused) as refused:
        svc.add_webhook(admin, P, "http://10.0.0.1/services/T0/B0/s3cr3tPath")
    assert "private" in refused.value.message
    shown = json.dumps([hook.to_dict(), svc.delivery_log(admin, P, alert.id),
                        [e.details for e in ws.audit.query(AuditQuery())]])
    assert "s3cr3tPath" not in shown and "token=abc" not in shown


def test_receiver_dripping_its_answer_cannot_hold_the_sender_past_the_timeout(
        sqlite_workspace: Any, receiver: Receiver) -> None:
    svc = loopback_alerts(sqlite_workspace.ws, attempts=2, timeout=1.0)
    svc.add_webhook(sqlite_workspace.admin, P, receiver.url + "/slow")
    receiver.drip = True  # a header byte every 0.2 s: each read is quick, the answer never ends
    started = time.monotonic()
    alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    assert svc.deliveries.wait_idle(10)
    assert time.monotonic() - started < 2 * 1.0 + 0.05 + 2.0  # two attempts, backoff, slack
    [d] = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
    assert d["status"] == "failed" and d["attempts"] == 2
    assert "no answer within 1 s" in str(d["error"])


def test_receiver_dripping_its_answer_over_tls_cannot_hold_the_sender_past_the_timeout(
        sqlite_workspace: Any, tmp_path: Any) -> None:
    """https: the deadline must still end the connection once TLS has taken over (and
    detached) the TCP socket; the receiver completes the handshake, then drips."""
    import socket
    import ssl
    import threading

    from bastion.api.tls import make_self_signed

    cert, key = make_self_signed(tmp_path, "localhost")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        raw, _ = listener.accept()
        with server_ctx.wrap_socket(raw, server_side=True) as conn:
            try:
                conn.recv(65536)  # the request
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.is_set():
                    conn.sendall(b"z")
                    time.sleep(0.2)
            except OSError:  # the sender hung up
                pass

    threading.Thread(target=drip, daemon=True).start()
    try:
        ws = sqlite_workspace.ws
        guard = TargetGuard(unsafe_allow_loopback_for_tests=True)
        poster = HttpPoster(verify=ssl.create_default_context(cafile=str(cert)))
        svc = alert_service(ws, guard, poster, attempts=1, timeout=1.0)
        port = listener.getsockname()[1]
        svc.add_webhook(sqlite_workspace.admin, P, f"https://127.0.0.1:{port}/hook")
        started = time.monotonic()
        alert, _ = svc.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
        assert svc.deliveries.wait_idle(10)
        assert time.monotonic() - started < 1.0 + 2.0
        [d] = svc.delivery_log(sqlite_workspace.admin, P, alert.id)
        assert d["status"] == "failed" and "no answer within 1 s" in str(d["error"])
    finally:
        stop.set()
        listener.close()


def test_every_sender_thread_a_workspace_built_stops_when_it_closes(
        tmp_path: Path) -> None:
    """A sender left running after its workspace closed kept polling a dropped database
    (seen as endless 'webhook sender tick failed' in a test run): close() stops them all."""
    import base64
    import os

    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.workspace import Bastion

    ws, _ = Bastion.init(tmp_path / "ws", MasterKeySource.from_env_key(
        base64.b64encode(os.urandom(32)).decode()))
    services = [ws.alerts, loopback_alerts(ws), loopback_alerts(ws)]
    for svc in services:
        svc.deliveries.wake()  # starts its thread
    threads = [svc.deliveries._thread for svc in services]
    assert all(t is not None and t.is_alive() for t in threads)
    ws.close()
    assert not any(t is not None and t.is_alive() for t in threads)
