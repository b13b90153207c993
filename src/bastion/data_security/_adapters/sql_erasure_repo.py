"""SQL implementation of the erasure repository (tables of migration 0011)."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.errors import Conflict
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.lineage_repo import lineage_edges
from bastion.core.store._adapters.sql.tables import objects
from bastion.data_security._adapters.sql_repo import _bump, _edge_row, datasets, versions
from bastion.data_security.erasure.ports import ErasureCommit, StoredErasure
from bastion.data_security.ingest.commit import record_from_json, record_to_json
from bastion.data_security.values import VersionStatus

_md = sa.MetaData()
erasures = sa.Table(
    "erasures",
    _md,
    *(
        sa.Column(n, sa.String)
        for n in (
            "id",
            "project",
            "dataset",
            "subject",
            "column_name",
            "reason",
            "mode",
            "state",
            "report",
            "audit",
            "created_at",
            "created_by",
            "completed_at",
        )
    ),
)
erasure_blobs = sa.Table(
    "erasure_blobs",
    _md,
    *(sa.Column(n, sa.String) for n in ("erasure_id", "digest", "role", "state", "done_at")),
)

_LIVE = (
    VersionStatus.ACCEPTED,
    VersionStatus.QUARANTINED,
    VersionStatus.REJECTED,
    VersionStatus.PENDING,
)


def _stored(r: sa.Row[tuple[object, ...]]) -> StoredErasure:
    m = r._mapping
    return StoredErasure(
        m["id"],
        m["project"],
        m["dataset"],
        m["subject"],
        m["column_name"],
        m["state"],
        m["report"],
        record_from_json(m["audit"]),
    )


class SqlErasureRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def commit_erasure(self, c: ErasureCommit) -> None:
        e = c.erasure
        with transaction(self._e, "committing an erasure") as conn:
            if conn.dialect.name == "sqlite":
                # Overwritten rows (the superseded versions' reports) are zeroed on
                # their pages, not left in free space for a file-level grep.
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            if not _bump(conn, e.project, e.dataset, c.expected_generation):
                raise Conflict(f"dataset {e.dataset!r} changed during the erasure; retry it")
            for v in c.erased:
                done = conn.execute(
                    versions.update()
                    .where(
                        versions.c.project == v.project,
                        versions.c.dataset == v.dataset,
                        versions.c.version == v.version,
                        versions.c.status.in_([s.value for s in _LIVE[:3]]),
                    )
                    .values(
                        status=VersionStatus.ERASED.value,
                        report=v.report,
                        reviewed_by=v.reviewed_by,
                        reviewed_at=v.reviewed_at,
                        review_reason=v.review_reason,
                    )
                )
                if done.rowcount != 1:
                    raise Conflict(f"{v.ref} changed during the erasure; retry it")
            for v, record in c.written:
                conn.execute(
                    versions.insert().values(
                        **{
                            **v.__dict__,
                            "status": VersionStatus.PENDING.value,
                            "pending_status": v.status.value,
                            "pending_audit": record_to_json(record),
                        }
                    )
                )
            if c.state is not None:
                conn.execute(
                    datasets.update()
                    .where(datasets.c.project == e.project, datasets.c.name == e.dataset)
                    .values(
                        reference_digest=c.state.reference_digest,
                        reference_version=c.state.reference_version,
                        recent_digest=c.state.recent_digest,
                    )
                )
            for edge in c.edges:
                conn.execute(lineage_edges.insert().values(**_edge_row(edge)))
            conn.execute(
                erasures.insert().values(
                    id=e.id,
                    project=e.project,
                    dataset=e.dataset,
                    subject=e.subject,
                    column_name=e.column,
                    reason=c.reason,
                    mode=c.mode,
                    state=e.state,
                    report=e.report,
                    audit=record_to_json(e.audit),
                    created_at=c.created_at,
                    created_by=c.created_by,
                    completed_at=None,
                )
            )
            for digest, role, state in c.blobs:
                conn.execute(
                    erasure_blobs.insert().values(
                        erasure_id=e.id, digest=digest, role=role, state=state, done_at=None
                    )
                )

    def erasures(
        self, project: str, dataset: str, subject: str | None = None
    ) -> list[StoredErasure]:
        stmt = sa.select(erasures).where(
            erasures.c.project == project, erasures.c.dataset == dataset
        )
        if subject is not None:
            stmt = stmt.where(erasures.c.subject == subject)
        with reading(self._e, "listing erasures") as conn:
            rows = conn.execute(stmt.order_by(erasures.c.created_at, erasures.c.id)).all()
        return [_stored(r) for r in rows]

    def erasure(self, erasure_id: str) -> StoredErasure | None:
        with reading(self._e, "reading an erasure") as conn:
            r = conn.execute(sa.select(erasures).where(erasures.c.id == erasure_id)).first()
        return _stored(r) if r else None

    def unfinished(
        self, project: str | None = None, dataset: str | None = None
    ) -> list[StoredErasure]:
        stmt = sa.select(erasures).where(erasures.c.state != "done")
        if project is not None:
            stmt = stmt.where(erasures.c.project == project)
        if dataset is not None:
            stmt = stmt.where(erasures.c.dataset == dataset)
        with reading(self._e, "listing unfinished erasures") as conn:
            rows = conn.execute(stmt.order_by(erasures.c.created_at)).all()
        return [_stored(r) for r in rows]

    def blobs(self, erasure_id: str) -> list[tuple[str, str, str]]:
        with reading(self._e, "listing an erasure's blobs") as conn:
            rows = conn.execute(
                sa.select(erasure_blobs.c.digest, erasure_blobs.c.role, erasure_blobs.c.state)
                .where(erasure_blobs.c.erasure_id == erasure_id)
                .order_by(erasure_blobs.c.role)
            ).all()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def set_blob_state(self, erasure_id: str, digest: str, state: str, at: str) -> None:
        with transaction(self._e, "recording a shredded key") as conn:
            conn.execute(
                erasure_blobs.update()
                .where(erasure_blobs.c.erasure_id == erasure_id, erasure_blobs.c.digest == digest)
                .values(state=state, done_at=at)
            )

    def finish(self, erasure_id: str, report: str, at: str) -> None:
        with transaction(self._e, "finishing an erasure") as conn:
            conn.execute(
                erasures.update()
                .where(erasures.c.id == erasure_id)
                .values(state="done", report=report, completed_at=at)
            )

    def live_digests(self) -> set[str]:
        found: set[str] = set()
        live = [s.value for s in _LIVE]
        with reading(self._e, "collecting live blob references") as conn:
            for row in conn.execute(
                sa.select(
                    versions.c.data_digest, versions.c.raw_digest, versions.c.profile_digest
                ).where(versions.c.status.in_(live))
            ):
                found.update(str(d) for d in row if d)
            for row in conn.execute(
                sa.select(datasets.c.reference_digest, datasets.c.recent_digest)
            ):
                found.update(str(d) for d in row if d)
            for row in conn.execute(sa.select(objects.c.digest)):
                found.add(str(row[0]))
        return found

    def shredded_by(self, digest: str) -> str | None:
        with reading(self._e, "looking up a shredded key") as conn:
            r = conn.execute(
                sa.select(erasure_blobs.c.erasure_id).where(
                    erasure_blobs.c.digest == digest, erasure_blobs.c.state == "shredded"
                )
            ).first()
        return str(r[0]) if r else None

    def compact(self) -> None:
        if self._e.dialect.name != "sqlite":
            return
        # Outside any transaction (the engine's "begin" hook would open one):
        # copy the WAL into the database file and truncate it, so the old pages
        # are gone from the WAL. Best effort: a reader holding a snapshot may
        # keep the WAL for now; the next checkpoint clears it.
        raw = self._e.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        except sqlite3.Error:
            pass
        finally:
            raw.close()


__all__ = ["SqlErasureRepository"]
