"""The live window the drift monitor reads: a bounded sample of validated rows, encrypted.

The prediction log keeps only a keyed digest of each request's features, which no
statistic can use.  So the gateway also keeps, per deployment, a *bounded reservoir
sample* (Algorithm R, ``capacity`` rows) of the rows it validated and answered, with the
predicted label of each, in memory; every flush writes the sample as one window into the
encrypted blob store (AES-256-GCM envelope, like every blob) and its digest, row count and
time into ``serving_live_windows``.  No feature value is written in plaintext anywhere; a
window blob holds a random nonce so its content digest reveals nothing guessable; windows
older than the retention are deleted (blob and index row).

Example::

    sampler = LiveSampler(capacity=2000)
    sampler.observe(deployment, rows, labels)      # from the gateway, after a prediction
    sampler.flush(store)                           # about every few seconds, off the loop
    frame, labels = read_window(store, windows)    # the monitor
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bastion.core.errors import IntegrityError
from bastion.serving.values import Deployment

FORMAT = "bastion.live-window"


@dataclass(frozen=True)
class LiveWindow:
    id: str
    project: str
    endpoint: str
    deployment_id: str
    created_at: str
    rows: int  # rows in the sample
    seen: int  # rows the gateway answered in the window (the sample is at most capacity)
    blob_digest: str


class LiveWindowIndex(Protocol):
    def add(self, w: LiveWindow) -> None: ...

    def latest(self, deployment_id: str, max_rows: int) -> list[LiveWindow]: ...

    def earliest(self, deployment_id: str, max_rows: int) -> list[LiveWindow]: ...

    def older_than(self, created_at: str) -> list[LiveWindow]: ...

    def remove(self, ids: list[str]) -> None: ...


@dataclass(frozen=True)
class LiveStore:
    """The index and the encrypted blob store (``put`` returns the digest)."""

    index: LiveWindowIndex
    put: Callable[[bytes], str]
    get: Callable[[str], bytes]
    delete: Callable[[str], None]


@dataclass
class _Pending:
    deployment: Deployment
    rows: list[list[Any]] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    seen: int = 0


class LiveSampler:
    """See the module docstring.  ``observe`` runs on the event loop: it only appends."""

    def __init__(self, capacity: int = 2000, seed: int | None = None) -> None:
        self.capacity = capacity
        self._rng = random.Random(seed)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def observe(self, d: Deployment, rows: Sequence[list[Any]], labels: Sequence[Any]) -> None:
        with self._lock:
            p = self._pending.get(d.id)
            if p is None:
                p = self._pending[d.id] = _Pending(d)
            for row, label in zip(rows, labels, strict=False):
                p.seen += 1
                if len(p.rows) < self.capacity:
                    p.rows.append(list(row))
                    p.labels.append(label)
                    continue
                j = self._rng.randrange(p.seen)  # keep each row with probability cap/seen
                if j < self.capacity:
                    p.rows[j], p.labels[j] = list(row), label

    def flush(self, store: LiveStore) -> int:
        """Write one window per deployment with pending rows; the number written."""
        with self._lock:
            pending, self._pending = self._pending, {}
        now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        for p in pending.values():
            d = p.deployment
            blob = json.dumps({
                "format": FORMAT, "version": 1, "nonce": os.urandom(16).hex(),
                "columns": list(d.schema.columns), "rows": p.rows, "labels": p.labels,
            }).encode()
            store.index.add(LiveWindow(uuid.uuid4().hex, d.project, d.endpoint, d.id, now,
                                       len(p.rows), p.seen, store.put(blob)))
        return len(pending)


def read_windows(store: LiveStore, windows: Sequence[LiveWindow],
                 columns: Sequence[str]) -> tuple[list[list[Any]], list[Any]]:
    """The rows and predicted labels of ``windows`` (decrypted in memory only)."""
    rows: list[list[Any]] = []
    labels: list[Any] = []
    for w in windows:
        doc = json.loads(store.get(w.blob_digest))
        if doc.get("format") != FORMAT or doc.get("columns") != list(columns):
            raise IntegrityError(f"live window {w.id} is not a window of these columns",
                                 hint="its blob does not match its index row (a deployment's "
                                      "windows share one schema): check the store with "
                                      "bastion store fsck; the endpoint is not checked meanwhile")
        rows.extend(doc["rows"])
        labels.extend(doc["labels"])
    return rows, labels


def expire(store: LiveStore, before: str) -> int:
    """Delete the windows created before ``before`` (blob and index row)."""
    old = store.index.older_than(before)
    for w in old:
        store.delete(w.blob_digest)
    store.index.remove([w.id for w in old])
    return len(old)


__all__ = ["LiveSampler", "LiveStore", "LiveWindow", "LiveWindowIndex", "expire",
           "read_windows"]
