"""Model-security routes: register, list, verify, evaluate, train, drift."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.api._gate import rule
from bastion.api._limits import BodyKind
from bastion.api._uploads import (
    private_workdir,
    safe_extract,
    safe_suffix,
    spool_into,
    spooled_body,
    upload_filename,
)
from bastion.api.deps import WS, ActorDep, LimitsDep, Version, actor
from bastion.model_security.evaluation import RobustnessSuite
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])


class EvaluateIn(BaseModel):
    dataset: str
    sensitive: list[str] = Field(default_factory=list)
    immutable: list[str] = Field(default_factory=list)
    eps: float = Field(default=0.5, gt=0, le=10)
    sample_size: int = Field(default=200, ge=10, le=5000)


class TrainIn(BaseModel):
    name: str
    dataset: str
    spec: str
    spec_format: str = Field(default="yaml", pattern="^(yaml|json|toml)$")


@router.get("/models")
def list_models(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [v.to_dict() for v in ws.models.versions(a, project)]


@router.post("/models/{name}/versions", status_code=201)
@rule(BodyKind.MODEL, "model.register", "project/{project}/model/{name}")
async def register(
    project: str,
    name: str,
    framework: Framework,
    request: Request,
    ws: WS,
    a: ActorDep,
    caps: LimitsDep,
    trained_on: str | None = None,
    filename: str = "model.bin",
    archive: bool = False,
) -> dict[str, Any]:
    """Upload an artifact (one file, or a tar archive of a folder with ``archive=true``)."""
    async with private_workdir(ws) as work:
        raw = work / "upload"
        await spool_into(request, raw)
        if archive:
            target = work / "model"
            target.mkdir(mode=0o700)
            await run_in_threadpool(safe_extract, raw, target, caps.archive)
        else:
            target = work / upload_filename(filename, "model.bin")
            raw.rename(target)
        refs = tuple(r for r in (trained_on or "").split(",") if r)
        v = await run_in_threadpool(
            ws.models.register, a, RegisterRequest(project, name, target, framework, refs)
        )
    return v.to_dict()


@router.get("/models/{name}/versions/{version}")
def get_version(project: str, name: str, version: Version, ws: WS, a: ActorDep) -> dict[str, Any]:
    v = ws.models.version(a, project, f"{name}@{version}")
    evaluations = ws.lab.evaluations(a, project, v.ref)
    return {**v.to_dict(), "evaluations": [e.to_dict() for e in evaluations]}


@router.post("/models/{name}/versions/{version}/verify")
def verify(project: str, name: str, version: Version, ws: WS, a: ActorDep) -> dict[str, Any]:
    verified = ws.models.verify(a, project, f"{name}@{version}")
    return {
        "verified": True,
        "root_digest": verified.root_digest,
        "signer": {"identity": verified.signer.identity, "key_id": verified.signer.key_id},
        "files": len(verified.files),
    }


@router.post("/models/{name}/versions/{version}/evaluations", status_code=201)
async def evaluate(
    project: str, name: str, version: Version, body: EvaluateIn, ws: WS, a: ActorDep
) -> dict[str, Any]:
    rec = await run_in_threadpool(
        ws.lab.evaluate,
        a,
        project,
        f"{name}@{version}",
        body.dataset,
        sensitive=tuple(body.sensitive),
        immutable=tuple(body.immutable),
        suite=RobustnessSuite(eps=body.eps, sample_size=body.sample_size),
    )
    return rec.to_dict()


@router.post("/train", status_code=201)
async def train(project: str, body: TrainIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    v = await run_in_threadpool(
        ws.lab.train, a, project, body.name, body.spec, body.dataset, spec_format=body.spec_format
    )
    return v.to_dict()


@router.post("/monitor/drift")
@rule(BodyKind.UPLOAD, "monitor.run", "project/{project}/monitoring")
async def drift(
    project: str,
    reference: str,
    request: Request,
    ws: WS,
    a: ActorDep,
    filename: str = "current.csv",
) -> dict[str, Any]:
    """Upload current inputs (CSV, Parquet or JSONL body); returns the drift report."""
    shown = upload_filename(filename, "current.csv")
    async with spooled_body(ws, request, suffix=safe_suffix(shown), shown=shown) as path:
        report = await run_in_threadpool(ws.lab.drift, a, project, reference, path)
    body: dict[str, Any] = json.loads(json.dumps(report.to_dict(), default=str))
    return body


__all__ = ["router"]
