"""Audit entry values and their canonical encoding.

An entry's leaf data is a compact JSON array of its fields (the details map
already canonical, so the exact bytes are reproducible from the stored row)::

    [1, seq, ts, actor, action, resource, outcome, request_id, details, prev_hash]

``entry_hash = SHA-256(leaf data)`` chains each entry to the previous one and
``leaf_hash(leaf data)`` (RFC 6962) places it in the Merkle tree.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from bastion.core.canonical import JSON

GENESIS = "0" * 64


class Outcome(enum.StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditRecord:
    """What a caller asks to log; sequence and hashes are assigned on append."""

    actor: str
    action: str
    resource: str
    outcome: Outcome
    request_id: str
    details: Mapping[str, JSON] = field(default_factory=dict)
    ts: str = ""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: str
    actor: str
    action: str
    resource: str
    outcome: str
    request_id: str
    details: str  # canonical JSON text
    prev_hash: str
    entry_hash: str

    def leaf_data(self) -> bytes:
        return encode_leaf(
            self.seq,
            self.ts,
            self.actor,
            self.action,
            self.resource,
            self.outcome,
            self.request_id,
            self.details,
            self.prev_hash,
        )

    def to_dict(self) -> dict[str, JSON]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "details": json.loads(self.details),
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }


def details_text(details: Mapping[str, JSON]) -> str:
    return json.dumps(
        details, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def encode_leaf(
    seq: int,
    ts: str,
    actor: str,
    action: str,
    resource: str,
    outcome: str,
    request_id: str,
    details: str,
    prev_hash: str,
) -> bytes:
    return json.dumps(
        [1, seq, ts, actor, action, resource, outcome, request_id, details, prev_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")


def seal(record: AuditRecord, seq: int, prev_hash: str) -> AuditEntry:
    ts = record.ts or dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    details = details_text(record.details)
    data = encode_leaf(
        seq,
        ts,
        record.actor,
        record.action,
        record.resource,
        record.outcome.value,
        record.request_id,
        details,
        prev_hash,
    )
    return AuditEntry(
        seq,
        ts,
        record.actor,
        record.action,
        record.resource,
        record.outcome.value,
        record.request_id,
        details,
        prev_hash,
        hashlib.sha256(data).hexdigest(),
    )


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the tree size and root at one point in time."""

    tree_size: int
    root_hash: str
    ts: str
    key_id: str
    signature: str  # hex Ed25519 signature over ``signed_bytes()``

    def signed_bytes(self) -> bytes:
        return checkpoint_bytes(self.tree_size, self.root_hash, self.ts)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "ts": self.ts,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def checkpoint_bytes(tree_size: int, root_hash: str, ts: str) -> bytes:
    return f"bastion-audit-checkpoint/v1\n{tree_size}\n{root_hash}\n{ts}\n".encode("ascii")


@dataclass(frozen=True)
class Head:
    size: int
    last_hash: str
    frontier: str


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    resource: str | None = None  # prefix match
    outcome: str | None = None
    since: str | None = None  # ISO time, inclusive
    until: str | None = None  # ISO time, exclusive
    limit: int = 1000
    after_seq: int = 0


__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditQuery",
    "AuditRecord",
    "Checkpoint",
    "Head",
    "Outcome",
    "checkpoint_bytes",
    "details_text",
    "encode_leaf",
    "seal",
]
