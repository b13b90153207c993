"""Canary releases: judge a running canary against the stable version, decide once, and
take labels for the accuracy check.

A canary is started by ``DeploymentService.deploy(..., canary=CanaryPlan(...))`` (the
release gate, re-verification and digest check of any deploy) and served by the gateway
to ``weight`` percent of the endpoint's requests.  Every gateway replica writes one
sample per request of either arm (with its prediction-log flush) and calls
:meth:`CanaryService.evaluate` about every second: the analysis
(:mod:`bastion.serving.canary_analysis`) reads the window of *all* replicas' samples from
the database; an anomaly rolls the canary back, ``promote_after`` healthy canary requests
promote it.  A decision is one conditional UPDATE: when two replicas decide at the same
moment exactly one wins, and only the winner audits (``deployment.canary.rolled_back`` /
``deployment.canary.promoted`` with the evidence numbers).

Feedback (``POST /v1/endpoints/{name}/feedback``): a principal with ``predict.feedback``
labels a request *it* made on that endpoint, once; an unknown request id and another
principal's request id are refused alike (404), a second label is refused (409).

Example::

    canaries.evaluate("credit", "scoring")          # None, or the decided Canary
    canaries.feedback(actor, "credit", "scoring", "r-17", "good")
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError, Conflict, InputError, NotFound
from bastion.serving.canary_analysis import analyze
from bastion.serving.canary_ports import CanaryRepository
from bastion.serving.canary_values import Analysis, Arm, Canary, CanaryState
from bastion.serving.deployments import endpoint_resource
from bastion.serving.events import GATEWAY
from bastion.serving.values import Deployment

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_LABEL = 200
#: checks that must have judged before a canary may be promoted
REQUIRED_FOR_PROMOTION = ("error_rate", "prediction_shift")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class FeedbackReceipt:
    request_id: str
    endpoint: str
    label: str
    created_at: str

    def to_dict(self) -> dict[str, JSON]:
        return {"request_id": self.request_id, "endpoint": self.endpoint, "label": self.label,
                "created_at": self.created_at}


def label_text(label: JSON) -> str:
    """A feedback label as the text predictions are compared with (bounded, no floats
    that are not finite, no control characters)."""
    if isinstance(label, bool):
        return str(label)
    if isinstance(label, int):
        return str(label)
    if isinstance(label, float):
        if not math.isfinite(label):
            raise InputError("a label must be a finite number")
        return str(int(label)) if label.is_integer() else repr(label)
    if isinstance(label, str):
        if not label or len(label) > MAX_LABEL or not label.isprintable():
            raise InputError(f"a label is 1..{MAX_LABEL} printable characters")
        return label
    raise InputError("a label is a string, a number or a boolean",
                     hint='e.g. {"request_id": "...", "label": "good"}')


class CanaryService:
    """See the module docstring."""

    def __init__(self, access: AccessService, repo: CanaryRepository) -> None:
        self._access = access
        self._repo = repo

    # -- what the gateway serves --------------------------------------------------------
    def running(self, project: str, endpoint: str) -> tuple[Canary, Deployment] | None:
        """The endpoint's running canary and its deployment (the gateway authorized
        ``predict``; no check here)."""
        c = self._repo.running(project, endpoint)
        if c is None:
            return None
        d = self._repo.deployment(c.deployment_id)
        return (c, d) if d is not None else None

    def log_samples(self, rows: list[dict[str, JSON]]) -> None:
        self._repo.add_samples(rows)

    # -- the analysis and the decision --------------------------------------------------
    def evaluate(self, project: str, endpoint: str) -> Canary | None:
        """Analyse the endpoint's running canary; roll it back on an anomaly, promote it
        after ``promote_after`` healthy requests.  Returns the canary when *this* call
        decided it, else None."""
        c = self._repo.latest(project, endpoint)
        if c is None or c.state is not CanaryState.RUNNING:
            return None
        t = c.plan.thresholds
        a = analyze(self._repo.window(c.id, Arm.CANARY, t.window),
                    self._repo.window(c.id, Arm.STABLE, t.window),
                    self._repo.labelled(c, Arm.CANARY, t.window),
                    self._repo.labelled(c, Arm.STABLE, t.window), t, at=_now())
        if a.failed:
            return self._decide(c, a, CanaryState.ROLLED_BACK,
                                f"canary analysis: {', '.join(a.failed)} failed")
        judged = {x.name for x in a.checks if x.judged}
        if (c.canary_requests >= c.plan.promote_after and a.healthy
                and judged.issuperset(REQUIRED_FOR_PROMOTION)):
            return self._decide(c, a, CanaryState.PROMOTED,
                                f"canary analysis: healthy after {c.canary_requests} requests")
        self._repo.record_analysis(c, a)
        return None

    def _decide(self, c: Canary, a: Analysis, state: CanaryState, reason: str) -> Canary | None:
        at = _now()
        if not self._repo.decide(c, state, GATEWAY.name, reason, at, a):
            return None  # another replica (or a person) decided first: it audits
        d = self._repo.deployment(c.deployment_id)
        action = ("deployment.canary.promoted" if state is CanaryState.PROMOTED
                  else "deployment.canary.rolled_back")
        evidence: dict[str, JSON] = {
            "canary": c.id, "model": d.ref if d else None, "deployment": c.deployment_id,
            "stable": c.stable_id, "weight": c.plan.weight, "reason": reason,
            "canary_requests": c.canary_requests, "stable_requests": c.stable_requests,
            "failed": list(a.failed),
            "checks": [x.to_dict() for x in a.checks if x.judged or x.failed]}
        self._access.record(GATEWAY, action, endpoint_resource(c.project, c.endpoint),
                            Outcome.OK if state is CanaryState.PROMOTED else Outcome.FAILED,
                            evidence)
        return self._repo.latest(c.project, c.endpoint)

    def abandon(self, c: Canary, reason: str) -> Canary | None:
        """Roll back a canary that cannot serve (its worker did not start), audited."""
        a = Analysis(0, 0, (), _now())
        return self._decide(c, a, CanaryState.ROLLED_BACK, reason[:300])

    # -- feedback -----------------------------------------------------------------------
    def feedback(self, actor: Actor, project: str, endpoint: str, request_id: str,
                 label: JSON) -> FeedbackReceipt:
        """Label one request ``actor`` made on this endpoint (once)."""
        resource = endpoint_resource(project, endpoint)
        shown = request_id[:64] if isinstance(request_id, str) else None
        self._access.authorize(actor, "predict.feedback", resource,
                               details={"request_id": shown})
        try:
            if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
                raise InputError("request_id is 1..64 letters, digits, '.', '_' or '-'",
                                 hint="send the request_id of a prediction's answer")
            text = label_text(label)
            if not self._repo.predicted(project, endpoint, request_id, actor.name):
                raise NotFound(
                    f"no answered prediction {request_id!r} of yours on endpoint "
                    f"{endpoint!r}", hint="label only requests you made and were answered "
                    "(the prediction log is written within about a second)")
            receipt = FeedbackReceipt(request_id, endpoint, text, _now())
            if not self._repo.add_feedback({
                    "id": uuid.uuid4().hex, "project": project, "endpoint": endpoint,
                    "request_id": request_id, "principal": actor.name, "label": text,
                    "created_at": receipt.created_at}):
                raise Conflict(f"request {request_id!r} already has a label",
                               hint="one label per request id; a label is never changed")
        except BastionError as e:
            self._access.record(actor, "predict.feedback.refused", resource, Outcome.FAILED,
                                {"request_id": shown, "error": e.code,
                                 "reason": e.message[:200]})
            raise
        return receipt


__all__ = ["REQUIRED_FOR_PROMOTION", "CanaryService", "FeedbackReceipt", "label_text"]
