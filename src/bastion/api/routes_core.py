"""Core routes: identity, roles, projects, audit, objects."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from bastion.api._gate import rule
from bastion.api._limits import BodyKind
from bastion.api._uploads import scratch_dir, spooled_body
from bastion.api.deps import WS, ActorDep, actor
from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import NotFound
from bastion.core.names import MAX_VERSION

router = APIRouter(prefix="/v1", dependencies=[Depends(actor)])


class PrincipalIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: PrincipalKind = PrincipalKind.USER


class TokenIn(BaseModel):
    description: str = Field(default="", max_length=200)
    expires_days: int = Field(default=90, ge=0, le=3650)


class BindingIn(BaseModel):
    principal: str
    role: str
    project: str = "default"


class ProjectIn(BaseModel):
    name: str
    description: str = ""


@router.get("/whoami")
def whoami(ws: WS, a: ActorDep) -> dict[str, Any]:
    p, bindings = ws.access.whoami(a)
    return {"principal": p.to_dict(), "roles": [b.to_dict() for b in bindings]}


@router.get("/principals")
def list_principals(ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [p.to_dict() for p in ws.access.principals(a)]


@router.post("/principals", status_code=201)
def create_principal(body: PrincipalIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.access.create_principal(a, body.name, body.kind).to_dict()


@router.post("/principals/{name}/disable")
def disable_principal(name: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.access.disable_principal(a, name).to_dict()


@router.get("/principals/{name}/tokens")
def list_tokens(name: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [t.to_dict() for t in ws.access.tokens(a, name)]


@router.post("/principals/{name}/tokens", status_code=201)
def create_token(name: str, body: TokenIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    issued = ws.access.create_token(
        a,
        name,
        description=body.description,
        expires_in=dt.timedelta(days=body.expires_days) if body.expires_days else None,
    )
    return {**issued.record.to_dict(), "token": issued.secret}


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.access.revoke_token(a, token_id).to_dict()


@router.get("/role-bindings")
def list_bindings(ws: WS, a: ActorDep, principal: str | None = None) -> list[dict[str, Any]]:
    return [b.to_dict() for b in ws.access.bindings(a, principal)]


@router.post("/role-bindings", status_code=201)
def bind(body: BindingIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.access.bind(a, body.principal, body.role, body.project).to_dict()


@router.delete("/role-bindings")
def unbind(
    ws: WS, a: ActorDep, principal: str, role: str, project: str = "default"
) -> dict[str, str]:
    ws.access.unbind(a, principal, role, project)
    return {"status": "removed"}


@router.get("/projects")
def list_projects(ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [p.to_dict() for p in ws.access.projects(a)]


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.access.create_project(a, body.name, body.description).to_dict()


@router.get("/audit/entries")
def audit_entries(
    ws: WS,
    a: ActorDep,
    actor_name: Annotated[str | None, Query(alias="actor")] = None,
    action: str | None = None,
    resource: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after_seq: Annotated[int, Query(ge=0, le=MAX_VERSION)] = 0,
) -> list[dict[str, Any]]:
    q = AuditQuery(actor_name, action, resource, outcome, since, until, limit, after_seq)
    return [e.to_dict() for e in ws.audit_trail.query(a, q)]


@router.post("/audit/verify")
def audit_verify(ws: WS, a: ActorDep) -> dict[str, Any]:
    report, _ = ws.audit_trail.verify(a)
    return report.to_dict()


@router.get("/audit/checkpoints")
def audit_checkpoints(ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [c.to_dict() for c in ws.audit_trail.checkpoints(a)]


@router.post("/audit/checkpoints", status_code=201)
def audit_checkpoint(ws: WS, a: ActorDep) -> dict[str, Any]:
    cp, _ = ws.audit_trail.checkpoint(a)
    return cp.to_dict()


@router.get("/audit/proofs/inclusion")
def audit_inclusion(
    ws: WS, a: ActorDep, seq: Annotated[int, Query(ge=1, le=MAX_VERSION)],
    tree_size: Annotated[int, Query(ge=1, le=MAX_VERSION)],
) -> dict[str, Any]:
    size, proof = ws.audit_trail.inclusion_proof(a, seq, tree_size)
    return {"seq": seq, "tree_size": size, "proof": proof}


@router.get("/audit/proofs/consistency")
def audit_consistency(
    ws: WS,
    a: ActorDep,
    old_size: Annotated[int, Query(ge=1, le=MAX_VERSION)],
    new_size: Annotated[int, Query(ge=1, le=MAX_VERSION)],
) -> dict[str, Any]:
    return {
        "old_size": old_size,
        "new_size": new_size,
        "proof": ws.audit_trail.consistency_proof(a, old_size, new_size),
    }


@router.get("/projects/{project}/objects")
def list_objects(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [o.to_dict() for o in ws.objects.list(a, project)]


@router.put("/projects/{project}/objects/{name:path}", status_code=201)
@rule(BodyKind.UPLOAD, "blob.write", "project/{project}/objects/{name}")
async def put_object(
    project: str, name: str, request: Request, ws: WS, a: ActorDep
) -> dict[str, Any]:
    """Store an object (raw body), streamed to a private scratch file and encrypted."""
    async with spooled_body(ws, request) as path:
        obj = await run_in_threadpool(ws.objects.put, a, project, name, path)
    return obj.to_dict()


@router.get("/projects/{project}/objects/{name:path}")
def get_object(project: str, name: str, ws: WS, a: ActorDep) -> StreamingResponse:
    fd, tmp = tempfile.mkstemp(dir=scratch_dir(ws), prefix="download-")
    os.close(fd)
    path = Path(tmp)
    try:
        path.unlink()
        obj = ws.objects.get(a, project, name, path)
    except Exception:
        path.unlink(missing_ok=True)
        raise
    if not path.exists():
        raise NotFound(f"object {name!r} vanished")

    def stream() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    return StreamingResponse(
        stream(),
        media_type="application/octet-stream",
        headers={"X-Content-SHA256": obj.digest},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


__all__ = ["router"]
