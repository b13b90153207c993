"""Feedback labels for canary analysis: ``POST /v1/endpoints/{name}/feedback``.

``{"request_id": "...", "label": "good"}`` labels one prediction the caller made on the
endpoint (``predict.feedback``; once per request id; an unknown or another principal's
request id is 404, a second label 409).  A flood is bounded by the caller's prediction
rate limit (the same budget: 429 with Retry-After) before anything is read or stored.

Example::

    curl -H "Authorization: Bearer $T" -d '{"request_id": "r-17", "label": "good"}' \\
         http://127.0.0.1:8700/v1/endpoints/scoring/feedback?project=credit
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from bastion.api.deps import ActorDep
from bastion.api.routes_serving import gateway_of
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.workspace import Bastion

router = APIRouter(tags=["serving"])


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    label: StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=200)]


@router.post("/v1/endpoints/{name}/feedback", status_code=201)
async def feedback(
    request: Request,
    name: str,
    body: FeedbackBody,
    actor: ActorDep,
    project: Annotated[str, Query(max_length=100)] = DEFAULT_PROJECT,
) -> dict[str, object]:
    """Label one of your answered predictions (the canary analysis' accuracy check)."""
    await gateway_of(request.app).limit_principal(actor, project, name)
    ws: Bastion = request.app.state.workspace
    receipt = await anyio.to_thread.run_sync(
        lambda: ws.canaries.feedback(actor, project, name, body.request_id, body.label))
    return dict(receipt.to_dict())


__all__ = ["router"]
