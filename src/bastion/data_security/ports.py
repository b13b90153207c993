"""Ports of the data-security layer."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from bastion.data_security.ingest.commit import PendingVersion, VersionCommit
from bastion.data_security.values import Dataset, DatasetVersion, Source, VersionStatus


class DatasetRepository(Protocol):
    def add_source(self, s: Source) -> bool: ...
    def source(self, project: str, name: str) -> Source | None: ...
    def sources(self, project: str) -> list[Source]: ...
    def set_source_trusted(self, project: str, name: str, trusted: bool) -> None: ...
    def allow_source(self, project: str, dataset: str, source: str) -> None: ...
    def allowed_sources(self, project: str, dataset: str) -> list[str]: ...
    def add_dataset(self, d: Dataset) -> bool: ...
    def dataset(self, project: str, name: str) -> Dataset | None: ...
    def datasets(self, project: str) -> list[Dataset]: ...
    def update_dataset(self, project: str, name: str, **values: object) -> None:
        """Change dataset fields; bumps the dataset's generation (the audit fence)."""
    def version(self, project: str, dataset: str, number: int) -> DatasetVersion | None: ...
    def versions(self, project: str, dataset: str) -> list[DatasetVersion]: ...
    def set_status(
        self,
        project: str,
        dataset: str,
        number: int,
        status: VersionStatus,
        by: str,
        at: str,
        reason: str,
    ) -> None: ...
    def add_contract(self, project: str, dataset: str, body: str, at: str, by: str) -> int:
        """Store the next contract version; bumps the dataset's generation."""
    def contract(
        self, project: str, dataset: str, number: int | None = None
    ) -> tuple[int, str] | None: ...
    # -- the atomic ingest commit (see ingest/commit.py) --
    def commit_version(self, c: VersionCommit) -> PendingVersion:
        """In one transaction: fence on the generation, store the version as
        ``pending`` with its audit record, move the dataset state, store the
        inferred contract and the lineage edges.  Raises ``Conflict`` if the
        generation moved or the version number is taken."""
    def finalize_version(self, project: str, dataset: str, number: int) -> DatasetVersion: ...
    def pending_versions(
        self, project: str | None = None, dataset: str | None = None
    ) -> list[PendingVersion]: ...


class DatasetLocks(Protocol):
    """Per-dataset mutual exclusion across threads and processes.

    ``hold`` waits for the lock; ``try_hold`` yields whether it got it.  The
    lock is released when the holder exits the block or its process dies."""

    def hold(self, project: str, dataset: str) -> AbstractContextManager[None]: ...
    def try_hold(self, project: str, dataset: str) -> AbstractContextManager[bool]: ...


__all__ = ["DatasetLocks", "DatasetRepository"]
