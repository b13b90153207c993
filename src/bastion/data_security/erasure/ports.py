"""Ports of erasure: where requests are recorded, and the keyed pseudonym of a subject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bastion.core.audit.entries import AuditRecord
from bastion.core.lineage.graph import Edge
from bastion.data_security.ingest.commit import DatasetState
from bastion.data_security.values import DatasetVersion


class SubjectKeys(Protocol):
    """Computes keyed digests (the keyring's HMAC keys never leave it)."""

    def keyed_digest(self, purpose: str, message: bytes) -> str: ...


@dataclass(frozen=True)
class StoredErasure:
    id: str
    project: str
    dataset: str
    subject: str
    column: str
    state: str  # "committed" | "done"
    report: str  # JSON of ErasureReport
    audit: AuditRecord


@dataclass(frozen=True)
class ErasureCommit:
    """Everything an erasure makes visible at once (one transaction).

    ``erased`` are the superseded versions with status ``erased`` and their
    reason; ``written`` the new versions with their final status, stored
    ``pending`` with their audit records (the ingest outbox finalizes them);
    ``blobs`` the (digest, role, state) of every blob of a superseded version
    or of the superseded derived state."""

    erasure: StoredErasure
    created_at: str
    created_by: str
    reason: str
    mode: str
    expected_generation: int
    erased: tuple[DatasetVersion, ...]
    written: tuple[tuple[DatasetVersion, AuditRecord], ...]
    state: DatasetState | None
    edges: tuple[Edge, ...]
    blobs: tuple[tuple[str, str, str], ...]


class ErasureRepository(Protocol):
    def commit_erasure(self, c: ErasureCommit) -> None:
        """Fence on the generation, supersede, write, move the dataset state, add the
        lineage edges and the erasure record: all or nothing.  Raises ``Conflict``."""

    def erasures(
        self, project: str, dataset: str, subject: str | None = None
    ) -> list[StoredErasure]: ...
    def erasure(self, erasure_id: str) -> StoredErasure | None: ...
    def unfinished(
        self, project: str | None = None, dataset: str | None = None
    ) -> list[StoredErasure]: ...
    def blobs(self, erasure_id: str) -> list[tuple[str, str, str]]:
        """(digest, role, state) of every blob the erasure lists."""

    def set_blob_state(self, erasure_id: str, digest: str, state: str, at: str) -> None: ...
    def finish(self, erasure_id: str, report: str, at: str) -> None: ...
    def live_digests(self) -> set[str]:
        """Digests a live (not erased) version, a dataset's state or an object names."""

    def shredded_by(self, digest: str) -> str | None:
        """The erasure request that shredded ``digest``, if one did."""

    def compact(self) -> None:
        """Make overwritten rows unrecoverable from the database files (SQLite WAL)."""


__all__ = ["ErasureCommit", "ErasureRepository", "StoredErasure", "SubjectKeys"]
