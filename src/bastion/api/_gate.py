"""The request gate: authenticate, authorize and bound a request before its body is read.

A pure-ASGI middleware in front of FastAPI, because FastAPI reads and parses a JSON body
*before* it runs a route's dependencies: without the gate a 300 MB body from nobody is
parsed before the 401. For every request the gate

1. matches the route (path and method only);
2. authenticates the bearer token from the headers (401), unless the path is public;
3. when the route declares a :class:`RouteRule` with an action, authorizes that action on
   the resource named by the path (403) — through ``AccessService.authorize``, the single
   audited decision (the entry carries ``stage: before-body``); the service the route
   calls authorizes again as it always does, so the CLI and the API share one rule;
4. refuses a declared ``Content-Length`` above the route's body limit (413);
5. then counts the body as it streams (chunked bodies have no length) and refuses it at
   the first byte over the limit (413), or when the client stalls longer than the body
   deadline between two chunks (408).

Nothing of the body has been received when steps 2-4 refuse; the connection is closed.

Example::

    @router.put("/projects/{project}/objects/{name:path}")
    @rule(BodyKind.UPLOAD, "blob.write", "project/{project}/objects/{name}")
    async def put_object(...): ...
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api._limits import ApiLimits, BodyKind, PayloadTooLarge, RequestTimeout, env_name
from bastion.api.errors import render
from bastion.core.access.values import Actor
from bastion.core.errors import BastionError
from bastion.workspace import Bastion

_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_RULE_ATTR = "__bastion_rule__"
_MATCH_CACHE = 4096  # (method, path) pairs remembered by the gate; cleared when full
_MATCH_PATH_MAX = 256
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteRule:
    """What a route accepts and, optionally, the permission checked before its body.

    ``resource`` is a template over the route's path parameters, e.g.
    ``"project/{project}/dataset/{name}"``.
    """

    body: BodyKind = BodyKind.JSON
    action: str | None = None
    resource: str | None = None


def rule(body: BodyKind, action: str, resource: str) -> Callable[[F], F]:
    """Declare a route's body kind and the (action, resource) authorized before its body."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _RULE_ATTR, RouteRule(body, action, resource))
        return endpoint

    return mark


def rule_of(endpoint: object) -> RouteRule:
    found = getattr(endpoint, _RULE_ATTR, None)
    return found if isinstance(found, RouteRule) else RouteRule()


def request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            supplied = str(value.decode("latin-1"))
            if _RID.match(supplied):
                return supplied
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestGate:
    """See the module docstring."""

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute], ws: Bastion, limits: ApiLimits,
        public: frozenset[str],
    ) -> None:
        self.app = app
        self._routes = tuple(routes)
        self._ws = ws
        self._limits = limits
        self._public = public
        self._matched: dict[tuple[str, str], tuple[RouteRule, Mapping[str, Any]] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        client = scope.get("client")
        state["client"] = self._limits.proxies.client(
            str(client[0]) if client else "", scope.get("headers", ()))
        matched = self._match(scope)
        route_rule = matched[0] if matched else RouteRule()
        limit = self._limits.body_limit(route_rule.body)
        try:
            if matched is not None and scope["path"] not in self._public:
                state["actor"] = await self._admit(scope, rid, *matched)
            _check_length(scope, limit, route_rule.body)
        except BastionError as e:
            response = render(e, rid)
            response.headers["Connection"] = "close"  # the unread body must not be parsed
            await response(scope, receive, send)
            return
        body = _BoundedBody(receive, limit, self._limits.body_timeout, route_rule.body)
        await body.run(self.app, scope, send, rid)

    def _match(self, scope: Scope) -> tuple[RouteRule, Mapping[str, Any]] | None:
        # Matching walks every route (~10 % of the gateway's CPU under load); the answer
        # depends on the method and path alone, so it is remembered (bounded).
        key = (scope.get("method", ""), scope["path"])
        if key in self._matched:
            return self._matched[key]
        found = self._walk(scope)
        if len(key[1]) > _MATCH_PATH_MAX:
            return found  # bounded bytes too: long (odd) paths are matched every time
        if len(self._matched) >= _MATCH_CACHE:
            self._matched.clear()
        self._matched[key] = found
        return found

    def _walk(self, scope: Scope) -> tuple[RouteRule, Mapping[str, Any]] | None:
        for route in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return rule_of(child.get("endpoint")), child.get("path_params", {})
        return None  # unknown path or method: routing answers 404/405 without reading a body

    async def _admit(
        self, scope: Scope, rid: str, route_rule: RouteRule, params: Mapping[str, Any]
    ) -> Actor:
        header = _header(scope, b"authorization") or ""
        scheme, _, token = header.partition(" ")
        secret = token.strip() if scheme.lower() == "bearer" else None
        access = self._ws.access
        source = str(scope["state"]["client"])  # keys aggregated auth-failure records
        # a token verified within the access cache's window needs no thread hop
        actor = access.cached_actor(secret, request_id=rid)
        if actor is None:
            actor = await anyio.to_thread.run_sync(
                lambda: access.authenticate(secret, request_id=rid, source=source)
            )
        if route_rule.action and route_rule.resource:
            resource = route_rule.resource.format(**{k: str(v) for k, v in params.items()})
            action = route_rule.action
            await anyio.to_thread.run_sync(
                lambda: access.authorize(actor, action, resource, details={"stage": "before-body"})
            )
        return actor


def _check_length(scope: Scope, limit: int, kind: BodyKind) -> None:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit, kind)


def _too_large(limit: int, kind: BodyKind) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than this route's limit of {limit} bytes",
        hint=f"the server's {env_name(kind)} sets the limit",
    )


class _BoundedBody:
    """Counts body bytes and bounds the wait for each chunk; turns a breach into 413/408.

    The breach is raised from ``receive`` into the app, which may wrap it (FastAPI turns a
    failed JSON read into a 400); so the response is replaced here, whatever the app sends.
    """

    def __init__(self, receive: Receive, limit: int, timeout: float, kind: BodyKind) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout = timeout
        self._kind = kind
        self._seen = 0
        self._done = False
        self._refusal: BastionError | None = None
        self._started = False

    async def receive(self) -> Message:
        if self._done:  # after the body: e.g. waiting for a disconnect during a download
            return await self._receive()
        try:
            with anyio.fail_after(self._timeout):
                message = await self._receive()
        except TimeoutError:
            self._refusal = RequestTimeout(
                f"the request body stalled for more than {self._timeout:g} s",
                hint="send the body without pauses (BASTION_API_BODY_TIMEOUT sets the limit)",
            )
            raise self._refusal from None
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self._refusal = _too_large(self._limit, self._kind)
                raise self._refusal
            self._done = not message.get("more_body", False)
        else:
            self._done = True
        return message

    async def run(self, app: ASGIApp, scope: Scope, send: Send, rid: str) -> None:
        async def guarded_send(message: Message) -> None:
            if self._refusal is not None:
                if message["type"] == "http.response.start" and not self._started:
                    self._started = True
                    await render(self._refusal, rid)(scope, self._receive, send)
                return  # drop whatever the app answered to the broken body
            self._started = self._started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, self.receive, guarded_send)
        except Exception:
            if self._refusal is None or self._started:
                raise
            self._started = True
            await render(self._refusal, rid)(scope, self._receive, send)


__all__ = ["RequestGate", "RouteRule", "request_id", "rule", "rule_of"]
