"""Data-security routes: sources, datasets, ingestion, review, export, lineage."""

from __future__ import annotations

import json
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
from bastion.api._uploads import safe_suffix, scratch_dir, spooled_body, upload_filename
from bastion.api.deps import WS, ActorDep, Version, actor
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.erasure.values import ErasureRequest
from bastion.data_security.service import IngestRequest

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])


class SourceIn(BaseModel):
    name: str
    description: str = ""
    datasets: list[str] = Field(default_factory=list)
    require_checksum: bool = True


class ReviewIn(BaseModel):
    reason: str = Field(min_length=10, max_length=1000)


class TextIn(BaseModel):
    body: str


@router.get("/sources")
def list_sources(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [s.to_dict() for s in ws.datasets.sources(a, project)]


@router.post("/sources", status_code=201)
def register_source(project: str, body: SourceIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.datasets.register_source(
        a,
        project,
        body.name,
        description=body.description,
        datasets=tuple(body.datasets),
        require_checksum=body.require_checksum,
    ).to_dict()


@router.get("/datasets")
def list_datasets(project: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [d.to_dict() for d in ws.datasets.datasets(a, project)]


@router.get("/datasets/{name}/versions")
def list_versions(project: str, name: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [v.to_dict() for v in ws.datasets.versions(a, project, name)]


@router.get("/datasets/{name}/versions/{version}")
def get_version(project: str, name: str, version: Version, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.datasets.version(a, project, f"{name}@{version}").to_dict(with_report=True)


@router.post("/datasets/{name}/ingest", status_code=201)
@rule(BodyKind.UPLOAD, "dataset.ingest", "project/{project}/dataset/{name}")
async def ingest(
    project: str,
    name: str,
    request: Request,
    ws: WS,
    a: ActorDep,
    source: str,
    sha256: str | None = None,
    label: str | None = None,
    sensitive: Annotated[list[str], Query()] = [],  # noqa: B006
    positive_label: str | None = None,
    filename: str = "upload.csv",
) -> dict[str, Any]:
    """Upload a batch (raw body). Returns the version with its status and audit report."""
    shown = upload_filename(filename, "upload.csv")
    async with spooled_body(ws, request, suffix=safe_suffix(shown), shown=shown) as path:
        req = IngestRequest(
            project, name, path, source, sha256, label, tuple(sensitive), positive_label
        )
        result = await run_in_threadpool(ws.datasets.ingest, a, req)
    # verdict: why the batch was quarantined (poisoning vs contract/quality/policy), or accepted
    report = result.report
    return {**result.version.to_dict(), "verdict": report.verdict.value, "report": report.to_dict()}


@router.get("/datasets/{name}/versions/{version}/data")
def export(
    project: str,
    name: str,
    version: Version,
    ws: WS,
    a: ActorDep,
    format: Annotated[str, Query(pattern="^(csv|parquet|jsonl)$")] = "csv",
) -> StreamingResponse:
    fd, tmp = tempfile.mkstemp(dir=scratch_dir(ws), prefix="export-", suffix=f".{format}")
    os.close(fd)
    path = Path(tmp)
    try:
        ws.datasets.export(a, project, f"{name}@{version}", path)
    except Exception:
        path.unlink(missing_ok=True)
        raise

    def stream() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    media = {
        "csv": "text/csv",
        "parquet": "application/vnd.apache.parquet",
        "jsonl": "application/x-ndjson",
    }[format]
    return StreamingResponse(
        stream(), media_type=media, background=BackgroundTask(path.unlink, missing_ok=True)
    )


@router.post("/datasets/{name}/versions/{version}/release")
def release(
    project: str, name: str, version: Version, body: ReviewIn, ws: WS, a: ActorDep
) -> dict[str, Any]:
    return ws.datasets.review(
        a, project, f"{name}@{version}", release=True, reason=body.reason
    ).to_dict()


@router.post("/datasets/{name}/versions/{version}/reject")
def reject(
    project: str, name: str, version: Version, body: ReviewIn, ws: WS, a: ActorDep
) -> dict[str, Any]:
    return ws.datasets.review(
        a, project, f"{name}@{version}", release=False, reason=body.reason
    ).to_dict()


class ErasureIn(BaseModel):
    where: str = Field(min_length=3, max_length=2000, description="COLUMN=VALUE")
    reason: str = Field(max_length=1000)


@router.post("/datasets/{name}/erasures", status_code=201)
def erase(project: str, name: str, body: ErasureIn, ws: WS, a: ActorDep) -> dict[str, Any]:
    """Erase a data subject's rows (GDPR Art. 17); the report names it by pseudonym only."""
    req = ErasureRequest.parse(project, name, body.where, reason=body.reason)
    return ws.erasures.erase(a, req).to_dict()


@router.get("/datasets/{name}/erasures")
def erasures(project: str, name: str, ws: WS, a: ActorDep) -> list[dict[str, Any]]:
    return [r.to_dict() for r in ws.erasures.history(a, project, name)]


@router.get("/datasets/{name}/contract")
def get_contract(project: str, name: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    c = ws.datasets.contract(a, project, name)

    return {"contract": json.loads(c.to_json()) if c else None}


@router.put("/datasets/{name}/contract")
def put_contract(project: str, name: str, body: TextIn, ws: WS, a: ActorDep) -> dict[str, Any]:

    return {"contract": json.loads(ws.datasets.set_contract(a, project, name, body.body).to_json())}


@router.get("/datasets/{name}/policy")
def get_policy(project: str, name: str, ws: WS, a: ActorDep) -> dict[str, Any]:

    return {"policy": json.loads(ws.datasets.policy(a, project, name).to_json())}


@router.put("/datasets/{name}/policy")
def put_policy(project: str, name: str, body: TextIn, ws: WS, a: ActorDep) -> dict[str, Any]:

    return {"policy": json.loads(ws.datasets.set_policy(a, project, name, body.body).to_json())}


@router.get("/datasets/{name}/access-report")
def access_report(project: str, name: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    return ws.access_reports.access_report(a, project, name).to_dict()


@router.get("/lineage/{kind}/{node_id:path}")
def lineage_show(project: str, kind: NodeKind, node_id: str, ws: WS, a: ActorDep) -> dict[str, Any]:
    up, down = ws.provenance.show(a, project, Node(kind.value, f"{project}/{node_id}"))
    return {"upstream": up.to_dict(), "downstream": down.to_dict()}


@router.post("/lineage/{kind}/{node_id:path}/verify")
def lineage_verify(
    project: str, kind: NodeKind, node_id: str, ws: WS, a: ActorDep
) -> dict[str, Any]:
    return ws.provenance.verify(a, project, Node(kind.value, f"{project}/{node_id}")).to_dict()


__all__ = ["router"]
