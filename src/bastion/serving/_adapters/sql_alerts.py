"""SQL implementation of the alert store, its outbox and the live-window index
(migrations 0014, 0016).

Tables: ``serving_alerts`` (one *open* alert per project, endpoint and kind: the unique key
includes ``open_slot``, which is ``"open"`` until the alert is acknowledged and its own id
after), ``serving_webhooks``, ``serving_alert_outbox`` (one row per alert and webhook,
written with the alert; see :mod:`bastion.serving.delivery`), ``serving_alert_deliveries``
(the delivery log: final outcomes) and ``serving_live_windows`` (the blob digest of each
encrypted window of sampled rows, ``writing`` until the blob is stored; no feature value
in the DB).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.canonical import JSON
from bastion.core.errors import StorageError
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.serving.alerts import Alert, OutboxEntry, Severity, Webhook
from bastion.serving.delivery import Delivery
from bastion.serving.live import LiveWindow

_md = sa.MetaData()
_OPEN = "open"
alerts = sa.Table(
    "serving_alerts", _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "project", "endpoint", "kind", "severity", "summary", "evidence", "created_at",
        "last_seen_at", "open_slot", "acknowledged_by", "acknowledged_at", "ack_note")),
    sa.Column("occurrences", sa.Integer),
)
webhooks = sa.Table(
    "serving_webhooks", _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "project", "endpoint", "url", "created_at", "created_by")),
)
deliveries = sa.Table(
    "serving_alert_deliveries", _md,
    *(sa.Column(n, sa.String) for n in ("id", "alert_id", "webhook_id", "status", "error", "at")),
    sa.Column("attempts", sa.Integer),
)
outbox = sa.Table(
    "serving_alert_outbox", _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "alert_id", "webhook_id", "body", "status", "next_attempt_at", "claimed_by",
        "lease_until", "error", "created_at", "updated_at")),
    sa.Column("attempts", sa.Integer),
)
windows = sa.Table(
    "serving_live_windows", _md,
    *(sa.Column(n, sa.String) for n in (
        "id", "project", "endpoint", "deployment_id", "created_at", "blob_digest", "state")),
    sa.Column("rows", sa.Integer),
    sa.Column("seen", sa.Integer),
)
_PENDING = "pending"
_WRITING, _READY, _SWEEPING = "writing", "ready", "sweeping"
_columns = [c for c in windows.c if c.name != "state"]


def _alert(r: sa.Row[tuple[object, ...]]) -> Alert:
    m = r._mapping
    return Alert(m["id"], m["project"], m["endpoint"], m["kind"], Severity(m["severity"]),
                 m["summary"], m["evidence"], m["created_at"], m["last_seen_at"],
                 int(m["occurrences"]), m["acknowledged_by"], m["acknowledged_at"],
                 m["ack_note"])


class SqlAlertRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def _open_one(self, c: sa.Connection, a: Alert) -> sa.Row[tuple[object, ...]] | None:
        return c.execute(sa.select(alerts).where(
            alerts.c.project == a.project, alerts.c.endpoint == a.endpoint,
            alerts.c.kind == a.kind, alerts.c.open_slot == _OPEN)).first()

    def open_alert(self, alert: Alert,
                   entries: Sequence[OutboxEntry] = ()) -> tuple[Alert, bool]:
        # Two gateways may detect at once: the unique key lets one insert; the other
        # fails, then finds that open alert and counts a repeat.
        for _ in range(2):
            try:
                with transaction(self._e, "raising an alert") as c:
                    found = self._open_one(c, alert)
                    if found is None:
                        c.execute(alerts.insert().values(
                            id=alert.id, project=alert.project, endpoint=alert.endpoint,
                            kind=alert.kind, severity=alert.severity.value,
                            summary=alert.summary, evidence=alert.evidence,
                            created_at=alert.created_at, last_seen_at=alert.last_seen_at,
                            occurrences=1, open_slot=_OPEN))
                        if entries:
                            c.execute(outbox.insert(), [{
                                "id": e.id, "alert_id": alert.id, "webhook_id": e.webhook_id,
                                "body": e.body.decode(), "status": _PENDING, "attempts": 0,
                                "next_attempt_at": alert.created_at, "error": "",
                                "created_at": alert.created_at,
                                "updated_at": alert.created_at} for e in entries])
                        return alert, True
                    c.execute(alerts.update().where(alerts.c.id == found._mapping["id"]).values(
                        occurrences=alerts.c.occurrences + 1,
                        last_seen_at=alert.last_seen_at))
                    again = self._open_one(c, alert)
                    assert again is not None
                    return _alert(again), False
            except StorageError:
                continue
        raise StorageError(f"could not raise the {alert.kind} alert on {alert.endpoint}")

    def alert(self, project: str, alert_id: str) -> Alert | None:
        with reading(self._e, "reading an alert") as c:
            r = c.execute(sa.select(alerts).where(
                alerts.c.project == project, alerts.c.id == alert_id)).first()
        return _alert(r) if r is not None else None

    def alerts(self, project: str, endpoint: str | None, only_open: bool,
               limit: int) -> list[Alert]:
        q = sa.select(alerts).where(alerts.c.project == project)
        if endpoint is not None:
            q = q.where(alerts.c.endpoint == endpoint)
        if only_open:
            q = q.where(alerts.c.open_slot == _OPEN)
        with reading(self._e, "listing alerts") as c:
            rows = c.execute(q.order_by(alerts.c.created_at.desc()).limit(limit)).all()
        return [_alert(r) for r in rows]

    def acknowledge(self, project: str, alert_id: str, by: str, at: str,
                    note: str) -> Alert | None:
        with transaction(self._e, "acknowledging an alert") as c:
            done = c.execute(alerts.update().where(
                alerts.c.project == project, alerts.c.id == alert_id,
                alerts.c.open_slot == _OPEN,
            ).values(open_slot=alert_id, acknowledged_by=by, acknowledged_at=at,
                     ack_note=note)).rowcount
            if done != 1:
                return None
            r = c.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
        return _alert(r) if r is not None else None

    def add_webhook(self, hook: Webhook) -> None:
        with transaction(self._e, "adding a webhook") as c:
            c.execute(webhooks.insert().values(
                id=hook.id, project=hook.project, endpoint=hook.endpoint, url=hook.url,
                created_at=hook.created_at, created_by=hook.created_by))

    def webhooks(self, project: str) -> list[Webhook]:
        with reading(self._e, "listing webhooks") as c:
            rows = c.execute(sa.select(webhooks).where(webhooks.c.project == project)
                             .order_by(webhooks.c.created_at)).all()
        return [Webhook(**dict(r._mapping)) for r in rows]

    def remove_webhook(self, project: str, webhook_id: str) -> bool:
        with transaction(self._e, "removing a webhook") as c:
            n = c.execute(webhooks.delete().where(
                webhooks.c.project == project, webhooks.c.id == webhook_id)).rowcount
        return bool(n == 1)  # its pending deliveries end as failed at their next claim

    def deliveries(self, alert_id: str) -> list[dict[str, JSON]]:
        with reading(self._e, "reading webhook deliveries") as c:
            rows = c.execute(sa.select(deliveries).where(deliveries.c.alert_id == alert_id)
                             .order_by(deliveries.c.at)).all()
        return [{k: v for k, v in r._mapping.items() if k != "id"} for r in rows]


class SqlAlertOutbox:
    """The outbox of webhook deliveries (:class:`bastion.serving.delivery.Outbox`)."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    @staticmethod
    def _due(now: str) -> sa.ColumnElement[bool]:
        return sa.and_(outbox.c.status == _PENDING, outbox.c.next_attempt_at <= now,
                       sa.or_(outbox.c.claimed_by.is_(None), outbox.c.lease_until < now))

    def claim(self, claim: str, now: str, lease_until: str,
              skip: frozenset[str]) -> Delivery | None:
        # Each candidate is claimed by an UPDATE that repeats the due condition: on
        # PostgreSQL a concurrent claimer of the same row waits for the first one's commit,
        # re-evaluates the condition and updates nothing; SQLite serialises writers.
        q = sa.select(outbox.c.id).where(self._due(now))
        if skip:
            q = q.where(outbox.c.id.notin_(sorted(skip)))
        q = q.order_by(outbox.c.next_attempt_at, outbox.c.id).limit(8)
        with reading(self._e, "reading the webhook outbox") as c:
            if c.execute(q.limit(1)).first() is None:
                return None  # an idle look takes no write lock (SQLite: BEGIN IMMEDIATE)
        with transaction(self._e, "claiming a webhook delivery") as c:
            ids: list[str] = list(c.execute(q).scalars().all())
            for delivery_id in ids:
                n = c.execute(outbox.update().where(
                    outbox.c.id == delivery_id, self._due(now)).values(
                    claimed_by=claim, lease_until=lease_until, updated_at=now,
                    attempts=outbox.c.attempts + 1)).rowcount
                if n != 1:
                    continue
                r = c.execute(sa.select(outbox, webhooks.c.url).select_from(outbox.outerjoin(
                    webhooks, webhooks.c.id == outbox.c.webhook_id)).where(
                    outbox.c.id == delivery_id)).one()._mapping
                return Delivery(r["id"], r["alert_id"], r["webhook_id"], r["url"] or "",
                                str(r["body"]).encode(), int(r["attempts"]), claim)
        return None

    def _held(self, d: Delivery) -> sa.ColumnElement[bool]:
        return sa.and_(outbox.c.id == d.id, outbox.c.status == _PENDING,
                       outbox.c.claimed_by == d.claim)

    def retry(self, d: Delivery, error: str, next_attempt_at: str, now: str) -> bool:
        with transaction(self._e, "scheduling a webhook retry") as c:
            n = c.execute(outbox.update().where(self._held(d)).values(
                claimed_by=None, lease_until=None, next_attempt_at=next_attempt_at,
                error=error, updated_at=now)).rowcount
        return bool(n == 1)

    def finish(self, d: Delivery, status: str, error: str, now: str) -> bool:
        with transaction(self._e, "recording a webhook delivery") as c:
            n = c.execute(outbox.update().where(self._held(d)).values(
                status=status, claimed_by=None, lease_until=None, error=error,
                updated_at=now)).rowcount
            if n != 1:
                return False
            c.execute(deliveries.insert().values(
                id=d.id, alert_id=d.alert_id, webhook_id=d.webhook_id, status=status,
                attempts=d.attempts, error=error, at=now))
        return True

    def pending(self, alert_id: str | None) -> int:
        q = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == _PENDING)
        if alert_id is not None:
            q = q.where(outbox.c.alert_id == alert_id)
        with reading(self._e, "counting pending webhook deliveries") as c:
            return int(c.execute(q).scalar() or 0)

    def next_due(self) -> str | None:
        when = sa.case((outbox.c.claimed_by.is_(None), outbox.c.next_attempt_at),
                       else_=outbox.c.lease_until)
        with reading(self._e, "reading the webhook outbox") as c:
            found = c.execute(sa.select(sa.func.min(when)).where(
                outbox.c.status == _PENDING)).scalar()
        return str(found) if found is not None else None


