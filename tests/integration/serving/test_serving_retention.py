"""Retention of the prediction log, canary samples and the alert outbox on real SQLite and
PostgreSQL: pruned by the monitor's housekeeping in bounded chunks, never a running
canary's samples nor the log rows of its arms, a decided canary's samples only once its
decision is older than the retention, and never a pending delivery."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import ConfigurationError
from bastion.core.settings import BastionSettings
from bastion.serving._adapters.sql_alerts import outbox
from bastion.serving._adapters.sql_canary import canaries, samples
from bastion.serving._adapters.sql_repo import predictions
from bastion.serving.monitor import MonitorOptions
from bastion.serving.retention import RetentionOptions


def _ago(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat(
        timespec="milliseconds")


def _prediction(i: int, deployment: str, days: float) -> dict[str, Any]:
    return {"id": f"{deployment}-{i}", "request_id": f"r{i}", "project": "default",
            "endpoint": "scoring", "deployment_id": deployment, "model": "m", "version": 1,
            "rows": 1, "latency_ms": 1.0, "outcome": "ok", "features_digest": "f",
            "principal": "app", "created_at": _ago(days), "ood": 0}


def _canary(cid: str, state: str, ended_days: float | None) -> dict[str, Any]:
    return {"id": cid, "project": "default", "endpoint": f"ep-{cid}",
            "deployment_id": f"{cid}-canary", "stable_id": f"{cid}-stable", "weight": 10,
            "promote_after": 100, "sticky_header": None, "thresholds": "{}", "state": state,
            "row_version": 0, "created_at": _ago(60), "created_by": "admin",
            "ended_at": _ago(ended_days) if ended_days is not None else None}


def _sample(cid: str, i: int) -> dict[str, Any]:
    return {"id": f"{cid}-s{i}", "canary_id": cid, "arm": "canary", "request_id": f"r{i}",
            "principal": "app", "outcome": "ok", "latency_ms": 1.0, "rows": 1,
            "labels": "[]", "ood": 0, "created_at": _ago(45)}


def _delivery(did: str, status: str, days: float) -> dict[str, Any]:
    return {"id": did, "alert_id": f"a-{did}", "webhook_id": "w", "body": "{}",
            "status": status, "attempts": 1, "next_attempt_at": _ago(days),
            "claimed_by": None, "lease_until": None, "error": "", "created_at": _ago(days),
            "updated_at": _ago(days)}


def _ids(ws: Any, table: sa.Table) -> set[str]:
    with ws.engine.connect() as c:
        return set(c.execute(sa.select(table.c.id)).scalars())


def test_prediction_log_flood_is_pruned_in_bounded_chunks_sparing_running_canaries(
        workspace: Any) -> None:
    ws = workspace.ws
    with ws.engine.begin() as c:
        c.execute(predictions.insert(), [_prediction(i, "old", 40) for i in range(25)]
                  + [_prediction(i, "recent", 1) for i in range(3)]
                  + [_prediction(i, "live-canary", 40) for i in range(2)]
                  + [_prediction(i, "live-stable", 40) for i in range(2)])
        c.execute(canaries.insert(), [
            {**_canary("live", "running", None), "deployment_id": "live-canary",
             "stable_id": "live-stable"},
            _canary("gone", "rolled_back", 40),  # decided long ago: its samples go
            _canary("fresh", "promoted", 2),  # decided lately: kept until 30 days after
        ])
        c.execute(samples.insert(), [_sample(cid, i) for cid in ("live", "gone", "fresh")
                                     for i in range(12)])
        c.execute(outbox.insert(), [_delivery("sent-long-ago", "delivered", 40),
                                    _delivery("stuck", "pending", 40),
                                    _delivery("sent-lately", "failed", 2)])
    options = MonitorOptions(log_retention=RetentionOptions(days=30, chunk=10, max_chunks=2))
    monitor = ws.monitor.with_alerts(ws.alerts, options)

    first = monitor.housekeeping()  # bounded: two chunks of ten per table and round
    assert (first.predictions, first.samples, first.outbox) == (20, 12, 1)
    second = monitor.housekeeping()
    assert (second.predictions, second.samples, second.outbox) == (5, 0, 0)
    assert monitor.housekeeping().predictions == 0

    kept = _ids(ws, predictions)
    assert not any(k.startswith("old-") for k in kept)
    assert kept == {f"{d}-{i}" for d, n in (("recent", 3), ("live-canary", 2),
                                            ("live-stable", 2)) for i in range(n)}
    assert {s.split("-")[0] for s in _ids(ws, samples)} == {"live", "fresh"}
    assert _ids(ws, outbox) == {"stuck", "sent-lately"}  # pending is never pruned
    audited = ws.audit.query(AuditQuery(action="serving.retention"))
    assert [json.loads(e.details)["predictions"] for e in audited] == [20, 5]


def test_retention_setting_reaches_the_monitor_and_refuses_nonsense() -> None:
    options = MonitorOptions.from_settings(BastionSettings(serving_log_retention_days=7))
    assert options.log_retention.days == 7
    assert MonitorOptions().log_retention.days == 30
    with pytest.raises(ValueError, match="serving_log_retention_days"):
        BastionSettings(serving_log_retention_days=0)
    with pytest.raises(ConfigurationError, match="days"):
        RetentionOptions(days=0)
