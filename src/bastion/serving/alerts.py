"""Alerts of deployed models: stored, deduplicated, acknowledged, delivered.

An :class:`Alert` names its kind (``drift`` …), endpoint, severity and the evidence that
raised it.  ``raise_alert`` keeps *one open alert per endpoint and kind* (the store's
unique key; a repeat detection bumps ``occurrences`` and ``last_seen_at``); a new one is
audited (``alert.raised``) and logged; in the transaction that stores it, one pending
delivery per webhook of the project (or of that endpoint) is written to the outbox, which
the :class:`~bastion.serving.delivery.Deliveries` sender of any process works off (at least
once, with a stable delivery id).  ``ack`` closes it (``alert.ack``, audited), after which
the same detection opens a new one.

Webhook secrets are never stored: each is an HMAC under the keyring's ``alert-webhook``
key of the webhook's id, shown once when the webhook is added.

Example::

    alerts.add_webhook(admin, "credit", "https://hooks.example.com/bastion")
    alert, new = alerts.raise_alert("credit", "scoring", AlertKind.DRIFT, Severity.WARNING,
                                    "3/5 features drifted", evidence)
    alerts.ack(deployer, "credit", alert.id, note="retraining scheduled")
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.crashpoints import crash_point
from bastion.core.names import check_name
from bastion.serving.delivery import Deliveries, ResultSink, SecretOf
from bastion.serving.deployments import endpoint_resource
from bastion.serving.errors import AlertNotFound, WebhookRefused
from bastion.serving.events import GATEWAY
from bastion.serving.webhooks import TargetGuard, shown_url

_log = logging.getLogger("bastion.alerts")


class AlertKind(enum.StrEnum):
    DRIFT = "drift"  # the live inputs / predictions moved away from the training reference


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Alert:
    id: str
    project: str
    endpoint: str
    kind: str
    severity: Severity
    summary: str
    evidence: str  # JSON
    created_at: str
    last_seen_at: str
    occurrences: int = 1
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    ack_note: str | None = None

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None

    def to_dict(self) -> dict[str, JSON]:
        return {"id": self.id, "project": self.project, "endpoint": self.endpoint,
                "kind": self.kind, "severity": self.severity.value, "summary": self.summary,
                "evidence": json.loads(self.evidence), "created_at": self.created_at,
                "last_seen_at": self.last_seen_at, "occurrences": self.occurrences,
                "open": self.open, "acknowledged_by": self.acknowledged_by,
                "acknowledged_at": self.acknowledged_at, "ack_note": self.ack_note}


@dataclass(frozen=True)
class Webhook:
    id: str
    project: str
    endpoint: str  # "" = every endpoint of the project
    url: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, JSON]:
        return {"id": self.id, "project": self.project, "endpoint": self.endpoint or None,
                "url": shown_url(self.url), "created_at": self.created_at,
                "created_by": self.created_by}


@dataclass(frozen=True)
class OutboxEntry:
    """One delivery to write with a new alert: its id (``X-Bastion-Delivery``), the
    webhook and the signed body."""

    id: str
    webhook_id: str
    body: bytes


class AlertRepository(Protocol):
    def open_alert(self, alert: Alert,
                   outbox: Sequence[OutboxEntry] = ()) -> tuple[Alert, bool]:
        """Store ``alert`` and its ``outbox`` rows in one transaction unless one of its
        (project, endpoint, kind) is open; then bump that one's occurrences and return
        it with False (no row written)."""

    def alert(self, project: str, alert_id: str) -> Alert | None: ...

    def alerts(self, project: str, endpoint: str | None, only_open: bool,
               limit: int) -> list[Alert]: ...

    def acknowledge(self, project: str, alert_id: str, by: str, at: str,
                    note: str) -> Alert | None:
        """Close an open alert; None when it is not open (or not there)."""

    def add_webhook(self, hook: Webhook) -> None: ...

    def webhooks(self, project: str) -> list[Webhook]: ...

    def remove_webhook(self, project: str, webhook_id: str) -> bool: ...

    def deliveries(self, alert_id: str) -> list[dict[str, JSON]]: ...


def delivery_audit(access: AccessService) -> ResultSink:
    """Audit a failed or refused delivery (the outbox wrote the delivery log itself)."""

    def sink(alert_id: str, webhook_id: str, status: str, attempts: int, error: str,
             at: str) -> None:
        if status != "delivered":
            access.record(GATEWAY, f"alert.delivery_{status}", f"system/webhook/{webhook_id}",
                          Outcome.FAILED, {"alert": alert_id, "attempts": attempts,
                                           "error": error[:300]})

    return sink


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def alerts_resource(project: str) -> str:
    return f"project/{project}/alerts"


class AlertService:
    """See the module docstring."""

    def __init__(self, access: AccessService, repo: AlertRepository, secret_of: SecretOf,
                 deliveries: Deliveries, guard: TargetGuard | None = None) -> None:
        self._access = access
        self._repo = repo
        self._secret_of = secret_of
        self.deliveries = deliveries
        self._guard = guard or TargetGuard()

    # -- raising (the monitors; no principal acts) ------------------------------------------
    def raise_alert(self, project: str, endpoint: str, kind: str, severity: Severity,
                    summary: str, evidence: dict[str, JSON]) -> tuple[Alert, bool]:
        """Open an alert, or count a repeat of the open one (returns it and whether new)."""
        now = _now()
        candidate = Alert(uuid.uuid4().hex, project, endpoint, kind, severity, summary[:500],
                          json.dumps(evidence, sort_keys=True), now, now)
        alert, new = self._repo.open_alert(candidate, self._outbox(candidate))
        if not new:
            return alert, False
        # the alert and its deliveries are one transaction: a crash here loses neither
        crash_point("alerts.raise.after_store")
        self._access.record(GATEWAY, "alert.raised", endpoint_resource(project, endpoint),
                            Outcome.OK, {"alert": alert.id, "kind": kind,
                                         "severity": severity.value, "summary": summary[:200]})
        _log.warning("alert %s (%s, %s) on %s/%s: %s", alert.id, kind, severity.value,
                     project, endpoint, summary)
        self.deliveries.wake()
        return alert, True

    def _outbox(self, alert: Alert) -> list[OutboxEntry]:
        """One delivery per webhook of the project or of this endpoint; the delivery id is
        in the signed body too, so a receiver can trust it to deduplicate."""
        out = []
        for hook in self._repo.webhooks(alert.project):
            if hook.endpoint and hook.endpoint != alert.endpoint:
                continue
            delivery = uuid.uuid4().hex
            body = json.dumps({"type": "bastion.alert", "delivery": delivery,
                               "alert": alert.to_dict()}, sort_keys=True).encode()
            out.append(OutboxEntry(delivery, hook.id, body))
        return out

    # -- reading and acknowledging ----------------------------------------------------------
    def alerts(self, actor: Actor, project: str, *, endpoint: str | None = None,
             only_open: bool = False, limit: int = 200) -> list[Alert]:
        resource = (endpoint_resource(project, endpoint) if endpoint
                    else alerts_resource(project))
        self._access.authorize(actor, "alert.read", resource)
        return self._repo.alerts(project, endpoint, only_open, max(1, min(limit, 10_000)))

    def show(self, actor: Actor, project: str, alert_id: str) -> Alert:
        self._access.authorize(actor, "alert.read", f"{alerts_resource(project)}/{alert_id}")
        alert = self._repo.alert(project, alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id!r} in project {project}",
                                hint="list them: bastion alerts list")
        return alert

    def ack(self, actor: Actor, project: str, alert_id: str, note: str = "") -> Alert:
        resource = f"{alerts_resource(project)}/{alert_id[:64]}"
        self._access.authorize(actor, "alert.ack", resource)
        done = self._repo.acknowledge(project, alert_id, actor.name, _now(), note[:500])
        if done is None:
            found = self._repo.alert(project, alert_id)
            why = "no such alert" if found is None else "it is already acknowledged"
            self._access.record(actor, "alert.ack.refused", resource, Outcome.FAILED,
                                {"reason": why})
            raise AlertNotFound(f"alert {alert_id!r} in project {project} is not open: {why}",
                                hint="list open ones: bastion alerts list --open")
        self._access.record(actor, "alert.acknowledged", resource, Outcome.OK,
                            {"kind": done.kind, "endpoint": done.endpoint, "note": note[:200]})
        return done

    def delivery_log(self, actor: Actor, project: str, alert_id: str) -> list[dict[str, JSON]]:
        self.show(actor, project, alert_id)
        return self._repo.deliveries(alert_id)

    def open_drift_on(self, project: str, lineage_ids: tuple[str, ...]) -> list[Alert]:
        """Open drift alerts whose reference is one of ``lineage_ids`` (for the release
        gate, which authorized ``gate.check`` itself)."""
        found = self._repo.alerts(project, None, True, 10_000)
        return [a for a in found if a.kind == AlertKind.DRIFT
                and json.loads(a.evidence).get("reference") in lineage_ids]

    # -- webhooks -----------------------------------------------------------------------------
    def add_webhook(self, actor: Actor, project: str, url: str,
                    endpoint: str | None = None) -> tuple[Webhook, bytes]:
        """Register a webhook (SSRF-checked now and at every delivery); returns it and its
        signing secret, shown once."""
        resource = (endpoint_resource(project, endpoint) if endpoint
                    else alerts_resource(project))
        self._access.authorize(actor, "alert.webhook", resource)
        if endpoint:
            check_name("endpoint", endpoint, max_length=100)
        try:
            self._guard.pin(self._guard.check(url))
        except WebhookRefused as e:
            self._access.record(actor, "alert.webhook.refused", resource, Outcome.FAILED,
                                {"reason": str(e)[:300]})
            raise
        hook = Webhook(uuid.uuid4().hex, project, endpoint or "", url, _now(), actor.name)
        self._repo.add_webhook(hook)
        self._access.record(actor, "alert.webhook.added", resource, Outcome.OK,
                            {"webhook": hook.id, "url": shown_url(url)})
        return hook, self._secret_of(hook.id)

    def webhooks(self, actor: Actor, project: str) -> list[Webhook]:
        self._access.authorize(actor, "alert.read", alerts_resource(project))
        return self._repo.webhooks(project)

    def remove_webhook(self, actor: Actor, project: str, webhook_id: str) -> None:
        resource = alerts_resource(project)
        self._access.authorize(actor, "alert.webhook", resource)
        if not self._repo.remove_webhook(project, webhook_id):
            raise AlertNotFound(f"no webhook {webhook_id!r} in project {project}",
                                hint="list them: bastion alerts webhook list")
        self._access.record(actor, "alert.webhook.removed", resource, Outcome.OK,
                            {"webhook": webhook_id})


__all__ = [
    "Alert",
    "AlertKind",
    "AlertRepository",
    "AlertService",
    "OutboxEntry",
    "SecretOf",
    "Severity",
    "Webhook",
    "alerts_resource",
    "delivery_audit",
]
