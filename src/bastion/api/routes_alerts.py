"""Alerts of deployed models and their webhooks over REST (the same service calls, actions
and audit as ``bastion alerts …``).

::

    GET    /v1/projects/{project}/alerts?endpoint=E&open=true&limit=100   alert.read
    GET    /v1/projects/{project}/alerts/{id}        the alert and its delivery log
    POST   /v1/projects/{project}/alerts/{id}/ack    {"note": "..."}       alert.ack
    GET    /v1/projects/{project}/alerts/webhooks                          alert.read
    POST   /v1/projects/{project}/alerts/webhooks    {"url": ..., "endpoint": ...}
                                                     alert.webhook; the secret, shown once
    DELETE /v1/projects/{project}/alerts/webhooks/{id}                     alert.webhook

``AlertService`` authorizes (every decision audited): a role in the project without the
action is 403, no role in the project at all is 404 (as for a missing alert).  Ids are
checked before anything runs (422 naming the parameter), so nothing of a malformed id
reaches a resource string or the audit log.  A webhook target the SSRF guard refuses is
422 naming the field (``"field": "url"``), audited as ``alert.webhook.refused``.

Example::

    curl -H "Authorization: Bearer $T" \\
         "http://127.0.0.1:8700/v1/projects/credit/alerts?endpoint=scoring&open=true"
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from bastion.api.deps import WS, ActorDep, actor
from bastion.serving.alerts import Alert, Severity, Webhook

#: the most alerts one page holds (``limit``); ``more`` says whether others are older
MAX_PAGE = 500
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_ID = r"^[A-Za-z0-9_-]{1,64}$"

router = APIRouter(prefix="/v1/projects/{project}", tags=["alerts"],
                   dependencies=[Depends(actor)])

ProjectPath = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]
AlertId = Annotated[str, Path(pattern=_ID, description="an alert id (from the list)")]
WebhookId = Annotated[str, Path(pattern=_ID, description="a webhook id (from the list)")]


class AlertOut(BaseModel):
    """One alert; ``open`` until acknowledged."""

    id: str
    project: str
    endpoint: str
    kind: str
    severity: Severity
    summary: str
    evidence: JsonValue = Field(description="what raised it (reference, statistics, windows)")
    created_at: str
    last_seen_at: str
    occurrences: int
    open: bool
    acknowledged_by: str | None
    acknowledged_at: str | None
    ack_note: str | None

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls.model_validate(a.to_dict())


class AlertPage(BaseModel):
    alerts: list[AlertOut] = Field(description="newest first")
    limit: int
    more: bool = Field(description="older alerts match beyond this page")


class DeliveryOut(BaseModel):
    """One webhook's delivery outcome for the alert."""

    model_config = ConfigDict(extra="ignore")

    webhook_id: str
    status: str = Field(description="delivered, failed or refused")
    attempts: int
    error: str | None = None
    at: str | None = None


class AlertDetail(BaseModel):
    alert: AlertOut
    deliveries: list[DeliveryOut]


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=500, description="why / what was done")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048,
                     description="http(s) URL of a public address (SSRF-checked)")
    endpoint: str | None = Field(default=None, max_length=100, pattern=_NAME,
                                 description="only this endpoint's alerts (default: all)")


class WebhookOut(BaseModel):
    id: str
    project: str
    endpoint: str | None = Field(description="null: every endpoint of the project")
    url: str = Field(description="scheme://host[:port]/… (the path may be a credential)")
    created_at: str
    created_by: str

    @classmethod
    def of(cls, h: Webhook) -> WebhookOut:
        return cls.model_validate(h.to_dict())


class WebhookCreated(BaseModel):
    webhook: WebhookOut
    secret: str = Field(description="hex HMAC key for X-Bastion-Signature; shown only now")


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    project: ProjectPath, ws: WS, a: ActorDep,
    endpoint: Annotated[str | None, Query(max_length=100, pattern=_NAME)] = None,
    only_open: Annotated[bool, Query(alias="open", description="open ones only")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AlertPage:
    """Alerts of the project (or of one endpoint), newest first."""
    found = ws.alerts.alerts(a, project, endpoint=endpoint, only_open=only_open,
                             limit=limit + 1)  # one more: whether there are others
    return AlertPage(alerts=[AlertOut.of(x) for x in found[:limit]], limit=limit,
                     more=len(found) > limit)


# Declared before /alerts/{alert_id}: "webhooks" is a path here, never an alert id.
@router.get("/alerts/webhooks", response_model=list[WebhookOut])
def list_webhooks(project: ProjectPath, ws: WS, a: ActorDep) -> list[WebhookOut]:
    return [WebhookOut.of(h) for h in ws.alerts.webhooks(a, project)]


@router.post("/alerts/webhooks", status_code=201, response_model=WebhookCreated)
def add_webhook(project: ProjectPath, body: WebhookIn, response: Response, ws: WS,
                a: ActorDep) -> WebhookCreated:
    """Register a webhook; the answer holds its signing secret, shown this once."""
    hook, secret = ws.alerts.add_webhook(a, project, body.url, body.endpoint)
    response.headers["Cache-Control"] = "no-store"  # the secret must not be cached
    return WebhookCreated(webhook=WebhookOut.of(hook), secret=secret.hex())


@router.delete("/alerts/webhooks/{webhook_id}", status_code=204)
def remove_webhook(project: ProjectPath, webhook_id: WebhookId, ws: WS, a: ActorDep) -> Response:
    ws.alerts.remove_webhook(a, project, webhook_id)
    return Response(status_code=204)


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def show_alert(project: ProjectPath, alert_id: AlertId, ws: WS, a: ActorDep) -> AlertDetail:
    """One alert and its webhook deliveries."""
    alert = ws.alerts.show(a, project, alert_id)
    log = ws.alerts.delivery_log(a, project, alert_id)
    return AlertDetail(alert=AlertOut.of(alert),
                       deliveries=[DeliveryOut.model_validate(d) for d in log])


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
def ack_alert(project: ProjectPath, alert_id: AlertId, ws: WS, a: ActorDep,
              body: AckIn | None = None) -> AlertOut:
    """Acknowledge (close) an open alert; a later detection opens a new one."""
    note = body.note if body is not None else ""
    return AlertOut.of(ws.alerts.ack(a, project, alert_id, note))


__all__ = ["MAX_PAGE", "router"]
