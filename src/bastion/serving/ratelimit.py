"""Rate limits per principal and per endpoint, with the ``limits`` library.

Moving-window limits (``"50/second"``, ``"1000/minute"``) kept in process by default
(``memory://``) or in any storage ``limits`` knows (``redis://host:6379``: several gateway
replicas then share one limit).  A refusal carries the seconds until the window frees
a slot, for ``Retry-After``.

Shared storage fails closed: when Redis cannot be reached or does not answer within
``REMOTE_TIMEOUT`` seconds, a hit raises ``RateLimitUnavailable`` (503) instead of
letting the request through unlimited.  Every key starts with the options' ``namespace``
(the gateway uses an HMAC under the workspace's keyring): two workspaces pointed at one
Redis keep separate limits, and one cannot drain or reset the other's.

Example::

    limiter = RateLimiter(RateLimitOptions(per_principal="5/second"))
    limiter.hit_principal("alice")      # raises Throttled on the sixth call in a second
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies
from limits.errors import StorageError as LimitsStorageError

from bastion.core.errors import ConfigurationError
from bastion.serving.errors import RateLimitUnavailable, Throttled

_log = logging.getLogger(__name__)

#: seconds to connect to / hear from a shared storage before failing closed
REMOTE_TIMEOUT = 0.5


@dataclass(frozen=True)
class RateLimitOptions:
    per_principal: str = "50/second"
    per_endpoint: str = "500/second"
    storage_url: str = "memory://"
    #: prefix of every key: workspaces sharing one Redis never share (or reset) a limit
    namespace: str = "default"


_LIMITS_EXPIRE = "_MemoryStorage__expire_events"


class _MemoryStorage(storage.MemoryStorage):
    """``limits``' in-process storage, expiring old entries once a second from one
    daemon thread instead of starting a new ``threading.Timer`` every 10 ms of traffic
    (a thread start on the event loop for nearly every hit under load). Decisions do not
    depend on the expiry (a hit compares timestamps); only
    memory does: a key holds at most its limit plus one second of hits."""

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        ref = weakref.ref(self)
        threading.Thread(target=_expire_every_second, args=(ref,), daemon=True,
                         name="rate-limit-expiry").start()

    def _MemoryStorage__schedule_expiry(self) -> None:
        """Nothing per hit: the daemon thread expires entries."""

    def expire(self) -> None:
        getattr(self, _LIMITS_EXPIRE)()  # limits' own (name-mangled) expiry pass


def _expire_every_second(ref: weakref.ref[_MemoryStorage]) -> None:
    while True:
        time.sleep(1.0)
        store = ref()
        if store is None:
            return  # the limiter is gone
        try:
            store.expire()
        except Exception:  # the only expiry there is: it must outlive a failing pass
            _log.exception("rate-limit expiry pass failed; retrying in a second")
        del store


def _parse(text: str, what: str) -> RateLimitItem:
    try:
        return parse(text)
    except ValueError as e:
        raise ConfigurationError(f"{what} rate limit {text!r} is not a limit: {e}",
                                 hint='write e.g. "50/second" or "1000/minute"') from e


class RateLimiter:
    """See the module docstring."""

    def __init__(self, options: RateLimitOptions | None = None) -> None:
        self.options = options or RateLimitOptions()
        self._principal = _parse(self.options.per_principal, "per-principal")
        self._endpoint = _parse(self.options.per_endpoint, "per-endpoint")
        url = self.options.storage_url
        #: the storage is over the network (shared): callers keep it off their event loop
        self.remote = not url.startswith("memory://")
        extra: dict[str, float | bool] = {}
        if url.startswith(("redis://", "rediss://", "redis+unix://")):
            extra = {"socket_timeout": REMOTE_TIMEOUT, "socket_connect_timeout": REMOTE_TIMEOUT}
        try:
            store = (_MemoryStorage(url, wrap_exceptions=True) if not self.remote else
                     storage.storage_from_string(url, wrap_exceptions=True, **extra))
        except Exception as e:  # limits raises several types for a bad URL
            raise ConfigurationError(
                f"rate-limit storage {self.options.storage_url!r} is unusable: {e}",
                hint="memory:// (one process) or redis://HOST:PORT (shared)") from e
        self._limiter = strategies.MovingWindowRateLimiter(store)

    def _hit(self, item: RateLimitItem, kind: str, key: str) -> None:
        try:
            ns = self.options.namespace
            if self._limiter.hit(item, ns, kind, key):
                return
            reset = self._limiter.get_window_stats(item, ns, kind, key).reset_time
        except LimitsStorageError as e:  # fail closed: never unlimited traffic
            raise RateLimitUnavailable(
                f"the rate-limit storage is unreachable ({type(e.storage_error).__name__}); "
                "requests are refused until it answers again",
                hint="check that the Redis server in BASTION_SERVING_RATE_STORAGE is up") from e
        wait = max(1, math.ceil(reset - time.time()))
        raise Throttled(f"rate limit of {item} per {kind} exceeded", retry_after=wait,
                        hint=f"retry after {wait} s")

    def hit_principal(self, principal: str) -> None:
        self._hit(self._principal, "principal", principal)

    def hit_endpoint(self, project: str, endpoint: str) -> None:
        self._hit(self._endpoint, "endpoint", f"{project}/{endpoint}")


__all__ = ["RateLimitOptions", "RateLimiter"]
