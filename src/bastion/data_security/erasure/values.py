"""Value types of erasure: the request, its refusals, and the report.

The report never holds the subject's identifier: it names the subject by its
keyed pseudonym (``hmac-sha256:…``, HMAC under a key only the keyring holds).

Example::

    req = ErasureRequest.parse("credit", "loans", "customer_id=C-1042", reason="Art. 17 request 77")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bastion.core.canonical import JSON
from bastion.core.errors import InputError, NotFound


class UnknownColumn(InputError):
    """The erasure names a column the dataset does not have."""

    code = "erasure_unknown_column"


class NoMatchingRows(InputError):
    """No live version of the dataset has a row with that value."""

    code = "erasure_no_match"


class VersionErased(NotFound):
    """The version was superseded by an erasure request (its keys shredded or retained)."""

    code = "dataset_version_erased"


#: the keyring purpose of the subject pseudonym's MAC key
SUBJECT_KEY = "erasure-subject"


@dataclass(frozen=True)
class ErasureRequest:
    """Erase every row of ``dataset`` whose ``column`` holds ``value`` (compared as text)."""

    project: str
    dataset: str
    column: str
    value: str
    reason: str

    @classmethod
    def parse(cls, project: str, dataset: str, where: str, *, reason: str) -> ErasureRequest:
        column, sep, value = where.partition("=")
        if not sep or not column.strip() or not value:
            raise InputError(
                "--where must be COLUMN=VALUE (e.g. customer_id=C-1042)",
                hint="name one column and the subject's identifier in it",
            )
        try:
            (where + reason).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("--where and --reason must be valid text (UTF-8)") from None
        return cls(project, dataset, column.strip(), value, reason)

    def __repr__(self) -> str:  # the identifier stays out of logs and tracebacks
        return f"ErasureRequest({self.project!r}, {self.dataset!r}, {self.column!r}, <redacted>)"


@dataclass(frozen=True)
class VersionOutcome:
    """What the erasure did to one version that held the subject's rows."""

    old: int
    old_status: str
    rows_before: int
    rows_removed: int
    new: int | None  # None: every row was the subject's, or a rejected batch
    note: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "old_version": self.old,
            "old_status": self.old_status,
            "rows_before": self.rows_before,
            "rows_removed": self.rows_removed,
            "new_version": self.new,
            "note": self.note,
        }


@dataclass(frozen=True)
class BlobOutcome:
    digest: str
    role: str  # e.g. "loans@3 data", "trusted reference"
    state: str  # pending | shredded | retained | shared

    def to_dict(self) -> dict[str, JSON]:
        return {"digest": self.digest, "role": self.role, "state": self.state}


@dataclass(frozen=True)
class ErasureReport:
    id: str
    project: str
    dataset: str
    subject: str  # "hmac-sha256:<hex>": the keyed pseudonym, never the identifier
    column: str
    reason: str
    mode: str  # shred | retain
    retain_reason: str
    created_at: str
    created_by: str
    state: str  # committed | done
    versions: tuple[VersionOutcome, ...]
    blobs: tuple[BlobOutcome, ...]
    derived: dict[str, str]
    affected_models: tuple[str, ...]
    already_done: bool = False
    completed_at: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def new_versions(self) -> tuple[int, ...]:
        return tuple(v.new for v in self.versions if v.new is not None)

    def blobs_in(self, state: str) -> tuple[BlobOutcome, ...]:
        return tuple(b for b in self.blobs if b.state == state)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "project": self.project,
            "dataset": self.dataset,
            "subject": self.subject,
            "column": self.column,
            "reason": self.reason,
            "policy": {"mode": self.mode, "reason": self.retain_reason},
            "created_at": self.created_at,
            "created_by": self.created_by,
            "state": self.state,
            "completed_at": self.completed_at,
            "already_done": self.already_done,
            "versions": [v.to_dict() for v in self.versions],
            "new_versions": list(self.new_versions),
            "blobs": [b.to_dict() for b in self.blobs],
            "shredded": len(self.blobs_in("shredded")),
            "retained": len(self.blobs_in("retained")) + len(self.blobs_in("shared")),
            "derived": dict(self.derived),
            "affected_models": list(self.affected_models),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ErasureReport:
        d = json.loads(text)
        return cls(
            id=d["id"],
            project=d["project"],
            dataset=d["dataset"],
            subject=d["subject"],
            column=d["column"],
            reason=d["reason"],
            mode=d["policy"]["mode"],
            retain_reason=d["policy"]["reason"],
            created_at=d["created_at"],
            created_by=d["created_by"],
            state=d["state"],
            versions=tuple(
                VersionOutcome(
                    v["old_version"],
                    v["old_status"],
                    v["rows_before"],
                    v["rows_removed"],
                    v["new_version"],
                    v["note"],
                )
                for v in d["versions"]
            ),
            blobs=tuple(BlobOutcome(b["digest"], b["role"], b["state"]) for b in d["blobs"]),
            derived=dict(d["derived"]),
            affected_models=tuple(d["affected_models"]),
            already_done=bool(d.get("already_done", False)),
            completed_at=d.get("completed_at"),
            notes=tuple(d.get("notes", ())),
        )

    def render_text(self) -> str:
        lines = [
            f"erasure {self.id} of {self.dataset} ({self.state}"
            + (", already done: nothing changed" if self.already_done else "")
            + ")",
            f"  subject   {self.subject} (column {self.column}; keyed pseudonym, not the id)",
            f"  reason    {self.reason}",
            f"  policy    {self.mode}" + (f" ({self.retain_reason})" if self.retain_reason else ""),
        ]
        for v in self.versions:
            new = f"-> @{v.new}" if v.new is not None else "-> (no replacement)"
            lines.append(
                f"  @{v.old} [{v.old_status}] {v.rows_removed} of {v.rows_before} rows removed "
                f"{new}: {v.note}"
            )
        for state, label in (
            ("shredded", "shredded"),
            ("retained", "retained (policy)"),
            ("shared", "retained (shared with a live version)"),
            ("pending", "to shred"),
        ):
            blobs = self.blobs_in(state)
            if blobs:
                lines.append(f"  {label}: " + ", ".join(b.role for b in blobs))
        for name, what in sorted(self.derived.items()):
            lines.append(f"  {name}: {what}")
        if self.affected_models:
            lines.append("  models trained on affected data (review for retraining):")
            lines.extend(f"    {m}" for m in self.affected_models)
        else:
            lines.append("  no model was trained on affected data")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


__all__ = [
    "SUBJECT_KEY",
    "BlobOutcome",
    "ErasureReport",
    "ErasureRequest",
    "NoMatchingRows",
    "UnknownColumn",
    "VersionErased",
    "VersionOutcome",
]
