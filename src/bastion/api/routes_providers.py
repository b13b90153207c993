"""Third-party register routes: providers, their assessments and lineage links.

The same service methods as ``bastion provider``; every route authorizes in the
service (``provider.manage`` / ``provider.read``), so the CLI and the API share
one rule and one audit trail.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from bastion.api.deps import WS, ActorDep, actor
from bastion.core.errors import InputError
from bastion.governance.provider_values import AssessmentRequest, parse_kind
from bastion.governance.providers import LinkTarget

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])


class ProviderIn(BaseModel):
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    description: str = Field(default="", max_length=500)


class AssessmentIn(BaseModel):
    data_sent: list[str] = Field(max_length=20)
    dpa: bool
    certifications: list[str] = Field(default_factory=list, max_length=20)
    reviewed_on: str = Field(max_length=40)
    expires_on: str = Field(max_length=40)
    risk: str = Field(max_length=40)
    notes: str = Field(default="", max_length=4000)


class LinkIn(BaseModel):
    source: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=240)


@router.get("/providers")
def list_providers(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [s.to_dict() for s in ws.providers.providers(a, project)]


@router.post("/providers", status_code=201)
def register_provider(project: str, body: ProviderIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    kind = parse_kind(body.kind)
    return ws.providers.register(a, project, body.name, kind, body.description).to_dict()


@router.get("/providers/{name}")
def show_provider(project: str, name: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.providers.show(a, project, name).to_dict()


@router.post("/providers/{name}/assessments", status_code=201)
def assess_provider(
    project: str, name: str, body: AssessmentIn, ws: WS, a: ActorDep
) -> dict[str, Any]:
    req = AssessmentRequest(
        tuple(body.data_sent),
        body.dpa,
        tuple(body.certifications),
        body.reviewed_on,
        body.expires_on,
        body.risk,
        body.notes,
    )
    return ws.providers.assess(a, project, name, req).to_dict()


@router.post("/providers/{name}/links", status_code=201)
def link_provider(project: str, name: str, body: LinkIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    if (body.source is None) == (body.model is None):
        raise InputError('give exactly one of "source" or "model" (MODEL@VERSION)')
    kind, target = (
        (LinkTarget.SOURCE, body.source) if body.source else (LinkTarget.MODEL, body.model)
    )
    assert target is not None
    k = ws.providers.link(a, project, name, kind, target)
    return {"kind": k.target_kind, "target": k.target, "relation": k.relation,
            "linked_at": k.linked_at}  # fmt: skip


__all__ = ["router"]