class SqlLiveWindows:
    """Where the encrypted windows of sampled rows are (``bastion.serving.live``)."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def add(self, w: LiveWindow) -> None:
        """Index a window whose blob is being written (state ``writing``)."""
        with transaction(self._e, "storing a live window") as c:
            c.execute(windows.insert().values(
                id=w.id, project=w.project, endpoint=w.endpoint, deployment_id=w.deployment_id,
                created_at=w.created_at, rows=w.rows, seen=w.seen, blob_digest=w.blob_digest,
                state=_WRITING))

    def mark_ready(self, window_id: str) -> bool:
        """The blob is stored; False when the sweep discarded the row meanwhile."""
        with transaction(self._e, "storing a live window") as c:
            n = c.execute(windows.update().where(
                windows.c.id == window_id, windows.c.state == _WRITING).values(
                state=_READY)).rowcount
        return bool(n == 1)

    def unfinished(self, before: str, limit: int) -> list[LiveWindow]:
        with reading(self._e, "reading live windows") as c:
            rows = c.execute(sa.select(*_columns).where(
                windows.c.state.in_((_WRITING, _SWEEPING)), windows.c.created_at < before)
                .order_by(windows.c.created_at).limit(limit)).all()
        return [LiveWindow(**dict(r._mapping)) for r in rows]

    def abandon(self, window_id: str) -> bool:
        """``writing`` (or ``sweeping``) -> ``sweeping``, never a ready row."""
        with transaction(self._e, "reclaiming a live window") as c:
            n = c.execute(windows.update().where(
                windows.c.id == window_id, windows.c.state.in_((_WRITING, _SWEEPING)))
                .values(state=_SWEEPING)).rowcount
        return bool(n == 1)

    def latest(self, deployment_id: str, max_rows: int) -> list[LiveWindow]:
        """The newest windows of a deployment holding together at most about ``max_rows``."""
        return self._windows(deployment_id, max_rows, windows.c.created_at.desc())

    def earliest(self, deployment_id: str, max_rows: int) -> list[LiveWindow]:
        """The first windows of a deployment (the traffic it served when released)."""
        return self._windows(deployment_id, max_rows, windows.c.created_at.asc())

    def _windows(self, deployment_id: str, max_rows: int,
                 order: sa.UnaryExpression[str]) -> list[LiveWindow]:
        out: list[LiveWindow] = []
        total = 0
        with reading(self._e, "reading live windows") as c:
            rows = c.execute(sa.select(*_columns).where(
                windows.c.deployment_id == deployment_id, windows.c.state == _READY)
                .order_by(order).limit(1000)).all()
        for r in rows:
            w = LiveWindow(**dict(r._mapping))
            if total and total + w.rows > max_rows:
                break
            out.append(w)
            total += w.rows
        return out

    def older_than(self, created_at: str) -> list[LiveWindow]:
        with reading(self._e, "reading live windows") as c:
            rows = c.execute(sa.select(*_columns).where(
                windows.c.created_at < created_at, windows.c.state == _READY)).all()
        return [LiveWindow(**dict(r._mapping)) for r in rows]

    def remove(self, ids: list[str]) -> None:
        if ids:
            with transaction(self._e, "removing live windows") as c:
                c.execute(windows.delete().where(windows.c.id.in_(ids)))


__all__ = ["SqlAlertOutbox", "SqlAlertRepository", "SqlLiveWindows"]
