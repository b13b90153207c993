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
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

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
    actor: ActorDep,
    project: Annotated[str, Query(max_length=100)] = DEFAULT_PROJECT,
) -> dict[str, object]:
    """Label one of your answered predictions (the canary analysis' accuracy check)."""
    # the rate limit first: a throttled caller's body is neither read nor parsed (a body
    # parameter would make FastAPI read and validate it before this function runs)
    await gateway_of(request.app).limit_principal(actor, project, name)
    body = _parse(await request.body())  # bounded by the request gate
    ws: Bastion = request.app.state.workspace
    receipt = await anyio.to_thread.run_sync(
        lambda: ws.canaries.feedback(actor, project, name, body.request_id, body.label))
    return dict(receipt.to_dict())


def _parse(raw: bytes) -> FeedbackBody:
    try:
        return FeedbackBody.model_validate_json(raw)
    except ValidationError as e:  # answered as FastAPI answers a body parameter (422)
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        ) from None


__all__ = ["router"]
