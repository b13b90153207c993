"""Model-security routes: register, list, verify, evaluate, train, drift."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.api.deps import WS, ActorDep, actor
from bastion.core.errors import InputError
from bastion.model_security.errors import MaliciousArtifact
from bastion.model_security.evaluation import RobustnessSuite
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])
_MAX_UPLOAD = 4 * 1024**3


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


def _safe_extract(archive: Path, dest: Path) -> None:
    """Unpack a model tarball refusing links, devices and paths leaving ``dest``."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()):
                    raise MaliciousArtifact(f"archive member {m.name!r} is a link or special file")
            tar.extractall(dest, filter="data")
    except tarfile.FilterError as e:
        raise MaliciousArtifact(f"archive member refused: {e}") from e
    except tarfile.TarError as e:
        raise InputError(f"the upload is not a readable tar archive: {e}") from e


@router.get("/models")
def list_models(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [v.to_dict() for v in ws.models.versions(a, project)]


@router.post("/models/{name}/versions", status_code=201)
async def register(
    project: str,
    name: str,
    framework: Framework,
    request: Request,
    ws: WS,
    a: ActorDep,
    trained_on: str | None = None,
    filename: str = "model.bin",
    archive: bool = False,
) -> dict[str, Any]:
    """Upload an artifact (one file, or a tar archive of a folder with ``archive=true``)."""
    work = Path(tempfile.mkdtemp(prefix="bastion-model-upload-"))
    try:
        raw = work / "upload"
        size = 0
        with open(raw, "wb") as fh:
            async for part in request.stream():
                size += len(part)
                if size > _MAX_UPLOAD:
                    raise InputError("model upload larger than 4 GiB")
                fh.write(part)
        if archive:
            target = work / "model"
            target.mkdir()
            _safe_extract(raw, target)
        else:
            safe = Path(filename).name if Path(filename).name.strip(".") else "model.bin"
            target = work / safe
            raw.rename(target)
        refs = tuple(r for r in (trained_on or "").split(",") if r)
        v = await run_in_threadpool(
            ws.models.register, a, RegisterRequest(project, name, target, framework, refs)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return v.to_dict()


@router.get("/models/{name}/versions/{version}")
def get_version(project: str, name: str, version: int, ws: WS, a: ActorDep) -> dict[str, Any]:
    v = ws.models.version(a, project, f"{name}@{version}")
    evaluations = ws.lab.evaluations(a, project, v.ref)
    return {**v.to_dict(), "evaluations": [e.to_dict() for e in evaluations]}


@router.post("/models/{name}/versions/{version}/verify")
def verify(project: str, name: str, version: int, ws: WS, a: ActorDep) -> dict[str, Any]:
    verified = ws.models.verify(a, project, f"{name}@{version}")
    return {
        "verified": True,
        "root_digest": verified.root_digest,
        "signer": {"identity": verified.signer.identity, "key_id": verified.signer.key_id},
        "files": len(verified.files),
    }


@router.post("/models/{name}/versions/{version}/evaluations", status_code=201)
async def evaluate(
    project: str, name: str, version: int, body: EvaluateIn, ws: WS, a: ActorDep
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
async def drift(
    project: str,
    reference: str,
    request: Request,
    ws: WS,
    a: ActorDep,
    filename: str = "current.csv",
) -> dict[str, Any]:
    """Upload current inputs (CSV, Parquet or JSONL body); returns the drift report."""
    suffix = Path(filename).suffix if Path(filename).suffix.isascii() else ""
    fd, tmp = tempfile.mkstemp(prefix="bastion-drift-", suffix=suffix[:10])
    try:
        with os.fdopen(fd, "wb") as fh:
            async for part in request.stream():
                fh.write(part)
        report = await run_in_threadpool(ws.lab.drift, a, project, reference, Path(tmp))
    finally:
        os.unlink(tmp)
    body: dict[str, Any] = json.loads(json.dumps(report.to_dict(), default=str))
    return body


__all__ = ["router"]
