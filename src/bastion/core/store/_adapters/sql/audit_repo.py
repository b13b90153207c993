"""SQL implementation of the audit log's repository port."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.audit.entries import AuditEntry, AuditQuery, AuditRecord, Checkpoint, Head
from bastion.core.audit.ports import Sealer
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.tables import audit_checkpoints, audit_entries, audit_head


def _entry(row: sa.Row[tuple[object, ...]]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        int(m["seq"]),
        m["ts"],
        m["actor"],
        m["action"],
        m["resource"],
        m["outcome"],
        m["request_id"],
        m["details"],
        m["prev_hash"],
        m["entry_hash"],
    )


def _checkpoint(row: sa.Row[tuple[object, ...]]) -> Checkpoint:
    m = row._mapping
    return Checkpoint(int(m["tree_size"]), m["root_hash"], m["ts"], m["key_id"], m["signature"])


class SqlAuditRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, records: Sequence[AuditRecord], sealer: Sealer) -> list[AuditEntry]:
        with transaction(self._engine, "appending to the audit log") as conn:
            row = conn.execute(
                sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
            ).one()
            head = Head(int(row.size), row.last_hash, row.frontier)
            entries, new_head, checkpoints = sealer(head, records)
            conn.execute(
                audit_entries.insert(),
                [
                    {
                        "seq": e.seq,
                        "ts": e.ts,
                        "actor": e.actor,
                        "action": e.action,
                        "resource": e.resource,
                        "outcome": e.outcome,
                        "request_id": e.request_id,
                        "details": e.details,
                        "prev_hash": e.prev_hash,
                        "entry_hash": e.entry_hash,
                    }
                    for e in entries
                ],
            )
            conn.execute(
                audit_head.update()
                .where(audit_head.c.id == 1)
                .values(size=new_head.size, last_hash=new_head.last_hash, frontier=new_head.frontier)
            )
            if checkpoints:
                conn.execute(audit_checkpoints.insert(), [c.to_dict() for c in checkpoints])
        return entries

    def head(self) -> Head:
        with reading(self._engine, "reading the audit head") as conn:
            row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
        return Head(int(row.size), row.last_hash, row.frontier)

    def iter_entries(self, batch: int = 20_000) -> Iterator[AuditEntry]:
        last = -(2**62)
        while True:
            with reading(self._engine, "reading the audit log") as conn:
                rows = conn.execute(
                    sa.select(audit_entries)
                    .where(audit_entries.c.seq > last)
                    .order_by(audit_entries.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            last = int(rows[-1].seq)

    def query(self, q: AuditQuery) -> list[AuditEntry]:
        t = audit_entries.c
        stmt = sa.select(audit_entries).where(t.seq > q.after_seq)
        if q.actor:
            stmt = stmt.where(t.actor == q.actor)
        if q.action:
            stmt = stmt.where(t.action == q.action)
        if q.resource:
            stmt = stmt.where(t.resource.startswith(q.resource, autoescape=True))
        if q.outcome:
            stmt = stmt.where(t.outcome == q.outcome)
        if q.since:
            stmt = stmt.where(t.ts >= q.since)
        if q.until:
            stmt = stmt.where(t.ts < q.until)
        with reading(self._engine, "querying the audit log") as conn:
            rows = conn.execute(stmt.order_by(t.seq).limit(q.limit)).all()
        return [_entry(r) for r in rows]

    def add_checkpoint(self, cp: Checkpoint) -> None:
        with transaction(self._engine, "storing an audit checkpoint") as conn:
            exists = conn.execute(
                sa.select(audit_checkpoints.c.tree_size).where(
                    audit_checkpoints.c.tree_size == cp.tree_size
                )
            ).first()
            if exists is None:
                conn.execute(audit_checkpoints.insert(), [cp.to_dict()])

    def checkpoints(self) -> list[Checkpoint]:
        with reading(self._engine, "reading audit checkpoints") as conn:
            rows = conn.execute(
                sa.select(audit_checkpoints).order_by(audit_checkpoints.c.tree_size)
            ).all()
        return [_checkpoint(r) for r in rows]


__all__ = ["SqlAuditRepository"]
