"""SQL implementation of the model repository."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.audit.entries import AuditRecord
from bastion.core.errors import Conflict
from bastion.core.lineage.graph import Edge
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.lineage_repo import lineage_edges
from bastion.data_security.ingest.commit import record_from_json, record_to_json
from bastion.model_security.values import (
    EvaluationRecord,
    Framework,
    ManifestFile,
    ModelVersion,
    Stage,
)

_md = sa.MetaData()
_S = sa.String
versions = sa.Table(
    "model_versions",
    _md,
    *(
        sa.Column(n, _S)
        for n in (
            "id",
            "project",
            "name",
            "framework",
            "stage",
            "manifest",
            "root_digest",
            "bundle_digest",
            "signer_key_id",
            "signer_identity",
            "signed_at",
            "scan_report",
            "trained_on",
            "training_run",
            "created_at",
            "created_by",
            "pending_audit",
        )
    ),
    sa.Column("version", sa.Integer),
)
evaluations = sa.Table(
    "evaluations",
    _md,
    *(
        sa.Column(n, _S)
        for n in (
            "id",
            "project",
            "model",
            "dataset_ref",
            "dataset_digest",
            "result",
            "statement_digest",
            "created_at",
            "created_by",
        )
    ),
    sa.Column("version", sa.Integer),
)
refused = sa.Table(
    "refused_artifacts",
    _md,
    *(
        sa.Column(n, _S)
        for n in ("id", "project", "name", "manifest", "scan_report", "created_at", "created_by")
    ),
)
scan_policy = sa.Table(
    "scan_policy_entries",
    _md,
    *(sa.Column(n, _S) for n in ("project", "kind", "value", "created_at", "created_by")),
)
drift_refs = sa.Table(
    "drift_references",
    _md,
    *(sa.Column(n, _S) for n in ("project", "dataset_ref", "digest", "created_at")),
)


def _version(r: sa.Row[tuple[object, ...]]) -> ModelVersion:
    m = r._mapping
    return ModelVersion(
        m["id"],
        m["project"],
        m["name"],
        int(m["version"]),
        Framework(m["framework"]),
        Stage(m["stage"]),
        tuple(
            ManifestFile(f["path"], f["digest"], int(f["size"])) for f in json.loads(m["manifest"])
        ),
        m["root_digest"],
        m["bundle_digest"],
        m["signer_key_id"],
        m["signer_identity"],
        m["signed_at"],
        m["scan_report"],
        tuple(json.loads(m["trained_on"])),
        m["training_run"],
        m["created_at"],
        m["created_by"],
    )


def _evaluation(r: sa.Row[tuple[object, ...]]) -> EvaluationRecord:
    m = r._mapping
    return EvaluationRecord(
        m["id"],
        m["project"],
        m["model"],
        int(m["version"]),
        m["dataset_ref"],
        m["dataset_digest"],
        m["result"],
        m["statement_digest"],
        m["created_at"],
        m["created_by"],
    )


class SqlModelRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def add_version(
        self,
        v: ModelVersion,
        *,
        edges: Callable[[ModelVersion], Sequence[Edge]] = lambda _v: (),
        audit: Callable[[ModelVersion], AuditRecord] | None = None,
    ) -> ModelVersion:
        """Insert with the next number; its lineage ``edges`` and its ``audit`` record
        (kept pending until ``clear_pending``) go in the same transaction."""
        with transaction(self._e, "registering a model version") as c:
            other = c.execute(
                sa.select(versions.c.name).where(
                    versions.c.project == v.project,
                    sa.func.lower(versions.c.name) == v.name.lower(),
                    versions.c.name != v.name,
                )
            ).first()
            if other is not None:
                # Names are unique case-insensitively: no look-alike model lines.
                raise Conflict(
                    f"a model named {other[0]!r} already exists; names are case-insensitive, "
                    f"so {v.name!r} would be a look-alike",
                    hint=f"register it as {other[0]!r}, or choose a different name",
                )
            current = c.execute(
                sa.select(sa.func.max(versions.c.version)).where(
                    versions.c.project == v.project, versions.c.name == v.name
                )
            ).scalar()
            number = int(current or 0) + 1
            numbered = dataclasses.replace(v, version=number)
            c.execute(
                versions.insert().values(
                    id=v.id,
                    project=v.project,
                    name=v.name,
                    version=number,
                    framework=v.framework.value,
                    stage=v.stage.value,
                    manifest=json.dumps([f.__dict__ for f in v.manifest]),
                    root_digest=v.root_digest,
                    bundle_digest=v.bundle_digest,
                    signer_key_id=v.signer_key_id,
                    signer_identity=v.signer_identity,
                    signed_at=v.signed_at,
                    scan_report=v.scan_report,
                    trained_on=json.dumps(list(v.trained_on)),
                    training_run=v.training_run,
                    created_at=v.created_at,
                    created_by=v.created_by,
                    pending_audit=record_to_json(audit(numbered)) if audit else None,
                )
            )
            for e in edges(numbered):
                c.execute(
                    lineage_edges.insert().values(
                        src_kind=e.src.kind, src_id=e.src.id, src_digest=e.src.digest,
                        dst_kind=e.dst.kind, dst_id=e.dst.id, dst_digest=e.dst.digest,
                        relation=e.relation, created_at=e.created_at,
                    )
                )
        found = self.version(v.project, v.name, number)
        assert found is not None
        return found

    def clear_pending(self, version_id: str) -> None:
        """The version's audit record is in the log: drop it from the outbox."""
        with transaction(self._e, "finishing a model registration") as c:
            c.execute(
                versions.update().where(versions.c.id == version_id).values(pending_audit=None)
            )

    def pending_registrations(self) -> list[tuple[str, AuditRecord]]:
        """(version id, audit record) of registrations whose record is not yet logged."""
        with reading(self._e, "listing pending model registrations") as c:
            rows = c.execute(
                sa.select(versions.c.id, versions.c.pending_audit)
                .where(versions.c.pending_audit.is_not(None))
                .order_by(versions.c.created_at)
            ).all()
        return [(str(r.id), record_from_json(str(r.pending_audit))) for r in rows]

    def version(self, project: str, name: str, number: int) -> ModelVersion | None:
        with reading(self._e, "reading a model version") as c:
            r = c.execute(
                sa.select(versions).where(
                    versions.c.project == project,
                    versions.c.name == name,
                    versions.c.version == number,
                )
            ).first()
        return _version(r) if r else None

    def versions(self, project: str, name: str | None = None) -> list[ModelVersion]:
        stmt = sa.select(versions).where(versions.c.project == project)
        if name:
            stmt = stmt.where(versions.c.name == name)
        with reading(self._e, "listing model versions") as c:
            rows = c.execute(stmt.order_by(versions.c.name, versions.c.version)).all()
        return [_version(r) for r in rows]

    def set_stage(self, project: str, name: str, number: int, stage: str) -> None:
        with transaction(self._e, "changing a model stage") as c:
            c.execute(
                versions.update()
                .where(
                    versions.c.project == project,
                    versions.c.name == name,
                    versions.c.version == number,
                )
                .values(stage=stage)
            )

    def add_evaluation(self, e: EvaluationRecord) -> None:
        with transaction(self._e, "storing an evaluation") as c:
            c.execute(evaluations.insert().values(**e.__dict__))

    def evaluations(self, project: str, name: str, number: int) -> list[EvaluationRecord]:
        with reading(self._e, "listing evaluations") as c:
            rows = c.execute(
                sa.select(evaluations)
                .where(
                    evaluations.c.project == project,
                    evaluations.c.model == name,
                    evaluations.c.version == number,
                )
                .order_by(evaluations.c.created_at)
            ).all()
        return [_evaluation(r) for r in rows]

    def add_refused(
        self, id: str, project: str, name: str, manifest: str, report: str, at: str, by: str
    ) -> None:
        with transaction(self._e, "recording a refused artifact") as c:
            c.execute(
                refused.insert().values(
                    id=id,
                    project=project,
                    name=name,
                    manifest=manifest,
                    scan_report=report,
                    created_at=at,
                    created_by=by,
                )
            )

    def refused(self, project: str) -> list[dict[str, str]]:
        with reading(self._e, "listing refused artifacts") as c:
            rows = c.execute(sa.select(refused).where(refused.c.project == project)).all()
        return [dict(r._mapping) for r in rows]

    def drift_reference(self, project: str, dataset_ref: str) -> str | None:
        with reading(self._e, "reading a drift reference") as c:
            r = c.execute(
                sa.select(drift_refs.c.digest).where(
                    drift_refs.c.project == project, drift_refs.c.dataset_ref == dataset_ref
                )
            ).first()
        return str(r[0]) if r else None

    def add_drift_reference(self, project: str, dataset_ref: str, digest: str, at: str) -> None:
        with transaction(self._e, "storing a drift reference") as c:
            found = c.execute(
                sa.select(drift_refs.c.digest).where(
                    drift_refs.c.project == project, drift_refs.c.dataset_ref == dataset_ref
                )
            ).first()
            if not found:
                c.execute(
                    drift_refs.insert().values(
                        project=project, dataset_ref=dataset_ref, digest=digest, created_at=at
                    )
                )

    # -- scan policy (migration 0005_scan_policy) --------------------------------------
    def scan_policy_entries(self, project: str) -> list[tuple[str, str]]:
        with reading(self._e, "reading the scan policy") as c:
            rows = c.execute(
                sa.select(scan_policy.c.kind, scan_policy.c.value)
                .where(scan_policy.c.project == project)
                .order_by(scan_policy.c.kind, scan_policy.c.value)
            ).all()
        return [(str(r[0]), str(r[1])) for r in rows]

    def add_scan_policy_entry(self, project: str, kind: str, value: str, at: str,
                              by: str) -> bool:
        """Insert one entry; False when it was already there."""
        with transaction(self._e, "changing the scan policy") as c:
            found = c.execute(
                sa.select(scan_policy.c.value).where(
                    scan_policy.c.project == project, scan_policy.c.kind == kind,
                    scan_policy.c.value == value,
                )
            ).first()
            if found:
                return False
            c.execute(scan_policy.insert().values(project=project, kind=kind, value=value,
                                                  created_at=at, created_by=by))
        return True

    def remove_scan_policy_entry(self, project: str, kind: str, value: str) -> bool:
        """Delete one entry; False when there was none."""
        with transaction(self._e, "changing the scan policy") as c:
            result = c.execute(
                scan_policy.delete().where(
                    scan_policy.c.project == project, scan_policy.c.kind == kind,
                    scan_policy.c.value == value,
                )
            )
        return bool(result.rowcount)


__all__ = ["SqlModelRepository"]
