"""Approvals, the release gate, its policy and waivers (same permissions as the CLI).

``POST .../approvals`` needs the ``root_digest`` and ``card_version`` the reviewer
was shown (from ``GET .../card``): an approval of anything else is refused.
``POST .../gate`` answers 200 with ``passed`` true or false and every rule.
"""

from __future__ import annotations

import enum
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.api._gate import rule
from bastion.api._limits import BodyKind
from bastion.api.deps import WS, ActorDep, Version, actor
from bastion.core.errors import InputError

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])


class DecisionIn(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ApprovalIn(BaseModel):
    decision: DecisionIn = DecisionIn.APPROVE
    reason: str = Field(max_length=4000)
    root_digest: str = Field(pattern="^[0-9a-f]{64}$")
    card_version: int = Field(ge=0, le=2**31)
    nonce: str | None = Field(default=None, max_length=64)


class WaiverIn(BaseModel):
    rule: str = Field(max_length=100)
    reason: str = Field(max_length=4000)
    expires: str | None = Field(default=None, max_length=40)


@router.post("/models/{name}/versions/{version}/approvals", status_code=201)
def decide(
    project: str, name: str, version: Version, body: ApprovalIn, ws: WS, a: ActorDep
) -> dict[str, Any]:
    from bastion.governance.approvals import approval_to_dict

    decide = ws.approvals.approve if body.decision is DecisionIn.APPROVE else ws.approvals.reject
    result = decide(
        a, project, f"{name}@{version}", reason=body.reason,
        expected_root_digest=body.root_digest, expected_card_version=body.card_version,
        nonce=body.nonce,
    )  # fmt: skip
    return approval_to_dict(result)


@router.post("/models/{name}/versions/{version}/promotion")
def promote(project: str, name: str, version: Version, ws: WS, a: ActorDep) -> dict[str, Any]:
    """Promote to approved (approvals complete, gate passing); 403 ``gate_failed`` otherwise."""
    return ws.approvals.promote(a, project, f"{name}@{version}").to_dict()


@router.get("/models/{name}/versions/{version}/approvals")
def list_approvals(
    project: str, name: str, version: Version, ws: WS, a: ActorDep
) -> dict[str, Any]:
    from bastion.governance.approvals import tally_to_dict

    v, tally = ws.approvals.approvals(a, project, f"{name}@{version}")
    return tally_to_dict(v, tally)


@router.post("/models/{name}/versions/{version}/gate")
def gate_check(project: str, name: str, version: Version, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.gate.check(a, project, f"{name}@{version}").to_dict()


@router.post("/models/{name}/versions/{version}/waivers", status_code=201)
def waive(
    project: str, name: str, version: Version, body: WaiverIn, ws: WS, a: ActorDep
) -> dict[str, Any]:
    w = ws.gate.waive(
        a, project, f"{name}@{version}", rule=body.rule, reason=body.reason, expires=body.expires
    )
    return w.to_dict()


@router.get("/waivers")
def list_waivers(
    project: str, ws: WS, a: ActorDep, model: str | None = None
) -> list[dict[str, Any]]:
    return [w.to_dict() for w in ws.gate.waivers(a, project, model)]


def _policy(p: Any) -> dict[str, Any]:
    return {"version": p.version, "sha256": p.sha256, "created_at": p.created_at,
            "created_by": p.created_by, "document": p.document}  # fmt: skip


@router.get("/release-policy")
def get_policy(project: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    return _policy(ws.gate.policy(a, project))


@router.get("/release-policy/history")
def policy_history(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in _policy(p).items() if k != "document"}
        for p in ws.gate.policy_history(a, project)
    ]


@router.put("/release-policy", status_code=201)
@rule(BodyKind.JSON, "gate.policy", "project/{project}/release-policy")
async def put_policy(project: str, request: Request, ws: WS, a: ActorDep) -> dict[str, Any]:
    """The body is the policy YAML (``Content-Type: application/yaml``)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("the release policy body must be UTF-8 YAML") from e
    stored = await run_in_threadpool(ws.gate.set_policy, a, project, text)
    return {k: v for k, v in _policy(stored).items() if k != "document"}


__all__ = ["router"]
