"""The prediction route is tried first (app.py puts the serving router first). That is only
safe while no route of one router can take a request meant for another's."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from bastion.api import routes_core
from bastion.api.app import _extra_routers


def _sample(path: str) -> str:
    path = re.sub(r"\{[^}]+:path\}", "x1/y2", path)
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_no_route_of_one_router_shadows_a_route_of_another() -> None:
    routers = [*_extra_routers(), routes_core.router]
    routes = [(i, r) for i, router in enumerate(routers) for r in router.routes
              if isinstance(r, APIRoute)]
    assert len(routes) > 50
    shadowed = [(a.path, b.path) for i, a in routes for j, b in routes
                if i != j and (a.methods & b.methods) and b.path_regex.match(_sample(a.path))]
    assert shadowed == []


def test_the_prediction_route_is_matched_first() -> None:
    first = _extra_routers()[0].routes[0]
    assert isinstance(first, APIRoute) and first.path == "/v1/endpoints/{name}/predict"
