"""A short-lived memory of verified tokens and of each principal's role bindings.

The prediction gateway authenticates and authorizes every request; reading the token,
the principal and its bindings from the database each time caps it well below what
the model workers can answer.  :class:`AccessCache` keeps, for at most ``ttl`` seconds
after it was read from the store:

- a token that *verified* (never a refusal), keyed by the SHA-256 of the whole bearer
  string, so only the exact secret that verified can hit (a right id with a wrong
  secret misses and goes the full way, audited); its expiry is still checked on every
  hit;
- a principal and its role bindings, as ``authorize`` reads them to decide.

The window: a token revoked, a principal disabled or a binding removed **by another
process** (the CLI, another replica) is honoured by this process within ``ttl`` seconds
(default 1 s, the gateway's own refresh interval for deployments). A change made
through this process's ``AccessService`` clears the cache at once (``invalidate``): a
generation counter makes a read that started before the change unable to store its
stale result after it.  The cache holds at most ``max_entries`` of each kind (cleared
when full: a flood of distinct tokens costs the database, never memory).

Example::

    cache = AccessCache(ttl=1.0)
    gen = cache.generation
    cache.put_token(key, entry, gen)      # ignored if invalidated since ``gen``
    cache.token(key)                      # the entry, for at most ttl seconds
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bastion.core.access.values import Principal, PrincipalId, RoleBinding, TokenId

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class VerifiedToken:
    principal_id: PrincipalId
    name: str
    token_id: TokenId
    expires_at: dt.datetime | None  # checked on every hit


@dataclass(frozen=True)
class Subject:
    """What ``authorize`` reads to decide: the principal and its bindings."""

    principal: Principal | None
    bindings: tuple[RoleBinding, ...]


class _Bounded(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self.items: dict[K, tuple[float, V]] = {}
        self.max_entries = max_entries

    def get(self, key: K, now: float) -> V | None:
        found = self.items.get(key)
        if found is None:
            return None
        if found[0] <= now:
            self.items.pop(key, None)
            return None
        return found[1]

    def put(self, key: K, value: V, until: float) -> None:
        if len(self.items) >= self.max_entries:
            self.items.clear()
        self.items[key] = (until, value)


class AccessCache:
    """See the module docstring. ``ttl <= 0`` disables it (every lookup misses)."""

    def __init__(self, ttl: float = 1.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: _Bounded[bytes, VerifiedToken] = _Bounded(max_entries)
        self._subjects: _Bounded[PrincipalId, Subject] = _Bounded(max_entries)
        self.generation = 0

    def token(self, key: bytes) -> VerifiedToken | None:
        with self._lock:
            return self._tokens.get(key, self._clock())

    def put_token(self, key: bytes, entry: VerifiedToken, generation: int) -> None:
        self._put(lambda until: self._tokens.put(key, entry, until), generation)

    def subject(self, pid: PrincipalId) -> Subject | None:
        with self._lock:
            return self._subjects.get(pid, self._clock())

    def put_subject(self, pid: PrincipalId, subject: Subject, generation: int) -> None:
        self._put(lambda until: self._subjects.put(pid, subject, until), generation)

    def _put(self, store: Callable[[float], None], generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if generation == self.generation:  # nothing changed since the read began
                store(self._clock() + self.ttl)

    def invalidate(self) -> None:
        """Forget everything now (a token, principal or binding changed here)."""
        with self._lock:
            self.generation += 1
            self._tokens.items.clear()
            self._subjects.items.clear()


__all__ = ["AccessCache", "Subject", "VerifiedToken"]
