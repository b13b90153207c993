"""The atomic commit of a dataset version, and its audit-log outbox.

A version, the dataset state it moves (trusted-reference pin, recent window,
inferred contract), its lineage edges and its audit outcome must become
visible together.  The metadata database gives one transaction for all but
the audit record, which goes to the append-only log with its own commit; so
the version is committed with status ``pending`` and the audit record beside
it (the outbox), then the record is appended and the version takes its final
status.  A crash in between leaves a ``pending`` version, never usable (only
``accepted`` versions are), which ``Outbox.reconcile`` rolls forward: at
``Bastion.open`` before anything else runs, and under the dataset's lock at
the next ingest or review of that dataset.  Appending is idempotent: the
record carries the version id and is not appended twice.

``VersionCommit.expected_generation`` fences the commit: it names the
dataset generation the audit was computed against, and the repository
refuses the commit if the generation moved (someone changed the pin, policy
or contract meanwhile), so a batch is never committed onto a state it was
not audited against.

Example::

    committed = repo.commit_version(VersionCommit(version, record, generation, ...))
    final = outbox.finalize(committed)
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from bastion.core.audit.entries import AuditQuery, AuditRecord, Outcome
from bastion.core.audit.log import AuditLog
from bastion.core.canonical import JSON
from bastion.core.crashpoints import crash_point
from bastion.core.errors import Conflict, StorageError
from bastion.core.lineage.graph import Edge
from bastion.data_security.values import Dataset, DatasetVersion, VersionStatus


class StaleAudit(Conflict):
    """The dataset moved (pin, policy, contract) after the batch was audited."""

    code = "stale_audit"


def record_to_json(r: AuditRecord) -> str:
    return json.dumps(
        {
            "actor": r.actor,
            "action": r.action,
            "resource": r.resource,
            "outcome": r.outcome.value,
            "request_id": r.request_id,
            "details": dict(r.details),
        },
        sort_keys=True,
    )


def record_from_json(text: str) -> AuditRecord:
    try:
        doc = json.loads(text)
        return AuditRecord(
            str(doc["actor"]),
            str(doc["action"]),
            str(doc["resource"]),
            Outcome(doc["outcome"]),
            str(doc["request_id"]),
            dict(doc["details"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise StorageError(f"a pending audit record is unreadable: {e}") from e


@dataclass(frozen=True)
class DatasetState:
    """The dataset fields an accepted batch moves (the audit state of the next batch)."""

    reference_digest: str | None
    reference_version: int | None
    recent_digest: str | None


@dataclass(frozen=True)
class VersionCommit:
    """Everything one ingest (or review) makes visible at once.

    ``version`` carries its final status and number; ``new_dataset`` is set
    when the first batch creates the dataset (then ``expected_generation`` is
    ignored); ``review`` says the version exists and only its status moves."""

    version: DatasetVersion
    audit: AuditRecord
    expected_generation: int
    new_dataset: Dataset | None = None
    state: DatasetState | None = None
    contract: str | None = None
    edges: tuple[Edge, ...] = ()
    review: bool = False


@dataclass(frozen=True)
class PendingVersion:
    """A committed version whose audit record is not yet in the log."""

    version: DatasetVersion  # status PENDING
    final_status: VersionStatus
    audit: AuditRecord


class _Repo(Protocol):
    def pending_versions(
        self, project: str | None = None, dataset: str | None = None
    ) -> list[PendingVersion]: ...
    def finalize_version(self, project: str, dataset: str, number: int) -> DatasetVersion: ...


class _Locks(Protocol):
    def try_hold(self, project: str, dataset: str) -> AbstractContextManager[bool]: ...


class Outbox:
    """Appends pending audit records and releases their versions (idempotently)."""

    def __init__(self, repo: _Repo, log: AuditLog) -> None:
        self._repo = repo
        self._log = log

    def finalize(self, pending: PendingVersion, *, recovering: bool = False) -> DatasetVersion:
        """Append the audit record, then give the version its final status.

        ``recovering``: a crashed process may have appended the record already
        (it died before the status moved); look before appending again."""
        if recovering:
            append_once(self._log, pending.audit)
        else:
            self._log.append(pending.audit)
        crash_point("ingest.after_audit_append")
        v = pending.version
        return self._repo.finalize_version(v.project, v.dataset, v.version)

    def reconcile(self, locks: _Locks, project: str | None = None) -> int:
        """Roll every pending version forward whose dataset nobody is ingesting into."""
        done = 0
        pending = self._repo.pending_versions(project)
        for key in sorted({(p.version.project, p.version.dataset) for p in pending}):
            with locks.try_hold(*key) as held:
                if held:  # else a live process holds the lock and will finish it
                    done += self.reconcile_locked(*key)
        return done

    def reconcile_locked(self, project: str, dataset: str) -> int:
        """Roll forward the pending versions of one dataset (the caller holds its lock)."""
        pending = self._repo.pending_versions(project, dataset)
        for p in pending:
            self.finalize(p, recovering=True)
        return len(pending)


def append_once(log: AuditLog, record: AuditRecord) -> bool:
    """Append ``record`` unless the log holds it already (same action, resource and
    ``version_id``): recovery of a process that died after appending.  Returns
    whether it appended."""
    want = record.details.get("version_id")
    after = 0
    while True:
        page = log.query(
            AuditQuery(action=record.action, resource=record.resource, after_seq=after, limit=1000)
        )
        for e in page:
            if e.resource == record.resource and _version_id(e.details) == want:
                return False
        if len(page) < 1000:
            break
        after = page[-1].seq
    log.append(record)
    return True


def _version_id(details: str) -> JSON:
    try:
        doc = json.loads(details)
    except ValueError:
        return None
    return doc.get("version_id") if isinstance(doc, dict) else None


__all__ = [
    "DatasetState",
    "Outbox",
    "PendingVersion",
    "StaleAudit",
    "VersionCommit",
    "append_once",
    "record_from_json",
    "record_to_json",
]
