"""The FastAPI application factory.

Every route is behind bearer-token authentication except the explicit public
list (``PUBLIC_PATHS``).  Unknown routes are plain 404s that expose nothing.
The request gate (``_gate.py``) authenticates, authorizes upload routes and bounds
every body before a byte of it is read; the limits come from ``ApiLimits``.

Example::

    app = create_app(Bastion.open(home, master))
    uvicorn.run(app, host="127.0.0.1", port=8700)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from bastion import __version__
from bastion.api import errors, routes_core
from bastion.api._gate import RequestGate
from bastion.api._limits import ApiLimits
from bastion.api.deps import actor
from bastion.workspace import Bastion

PUBLIC_PATHS = frozenset({"/health"})


def create_app(ws: Bastion, limits: ApiLimits | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # uvicorn re-raises SIGTERM after shutdown, so code after ``uvicorn.run``
        # may never run: write the counts of repeated failed logins here.
        ws.access.flush_failed_authentications()
        from bastion.api import routes_serving

        await routes_serving.shutdown(_app)  # stop model workers, write the prediction log

    app = FastAPI(
        lifespan=lifespan,
        title="Bastion",
        version=__version__,
        description="Secure the whole AI pipeline: data, models, deployment, governance.",
        openapi_url=None,  # served behind auth below
        docs_url=None,
        redoc_url=None,
        # Nothing phones home: FastAPI's built-in OpenTelemetry (spans, metrics, logs
        # with request bodies and validation errors) stays off even when the environment
        # asks for exporters (FASTAPI_OTEL_AUTO_CONFIGURE) or a provider is installed.
        # Prometheus metrics at /metrics are our own, pulled, behind auth.
        telemetry={"tracing": False, "metrics": False, "logs": False,
                   "operation_spans": False, "auto_configure": False},
    )
    app.state.workspace = ws
    app.state.limits = limits or ApiLimits()
    errors.install(app)

    @app.get("/health", tags=["public"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/openapi.json", dependencies=[Depends(actor)], include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    routers = [*_extra_routers(), routes_core.router]
    for router in routers:
        app.include_router(router)
    # The gate matches requests itself (before FastAPI reads a body), over every route.
    own = [r for r in app.router.routes if isinstance(r, APIRoute)]
    every = own + [r for router in routers for r in router.routes]
    app.add_middleware(
        RequestGate, routes=every, ws=ws, limits=app.state.limits, public=PUBLIC_PATHS
    )
    return app


def _extra_routers() -> list[APIRouter]:
    """Routers of the layers, collected here so the app shows the whole surface."""
    from bastion.api import (
        routes_alerts,
        routes_canary,
        routes_compliance,
        routes_data,
        routes_governance,
        routes_models,
        routes_providers,
        routes_release,
        routes_serving,
    )

    # the prediction route first: routing tries routes in order (no path overlaps another)
    return [routes_serving.router, routes_data.router, routes_models.router,
            routes_governance.router, routes_providers.router, routes_compliance.router,
            routes_release.router, routes_canary.router, routes_alerts.router]  # fmt: skip


__all__ = ["PUBLIC_PATHS", "create_app"]
