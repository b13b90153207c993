"""The durable alert outbox, killed at its named steps and raced by two senders, with a
real HTTP receiver on loopback (allowed only through the guard's test-only argument).

- killed between storing the alert and delivering it: the deliveries were written in the
  alert's transaction, so a sender started afterwards delivers them;
- killed between the POST and the record of its outcome: the row stays claimed until
  its lease ends (no other sender touches it meanwhile), then it is sent again with the
  *same* delivery id (at least once; receivers deduplicate by ``X-Bastion-Delivery``);
- two replicas' senders (several threads each) on one database send every pending
  delivery exactly once;
- the gateway's monitoring loop starts the sender, which resumes what is pending.

Each on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alert_receiver import Receiver
from outbox_child import LEASE
from test_alerts import alert_service, loopback_alerts

from bastion.serving._adapters.sql_alerts import outbox
from bastion.serving.alerts import AlertKind, AlertService, Severity
from bastion.serving.delivery import DELIVERY_HEADER, Deliveries
from bastion.serving.live import LiveSampler
from bastion.serving.webhooks import TargetGuard, verify_signature

P = "default"
CHILD = Path(__file__).with_name("outbox_child.py")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def _child(ws: Any, master_key_b64: str, action: str, crash_at: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(BASTION_MASTER_KEY=master_key_b64, BASTION_TEST_CRASH_AT=crash_at,
               PYTHONPATH=os.pathsep.join([str(CHILD.parent), env.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, str(CHILD), str(ws.home), ws.db_url, action],
                       env=env, capture_output=True, text=True, timeout=120)
    return p.returncode


def _rows(ws: Any) -> list[dict[str, Any]]:
    with ws.ws.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.select(outbox)).all()]


def test_crash_between_alert_insert_and_delivery_still_delivers(
        workspace: Any, master_key_b64: str, receiver: Receiver) -> None:
    ws, admin = workspace.ws, workspace.admin
    svc = loopback_alerts(ws)
    hook, secret = svc.add_webhook(admin, P, receiver.url + "/hook")
    code = _child(workspace, master_key_b64, "raise", "alerts.raise.after_store")
    assert code == -signal.SIGKILL
    [alert] = svc.alerts(admin, P)
    [row] = _rows(workspace)  # stored with the alert, in its transaction
    assert row["status"] == "pending" and row["alert_id"] == alert.id and receiver.got == []
    svc.deliveries.start()  # a sender starting later resumes what is pending
    assert svc.deliveries.wait_idle(10)
    [got] = receiver.got
    assert got.headers[DELIVERY_HEADER] == row["id"] == json.loads(got.body)["delivery"]
    assert verify_signature(secret, got.body, int(got.headers["X-Bastion-Timestamp"]),
                            got.headers["X-Bastion-Signature"])
    log = svc.delivery_log(admin, P, alert.id)
    assert [(d["status"], d["attempts"], d["webhook_id"]) for d in log] == [
        ("delivered", 1, hook.id)]


def test_crash_between_send_and_outcome_record_redelivers_with_the_same_delivery_id(
        workspace: Any, master_key_b64: str, receiver: Receiver) -> None:
    ws, admin = workspace.ws, workspace.admin
    svc = loopback_alerts(ws, lease=LEASE, timeout=1.0)
    svc.add_webhook(admin, P, receiver.url + "/hook")
    code = _child(workspace, master_key_b64, "raise", "alerts.delivery.after_send")
    assert code == -signal.SIGKILL and len(receiver.got) == 1  # sent, outcome not recorded
    [row] = _rows(workspace)
    assert row["status"] == "pending" and row["claimed_by"].startswith("child/")
    assert svc.deliveries.tick() == 0  # leased: no second send while it may be in flight
    assert len(receiver.got) == 1
    time.sleep(LEASE + 0.2)
    assert svc.deliveries.tick() == 1  # the lease ended: claimed again and sent again
    first, second = receiver.got
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER] == row["id"]
    assert first.body == second.body
    [d] = svc.delivery_log(admin, P, row["alert_id"])
    assert d["status"] == "delivered" and d["attempts"] == 2


class _Stored(Deliveries):
    """The process that raised the alerts sends nothing itself (like a CLI that exited)."""

    def start(self) -> None:
        pass


def test_two_gateway_replicas_racing_on_one_database_send_each_delivery_once(
        workspace: Any, receiver: Receiver) -> None:
    ws, admin = workspace.ws, workspace.admin
    guard = TargetGuard(unsafe_allow_loopback_for_tests=True)
    raising = alert_service(ws, guard, sender_class=_Stored)
    for i in range(5):
        raising.add_webhook(admin, P, receiver.url + f"/h{i}")
    for e in range(4):
        raising.raise_alert(P, f"ep{e}", AlertKind.DRIFT, Severity.WARNING, "x", {})
    replicas = [alert_service(ws, guard), alert_service(workspace.reopen(), guard)]
    receiver.delay = 0.02
    errors: list[BaseException] = []

    def work(svc: AlertService) -> None:
        try:
            while svc.deliveries.tick():
                pass
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(r,)) for r in replicas for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = Counter(g.headers[DELIVERY_HEADER] for g in receiver.got)
    assert len(ids) == 20 and set(ids.values()) == {1}, ids.most_common(3)
    rows = _rows(workspace)
    assert {(r["status"], r["attempts"]) for r in rows} == {("delivered", 1)}
    assert {r["id"] for r in rows} == set(ids)


def test_removed_webhook_pending_delivery_ends_failed_unsent(
        workspace: Any, receiver: Receiver) -> None:
    ws, admin = workspace.ws, workspace.admin
    svc = loopback_alerts(ws)
    raising = alert_service(ws, TargetGuard(unsafe_allow_loopback_for_tests=True),
                            sender_class=_Stored)
    hook, _ = svc.add_webhook(admin, P, receiver.url + "/gone")
    alert, _ = raising.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    svc.remove_webhook(admin, P, hook.id)
    assert svc.deliveries.tick() == 1
    assert receiver.got == []
    [d] = svc.delivery_log(admin, P, alert.id)
    assert d["status"] == "failed" and "removed" in str(d["error"])


def test_gateway_monitor_loop_resumes_pending_deliveries_at_start(
        sqlite_workspace: Any, receiver: Receiver) -> None:
    """Deliveries left pending (a process that stored them and exited) are sent once the
    gateway's monitoring loop starts, without any new alert to wake the sender."""
    ws, admin = sqlite_workspace.ws, sqlite_workspace.admin
    guard = TargetGuard(unsafe_allow_loopback_for_tests=True)
    raising = alert_service(ws, guard, sender_class=_Stored)
    raising.add_webhook(admin, P, receiver.url + "/hook")
    alert, _ = raising.raise_alert(P, "scoring", AlertKind.DRIFT, Severity.WARNING, "x", {})
    monitor = ws.monitor.with_alerts(loopback_alerts(ws))

    async def gateway_for_a_while() -> None:
        task = asyncio.create_task(monitor.follow(LiveSampler(), flush_seconds=0.05,
                                                  check_seconds=3600))
        deadline = time.monotonic() + 10
        while not receiver.got and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(gateway_for_a_while())
    assert [g.path for g in receiver.got] == ["/hook"]
    [d] = raising.delivery_log(admin, P, alert.id)
    assert d["status"] == "delivered"
