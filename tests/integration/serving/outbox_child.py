"""A separate process for the outbox crash tests: opens the workspace, then raises an
alert (``raise``) and lets its sender deliver, or only ticks the sender (``send``).  Run
with ``BASTION_TEST_CRASH_AT`` to be SIGKILLed at a named step."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving._adapters.sql_alerts import SqlAlertOutbox, SqlAlertRepository
from bastion.serving._adapters.webhook_http import HttpPoster
from bastion.serving.alerts import AlertKind, AlertService, Severity, delivery_audit
from bastion.serving.delivery import Deliveries, DeliveryOptions
from bastion.serving.webhooks import TargetGuard
from bastion.workspace import Bastion

LEASE = 2.0


def main() -> None:
    home, db_url, action = sys.argv[1:4]
    ws = Bastion.open(Path(home), MasterKeySource.from_env_key(os.environ["BASTION_MASTER_KEY"]),
                      database_url=db_url)
    guard = TargetGuard(unsafe_allow_loopback_for_tests=True)
    sender = Deliveries(HttpPoster(), guard, SqlAlertOutbox(ws.engine), ws.webhook_secret,
                        delivery_audit(ws.access),
                        DeliveryOptions(timeout=1.0, lease=LEASE, backoff=0.05), name="child")
    svc = AlertService(ws.access, SqlAlertRepository(ws.engine), ws.webhook_secret, sender,
                       guard)
    try:
        if action == "raise":
            svc.raise_alert("default", "scoring", AlertKind.DRIFT, Severity.WARNING, "moved",
                            {"n": 1})
            sender.wait_idle(10)
        else:
            sender.tick()
    finally:
        ws.close()


if __name__ == "__main__":
    main()
