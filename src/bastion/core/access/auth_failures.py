"""Failed authentications, audited in aggregate so a flood cannot bloat the log.

Every refused token (missing, malformed, unknown, revoked, expired, disabled
principal) is counted under a key ``(reason, token-id prefix, source)``.  The
first failure of a key in a window is appended to the audit log at once (one
refused attempt is visible immediately); the repeats inside the window are only
counted and written as one summary entry with their count when the window
closes (the next failure after it, or ``flush`` at shutdown).  Unknown and
malformed tokens are keyed by source alone, since their ids are whatever the
attacker sends, and at most ``max_keys`` keys are open at once (beyond that
failures pool under one ``overflow`` key), so an attacker spraying random
tokens adds at most two entries per window per key, never one per request.

Entries: action ``auth.failed``, resource ``system/auth``, outcome ``denied``,
details ``{"reason", "token_id_prefix", "source", "count", "first", "phase"}``
where ``phase`` is ``first`` or ``repeats``.

Example::

    failures = FailedAuthentications(audit, window_seconds=60)
    failures.record("revoked", "3f2a9c01d4e5b6a7", "10.0.0.7")
    failures.flush()   # at shutdown: summaries of the open windows
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bastion.core.audit.entries import AuditRecord, Outcome
from bastion.core.audit.log import AuditLog

#: reasons whose token id names a real token (others are attacker-chosen)
_REAL_IDS = frozenset({"revoked", "expired", "principal_disabled"})
_PREFIX = 8

Key = tuple[str, str, str]


@dataclass
class _Window:
    opened: float  # monotonic time
    first: str  # ISO time of the first failure
    repeats: int = 0


class FailedAuthentications:
    def __init__(
        self,
        audit: AuditLog,
        *,
        window_seconds: float = 60.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._audit = audit
        self._window = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[Key, _Window] = {}  # insertion order == opening order

    def record(self, reason: str, token_id: str = "", source: str = "") -> None:
        """Count one refused authentication; audit it if it opens a window."""
        prefix = token_id[:_PREFIX] if reason in _REAL_IDS else ""
        key: Key = (reason, prefix, source[:64])
        now = self._clock()
        with self._lock:
            closed = self._expire(now)
            window = self._open.get(key)
            if window is None and len(self._open) >= self._max_keys:
                key = ("overflow", "", "*")
                window = self._open.get(key)
            first = window is None
            if window is None:
                self._open[key] = _Window(now, _iso_now())
            else:
                window.repeats += 1
        records = [self._summary(k, w) for k, w in closed]
        if first:
            records.append(_entry(key, 1, _iso_now(), "first"))
        if records:
            self._audit.append_many(records)

    def flush(self) -> None:
        """Write the summaries of every open window (e.g. at shutdown)."""
        with self._lock:
            closed = [(k, w) for k, w in self._open.items() if w.repeats]
            self._open.clear()
        if closed:
            self._audit.append_many([self._summary(k, w) for k, w in closed])

    def _expire(self, now: float) -> list[tuple[Key, _Window]]:
        closed: list[tuple[Key, _Window]] = []
        while self._open:
            key = next(iter(self._open))
            window = self._open[key]
            if now - window.opened < self._window:
                break
            del self._open[key]
            if window.repeats:
                closed.append((key, window))
        return closed

    def _summary(self, key: Key, window: _Window) -> AuditRecord:
        return _entry(key, window.repeats, window.first, "repeats")


def _entry(key: Key, count: int, first: str, phase: str) -> AuditRecord:
    reason, prefix, source = key
    return AuditRecord(
        actor=f"token:{prefix}" if prefix else "unauthenticated",
        action="auth.failed",
        resource="system/auth",
        outcome=Outcome.DENIED,
        request_id=uuid.uuid4().hex,
        details={
            "reason": reason,
            "token_id_prefix": prefix,
            "source": source,
            "count": count,
            "first": first,
            "phase": phase,
        },
    )


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


__all__ = ["FailedAuthentications"]
