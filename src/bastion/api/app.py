"""The FastAPI application factory.

Every route is behind bearer-token authentication except the explicit public
list (``PUBLIC_PATHS``).  Unknown routes are plain 404s that expose nothing.

Example::

    app = create_app(Bastion.open(home, master))
    uvicorn.run(app, host="127.0.0.1", port=8700)
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from bastion import __version__
from bastion.api import errors, routes_core
from bastion.api.deps import actor
from bastion.workspace import Bastion

PUBLIC_PATHS = frozenset({"/health"})


def create_app(ws: Bastion) -> FastAPI:
    app = FastAPI(
        title="Bastion",
        version=__version__,
        description="Secure the whole AI pipeline: data, models, deployment, governance.",
        openapi_url=None,  # served behind auth below
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = ws
    errors.install(app)

    @app.get("/health", tags=["public"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/openapi.json", dependencies=[Depends(actor)], include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    app.include_router(routes_core.router)
    for extra in _extra_routers():
        app.include_router(extra)
    return app


def _extra_routers() -> list[Any]:
    """Routers of the layers, collected here so the app shows the whole surface."""
    from bastion.api import routes_data, routes_models

    routers: list[Any] = [routes_data.router, routes_models.router]
    return routers


__all__ = ["PUBLIC_PATHS", "create_app"]
