"""The live window the drift monitor reads: a bounded sample of validated rows, encrypted.

The prediction log keeps only a keyed digest of each request's features, which no
statistic can use.  So the gateway also keeps, per deployment, a *bounded reservoir
sample* (Algorithm R, ``capacity`` rows) of the rows it validated and answered, with the
predicted label of each, in memory; every flush writes the sample as one window into the
encrypted blob store (AES-256-GCM envelope, like every blob) and its digest, row count and
time into ``serving_live_windows``.  No feature value is written in plaintext anywhere; a
window blob holds a random nonce so its content digest reveals nothing guessable; windows
older than the retention are deleted (blob and index row).

No orphan blob: the index row is written *first*, in state ``writing`` and naming the
blob's digest (the SHA-256 of its plaintext, computed before the write), then the blob,
then the row is marked ``ready`` by a conditional UPDATE.  A crash in between leaves a
``writing`` row that names what to reclaim; :func:`sweep` (at every monitor round)
marks windows left ``writing`` longer than a grace period ``sweeping``, deletes their
blob, then their row.  Should a flush outlive the grace period, the sweep's conditional
UPDATE wins, that flush fails to mark its row ready and deletes its own blob: no
interleaving leaves a blob without a row or a ready row without its blob.  Readers see
``ready`` windows only.

Example::

    sampler = LiveSampler(capacity=2000)
    sampler.observe(deployment, rows, labels)      # from the gateway, after a prediction
    sampler.flush(store)                           # about every few seconds, off the loop
    frame, labels = read_window(store, windows)    # the monitor
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bastion.core.crashpoints import crash_point
from bastion.core.errors import IntegrityError
from bastion.serving.values import Deployment

FORMAT = "bastion.live-window"
_log = logging.getLogger("bastion.monitor")


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
    def add(self, w: LiveWindow) -> None:
        """Index a window whose blob is about to be written (state ``writing``)."""

    def mark_ready(self, window_id: str) -> bool:
        """``writing`` -> ``ready``; False when the row is gone (swept)."""

    def unfinished(self, before: str, limit: int) -> list[LiveWindow]:
        """Windows still ``writing`` or ``sweeping`` created before ``before``."""

    def abandon(self, window_id: str) -> bool:
        """``writing`` -> ``sweeping`` (never a ready row; a flush can no longer mark it
        ready); True when the row is now ``sweeping``."""

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
        for p in pending.values():
            d = p.deployment
            # each window's own time: the sweep's grace period counts from its intent
            now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
            blob = json.dumps({
                "format": FORMAT, "version": 1, "nonce": os.urandom(16).hex(),
                "columns": list(d.schema.columns), "rows": p.rows, "labels": p.labels,
            }).encode()
            w = LiveWindow(uuid.uuid4().hex, d.project, d.endpoint, d.id, now, len(p.rows),
                           p.seen, hashlib.sha256(blob).hexdigest())
            store.index.add(w)  # the intent first: a crash from here on leaves a named blob
            crash_point("live.flush.after_intent")
            digest = store.put(blob)
            crash_point("live.flush.after_blob")
            if digest != w.blob_digest:  # the store must address by plaintext SHA-256
                store.delete(digest)
                store.index.abandon(w.id)
                store.index.remove([w.id])
                raise IntegrityError(f"live window blob stored as {digest[:16]}…, expected "
                                     f"{w.blob_digest[:16]}…",
                                     hint="the blob store does not address by SHA-256")
            if not store.index.mark_ready(w.id):  # swept meanwhile: take our blob back
                _log.warning("live window %s outlived the sweep's grace period; dropped", w.id)
                store.delete(digest)
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


def sweep(store: LiveStore, before: str, limit: int = 100) -> int:
    """Reclaim windows left ``writing`` (a flush that crashed) created before ``before``:
    the row is marked ``sweeping`` first (conditional: never a ready one; a flush still
    running then fails to mark it ready), then the blob is deleted, then the row; a
    crash of the sweep itself is finished by the next one.  ``before`` must lie further
    back than any flush can take (the grace period), or that flush's window is lost."""
    swept = 0
    for w in store.index.unfinished(before, limit):
        if store.index.abandon(w.id):
            store.delete(w.blob_digest)  # absent when the crash came before the blob
            crash_point("live.sweep.after_blob")
            store.index.remove([w.id])
            swept += 1
    if swept:
        _log.warning("reclaimed %d live window(s) left unfinished by a crash", swept)
    return swept


def expire(store: LiveStore, before: str) -> int:
    """Delete the windows created before ``before`` (blob and index row)."""
    old = store.index.older_than(before)
    for w in old:
        store.delete(w.blob_digest)
    store.index.remove([w.id for w in old])
    return len(old)


__all__ = ["LiveSampler", "LiveStore", "LiveWindow", "LiveWindowIndex", "expire",
           "read_windows", "sweep"]
