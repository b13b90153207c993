"""The prediction gateway's routes: ``POST /v1/endpoints/{name}/predict``, ``/metrics`` and
``GET /v1/endpoints/{name}/manifests`` (Dockerfile + Kubernetes manifests).

The request gate authenticates before the body and bounds it (size, deadline); the route
refuses a body that is not JSON unread (415), then the gateway admits the caller (rate
limit per principal, ``predict`` authorized on the endpoint, rate limit per endpoint)
*before* the body is read, and only then reads, validates and predicts.

Example::

    curl -H "Authorization: Bearer $T" -d '{"row": {...}}' \\
         http://127.0.0.1:8700/v1/endpoints/scoring/predict?project=credit
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from bastion.api._gate import rule
from bastion.api._limits import BodyKind
from bastion.api.deps import ActorDep
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.serving.adversarial import alert_sink
from bastion.serving.errors import UnsupportedContent
from bastion.serving.gateway import Gateway, GatewayOptions
from bastion.serving.live import LiveSampler
from bastion.serving.manifests import endpoint_manifests
from bastion.serving.metrics import CONTENT_TYPE
from bastion.workspace import Bastion

router = APIRouter(tags=["serving"])
_FLUSH_SECONDS = 1.0


def gateway_of(app: FastAPI) -> Gateway:
    """The app's gateway, built on first use (its workers start with their endpoints)."""
    gw: Gateway | None = getattr(app.state, "gateway", None)
    if gw is None:
        ws: Bastion = app.state.workspace
        options = getattr(app.state, "gateway_options", None) or GatewayOptions()
        # Features are logged as an HMAC under a keyring key: a plain hash of
        # low-entropy rows (age, income band) is reversed by hashing candidates.
        digest = functools.partial(ws.keyring.keyed_digest, "prediction-features")
        # Rate-limit keys are prefixed per workspace (replicas share the keyring, so
        # they share the prefix; another workspace on the same Redis does not).
        namespace = ws.keyring.keyed_digest("rate-limit-namespace", b"")[:16]
        options = dataclasses.replace(
            options, rate=dataclasses.replace(options.rate, namespace=namespace))
        gw = Gateway(ws.access, ws.deployments, ws.models, ws.scratch.workdir, digest, options,
                     canaries=ws.canaries,
                     sticky_digest=functools.partial(ws.keyring.keyed_digest, "canary-sticky"))
        app.state.gateway = gw
        app.state.gateway_flusher = asyncio.create_task(_flush_forever(gw))
        # drift monitoring: a bounded sample of answered rows, flushed encrypted, checked
        sampler = app.state.gateway_sampler = LiveSampler()
        gw.observers.append(sampler.observe)
        # evasion / extraction suspicions raise alerts (log and webhooks)
        gw.guard.on_suspect = alert_sink(ws.alerts)
        app.state.gateway_monitor = asyncio.create_task(ws.monitor.follow(
            sampler, check_seconds=getattr(app.state, "monitor_seconds", 60.0)))
    return gw


async def _flush_forever(gw: Gateway) -> None:
    while True:
        await asyncio.sleep(_FLUSH_SECONDS)
        with contextlib.suppress(Exception):  # a database hiccup must not end the loop
            await gw.flush_log()


async def shutdown(app: FastAPI) -> None:
    """Stop the workers and write the last of the prediction log."""
    gw: Gateway | None = getattr(app.state, "gateway", None)
    if gw is None:
        return
    flusher = getattr(app.state, "gateway_flusher", None)
    if flusher is not None:
        flusher.cancel()
    monitor = getattr(app.state, "gateway_monitor", None)
    if monitor is not None:
        monitor.cancel()
        ws: Bastion = app.state.workspace
        with contextlib.suppress(Exception):  # the last sampled rows, as for the log
            await asyncio.to_thread(ws.monitor.flush, app.state.gateway_sampler)
    await gw.close()


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json"


@router.post("/v1/endpoints/{name}/predict")
async def predict(
    request: Request,
    name: str,
    actor: ActorDep,
    project: Annotated[str, Query(max_length=100)] = DEFAULT_PROJECT,
) -> JSONResponse:
    """Predict one row (``{"row": {...}}``) or a bounded batch (``{"rows": [...]}``)."""
    if not _is_json(request):
        raise UnsupportedContent("a prediction body must be application/json",
                                 hint="send JSON rows; pickles and binary bodies are refused")
    gw = gateway_of(request.app)
    # decided allowed; the body is read and predicted while the decision is committed
    admission = await gw.admit(actor, project, name)
    try:
        body = await request.body()  # bounded by the request gate
        answer = await gw.predict(actor, project, name, body, request_id=actor.request_id,
                                  headers=request.headers, admission=admission)
    finally:
        await admission.recorded()  # no answer, not even an error, before it is on disk
    return JSONResponse(answer)


@router.get("/v1/endpoints/{name}/manifests")
def manifests(
    request: Request,
    name: str,
    actor: ActorDep,
    project: Annotated[str, Query(max_length=100)] = DEFAULT_PROJECT,
) -> dict[str, str]:
    """A Dockerfile and Kubernetes manifests for the version in service (``deployment.read``);
    file name -> text.  The image in them is a placeholder to replace by your image digest."""
    ws: Bastion = request.app.state.workspace
    options = getattr(request.app.state, "gateway_options", None) or GatewayOptions()
    return endpoint_manifests(ws.deployments, actor, project, name, options.limits)


@router.get("/metrics", include_in_schema=False)
@rule(BodyKind.JSON, "deployment.read", "system/metrics")
async def metrics(request: Request, _actor: ActorDep) -> Response:
    """Prometheus metrics (bearer token of a principal with a global deployment.read)."""
    return Response(gateway_of(request.app).metrics.render(), media_type=CONTENT_TYPE)


__all__ = ["gateway_of", "router", "shutdown"]
