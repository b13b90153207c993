"""Value types of the data-security layer: datasets, versions, sources."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from bastion.core.canonical import JSON
from bastion.core.names import check_name, parse_ref


def check_dataset_name(kind: str, name: str) -> str:
    """The one name rule (:mod:`bastion.core.names`) for datasets, sources and models."""
    return check_name(kind, name, max_length=200)


class VersionStatus(enum.StrEnum):
    #: committed, audit record not yet in the log: never usable (see ingest/commit.py)
    PENDING = "pending"
    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
    #: superseded by an erasure request (GDPR Art. 17): never read, never trained on;
    #: ``review_reason`` says which request and whether its data keys were shredded
    ERASED = "erased"


@dataclass(frozen=True)
class DatasetRef:
    """``NAME`` (latest accepted) or ``NAME@VERSION``."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        return cls(*parse_ref("dataset", text))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Source:
    project: str
    name: str
    description: str
    trusted: bool
    require_checksum: bool
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "project": self.project,
            "name": self.name,
            "description": self.description,
            "trusted": self.trusted,
            "require_checksum": self.require_checksum,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Dataset:
    project: str
    name: str
    label: str | None
    sensitive: tuple[str, ...]
    policy: str  # JSON text of the audit policy
    reference_digest: str | None
    reference_version: int | None
    recent_digest: str | None
    created_at: str
    created_by: str
    #: grows with every change of the state an ingestion audit reads (the fence)
    generation: int = 0

    def to_dict(self) -> dict[str, JSON]:
        return {
            "project": self.project,
            "name": self.name,
            "label": self.label,
            "sensitive": list(self.sensitive),
            "reference_version": self.reference_version,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class DatasetVersion:
    id: str
    project: str
    dataset: str
    version: int
    status: VersionStatus
    data_digest: str
    raw_digest: str
    profile_digest: str
    format: str
    rows: int
    schema: str
    report: str
    source: str
    declared_sha256: str | None
    parent_version: int | None
    contract_version: int | None
    created_at: str
    created_by: str
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    review_reason: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"

    @property
    def lineage_id(self) -> str:
        return f"{self.project}/{self.dataset}@{self.version}"

    def to_dict(self, *, with_report: bool = False) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "id": self.id,
            "project": self.project,
            "dataset": self.dataset,
            "version": self.version,
            "status": self.status.value,
            "data_digest": self.data_digest,
            "raw_sha256": self.raw_digest,
            "format": self.format,
            "rows": self.rows,
            "schema": json.loads(self.schema),
            "source": self.source,
            "declared_sha256": self.declared_sha256,
            "parent_version": self.parent_version,
            "contract_version": self.contract_version,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "reviewed_by": self.reviewed_by,
            "reviewed_at": self.reviewed_at,
            "review_reason": self.review_reason,
        }
        if with_report:
            out["report"] = json.loads(self.report)
        return out


__all__ = [
    "Dataset",
    "DatasetRef",
    "DatasetVersion",
    "Source",
    "VersionStatus",
    "check_dataset_name",
]
