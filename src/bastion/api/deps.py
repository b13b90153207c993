"""Request dependencies: the workspace and the authenticated actor."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

import anyio
from fastapi import Depends, Request
from pydantic import BeforeValidator, Field

from bastion.api._limits import ApiLimits
from bastion.core.access.values import Actor
from bastion.workspace import Bastion

_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# Both are ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, two
# thread hops per request for what is, after the request gate, an attribute read.
async def workspace(request: Request) -> Bastion:
    ws: Bastion = request.app.state.workspace
    return ws


async def actor(request: Request, ws: Annotated[Bastion, Depends(workspace)]) -> Actor:
    """The caller: authenticated by the request gate before the body, else here (401)."""
    admitted = getattr(request.state, "actor", None)
    if isinstance(admitted, Actor):
        return admitted
    supplied = request.headers.get("x-request-id", "")
    rid = supplied if _RID.match(supplied) else uuid.uuid4().hex
    request.state.request_id = rid
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" else None
    source = client_address(request)
    return await anyio.to_thread.run_sync(
        lambda: ws.access.authenticate(secret, request_id=rid, source=source))


def client_address(request: Request) -> str:
    """The caller's address: the request gate's (trusted proxies applied), else the peer."""
    found = getattr(request.state, "client", None)
    if isinstance(found, str):
        return found
    peer = request.client.host if request.client else ""
    proxies = limits(request).proxies
    return proxies.client(peer, request.scope.get("headers", ()))


def limits(request: Request) -> ApiLimits:
    found: ApiLimits = request.app.state.limits
    return found


WS = Annotated[Bastion, Depends(workspace)]
LimitsDep = Annotated[ApiLimits, Depends(limits)]
ActorDep = Annotated[Actor, Depends(actor)]


def _ascii_digits(value: object) -> object:
    # A version in a path is written one way: ASCII digits ("1.0", "+1", "1_000" and
    # non-ASCII digits would otherwise be read as numbers by the lax int parser).
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("a version is written in ASCII digits, e.g. 3")
    return value


#: a version number in a route: ASCII digits, 1 .. 2**63 - 1 (422 otherwise)
Version = Annotated[int, BeforeValidator(_ascii_digits), Field(ge=1, le=2**63 - 1)]

__all__ = ["WS", "ActorDep", "LimitsDep", "actor", "client_address", "limits", "workspace"]
