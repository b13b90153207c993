"""The one place that maps Bastion error types to HTTP statuses.

Client errors (4xx) return the message and hint; server-side faults (5xx)
return only the error code and the request id, so bodies never leak paths,
stack traces or secrets.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bastion.api._limits import ArchiveTooLarge, PayloadTooLarge, RequestTimeout
from bastion.core.errors import (
    AccessDenied,
    AuthenticationFailed,
    BastionError,
    Conflict,
    InputError,
    IntegrityError,
    NotFound,
    NotVisible,
    PolicyDenied,
    RateLimited,
    StorageError,
    StorageFull,
)
from bastion.model_security.errors import MaliciousArtifact, SignatureInvalid, TrainingFailed
from bastion.serving.errors import (
    InvalidFeatures,
    Throttled,
    UnsupportedContent,
    WebhookRefused,
    WorkerUnavailable,
)

log = logging.getLogger("bastion.api")

# Order matters: the first matching class wins (subclasses before their bases).
_STATUS: list[tuple[type[BastionError], int]] = [
    # A refused upload is understood but unacceptable; the message says why (nothing ran).
    (MaliciousArtifact, 422),
    # A stored version no longer matches its signature (tampered, or its key revoked):
    # the resource's state, not the request, is at fault; the client needs the reason.
    (SignatureInvalid, 409),
    (TrainingFailed, 422),
    # A prediction request whose rows break the endpoint's input schema (field, reason).
    (InvalidFeatures, 422),
    (UnsupportedContent, 415),
    # A webhook URL the SSRF guard refuses: the request is understood, its target is not
    # acceptable (422 naming the field, as for any invalid field of a body).
    (WebhookRefused, 422),
    # The sandboxed model worker died or missed its deadline; it is being restarted.
    (WorkerUnavailable, 503),
    (PayloadTooLarge, 413),
    (ArchiveTooLarge, 413),
    (RequestTimeout, 408),
    (AuthenticationFailed, 401),
    # Denied where the caller has no role at all: the same 404 whether it exists or not.
    (NotVisible, 404),
    (AccessDenied, 403),
    (PolicyDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InputError, 400),
    (RateLimited, 429),
    (StorageFull, 507),
    (StorageError, 503),
    (IntegrityError, 500),
]


def status_for(e: BastionError) -> int:
    for cls, status in _STATUS:
        if isinstance(e, cls):
            return status
    return 500


def _rid(request: Request) -> str:
    return str(getattr(request.state, "request_id", None) or uuid.uuid4().hex)


def render(e: BastionError, request_id: str) -> JSONResponse:
    """The response for a Bastion error (also used by the request gate, before routing)."""
    status = status_for(e)
    body: dict[str, object] = {"error": e.code, "request_id": request_id}
    if status < 500:
        body["message"] = e.message
        if e.hint:
            body["hint"] = e.hint
        if isinstance(e, InvalidFeatures):
            body["field"], body["reason"] = e.field, e.reason
        if isinstance(e, WebhookRefused):
            body["field"] = "url"
    else:
        log.error("request %s failed: %s", request_id, e.message)
        body["message"] = "the server could not complete the request"
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if isinstance(e, Throttled):
        headers["Retry-After"] = str(e.retry_after)
    if status in (408, 413):  # the body was not read to its end: the connection cannot be reused
        headers["Connection"] = "close"
    return JSONResponse(body, status_code=status, headers=headers or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(BastionError)
    async def _bastion(request: Request, e: BastionError) -> JSONResponse:
        return render(e, _rid(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse(
            {"error": code, "message": str(e.detail), "request_id": _rid(request)},
            status_code=e.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
            for err in e.errors()
        ]
        return JSONResponse(
            {
                "error": "invalid_input",
                "message": "request validation failed",
                "problems": problems,
                "request_id": _rid(request),
            },
            status_code=422,
        )

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, e: RecursionError) -> JSONResponse:
        # A document nested thousands deep (a contract, a policy, a training spec) makes
        # the json/yaml parsers recurse until Python stops them: the input is at fault.
        return JSONResponse(
            {
                "error": "invalid_input",
                "message": "the document is nested too deeply",
                "hint": "flatten it; documents deeper than a few dozen levels are refused",
                "request_id": _rid(request),
            },
            status_code=400,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error in request %s", _rid(request))
        return JSONResponse(
            {
                "error": "internal_error",
                "message": "the server could not complete the request",
                "request_id": _rid(request),
            },
            status_code=500,
        )


__all__ = ["install", "render", "status_for"]
