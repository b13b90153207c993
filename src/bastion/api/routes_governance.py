"""Governance routes: a model version's card (GET in md/html/json/cyclonedx, PUT YAML)."""

from __future__ import annotations

import enum

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from bastion.api._gate import rule
from bastion.api._limits import BodyKind
from bastion.api.deps import WS, ActorDep, Version, actor
from bastion.core.errors import InputError

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])


class CardFormat(enum.StrEnum):
    MD = "md"
    HTML = "html"
    JSON = "json"
    CYCLONEDX = "cyclonedx"


_MEDIA = {
    CardFormat.MD: "text/markdown; charset=utf-8",
    CardFormat.HTML: "text/html; charset=utf-8",
    CardFormat.JSON: "application/json",
    CardFormat.CYCLONEDX: "application/vnd.cyclonedx+json; version=1.6",
}


@router.get("/models/{name}/versions/{version}/card")
def get_card(
    project: str,
    name: str,
    version: Version,
    ws: WS,
    a: ActorDep,
    format: CardFormat = CardFormat.JSON,
    card_version: int | None = None,
) -> Response:
    from bastion.governance.render import render_html, render_json, render_markdown

    card = ws.cards.card(a, project, f"{name}@{version}", card_version=card_version)
    if format is CardFormat.CYCLONEDX:
        from bastion.governance.mlbom import ml_bom

        body = ml_bom(card)
    else:
        body = {CardFormat.MD: render_markdown, CardFormat.HTML: render_html}.get(
            format, render_json
        )(card)
    # the HTML is escaped; the CSP and nosniff keep any browser from running anything in it
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"}
    return Response(body, media_type=_MEDIA[format], headers=headers)


@router.put("/models/{name}/versions/{version}/card", status_code=201)
@rule(BodyKind.JSON, "card.edit", "project/{project}/model/{name}")
async def put_card(
    project: str, name: str, version: Version, request: Request, ws: WS, a: ActorDep
) -> dict[str, object]:
    """The body is the card YAML (``Content-Type: application/yaml``)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("the card body must be UTF-8 YAML") from e
    cv = await run_in_threadpool(ws.cards.edit, a, project, f"{name}@{version}", text)
    return {
        "model": f"{cv.model}@{cv.version}",
        "card_version": cv.card_version,
        "card_sha256": cv.spec_sha256,
        "edited_by": cv.created_by,
        "edited_at": cv.created_at,
    }


__all__ = ["router"]
