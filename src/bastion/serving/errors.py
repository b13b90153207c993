"""Errors of the serving layer (all derive from ``BastionError``).

::

    ServingError
    ├── DeploymentRefused   the release gate failed, or the version is unsigned, tampered,
    │                       revoked or fails the scan (a PolicyDenied)
    ├── InvalidFeatures     a prediction request breaks the input schema (an InputError; 422,
    │                       names the field and the reason)
    ├── Throttled           a rate limit is exhausted (a RateLimited; 429 with Retry-After)
    ├── RateLimitUnavailable  the shared rate-limit storage does not answer (a StorageError;
    │                       503: rate-limited routes fail closed)
    ├── NoDeployment        the endpoint has nothing in service (a NotFound)
    ├── UnsupportedContent  a prediction body that is not JSON (415; never read)
    ├── WorkerUnavailable   the sandboxed worker died, timed out or cannot start (503)
    ├── WireError           a frame breaks the gateway <-> worker format (too large, not JSON)
    ├── WebhookRefused      a webhook target that could reach loopback, link-local, private
    │                       or reserved addresses, or carries credentials (an InputError)
    └── AlertNotFound       no such alert in the project (a NotFound)
"""

from __future__ import annotations

from bastion.core.errors import (
    BastionError,
    InputError,
    NotFound,
    PolicyDenied,
    RateLimited,
    StorageError,
)


class ServingError(BastionError):
    code = "serving_error"


class DeploymentRefused(ServingError, PolicyDenied):
    """A deploy or rollback that may not happen; nothing changed."""

    code = "deployment_refused"


class InvalidFeatures(ServingError, InputError):
    """The request's rows do not satisfy the endpoint's input schema."""

    code = "invalid_features"

    def __init__(self, message: str, *, field: str, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.reason = reason


class Throttled(ServingError, RateLimited):
    """A per-principal or per-endpoint limit is exhausted; retry after ``retry_after`` s."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class RateLimitUnavailable(ServingError, StorageError):
    """The shared rate-limit storage (Redis) does not answer: rate-limited routes fail
    closed (503) rather than serve unlimited traffic."""

    code = "rate_limit_unavailable"


class NoDeployment(ServingError, NotFound):
    code = "no_deployment"


class WorkerUnavailable(ServingError):
    """The sandboxed worker could not answer (it died, timed out or failed to start)."""

    code = "worker_unavailable"


class WireError(ServingError):
    """A frame that breaks the worker protocol (oversized, not strict JSON, wrong shape)."""

    code = "wire_error"


__all__ = [
    "DeploymentRefused",
    "InvalidFeatures",
    "NoDeployment",
    "RateLimitUnavailable",
    "ServingError",
    "Throttled",
    "UnsupportedContent",
    "WireError",
    "WorkerUnavailable",
]


class UnsupportedContent(ServingError, InputError):
    """A prediction body that is not JSON (a pickle, a binary upload): refused unread."""

    code = "unsupported_media_type"


class WebhookRefused(ServingError, InputError):
    """A webhook target that could reach the machine's own network (loopback, link-local,
    private, reserved), or is not a plain http(s) URL (SSRF guard; nothing is stored)."""

    code = "webhook_refused"


class AlertNotFound(ServingError, NotFound):
    code = "alert_not_found"


__all__ += ["AlertNotFound", "WebhookRefused"]
