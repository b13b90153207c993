"""SQL implementation of the audit log's repository port.

Entries are read with explicit column lists as plain tuples (``iter_rows``,
the fast path of ``AuditLog.verify``) in keyset-paginated batches, each batch
in its own short read transaction, and inserted with one driver-level
``executemany`` per commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.audit.entries import AuditEntry, AuditQuery, AuditRecord, Checkpoint, Head
from bastion.core.audit.ports import Sealer
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.tables import audit_checkpoints, audit_entries, audit_head

_t = audit_entries.c
#: the entry columns in ``AuditEntry`` field order
_COLUMNS = (
    _t.seq, _t.ts, _t.actor, _t.action, _t.resource, _t.outcome, _t.request_id,
    _t.details, _t.prev_hash, _t.entry_hash,
)



def _insert_sql(mark: str) -> str:
    # Built only from the table's own column names and a driver placeholder.
    names = ", ".join(c.name for c in _COLUMNS)
    marks = ", ".join([mark] * len(_COLUMNS))
    return f"INSERT INTO {audit_entries.name} ({names}) VALUES ({marks})"  # noqa: S608

Row = tuple[int, str, str, str, str, str, str, str, str, str]


def _entry(row: Sequence[Any]) -> AuditEntry:
    """An entry from a row whose columns are in table (= ``AuditEntry`` field) order."""
    return AuditEntry(int(row[0]), *row[1:10])


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
            if entries:
                # One driver-level executemany: building a parameter dict per row
                # through the SQLAlchemy compiler costs more than the insert.
                conn.exec_driver_sql(
                    _insert_sql("?" if conn.dialect.paramstyle == "qmark" else "%s"),
                    [
                        (e.seq, e.ts, e.actor, e.action, e.resource, e.outcome,
                         e.request_id, e.details, e.prev_hash, e.entry_hash)
                        for e in entries
                    ],
                )
            conn.execute(
                audit_head.update()
                .where(audit_head.c.id == 1)
                .values(
                    size=new_head.size, last_hash=new_head.last_hash, frontier=new_head.frontier
                )
            )
            if checkpoints:
                conn.execute(audit_checkpoints.insert(), [c.to_dict() for c in checkpoints])
        return entries

    def head(self) -> Head:
        with reading(self._engine, "reading the audit head") as conn:
            row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
        return Head(int(row.size), row.last_hash, row.frontier)

    def iter_entries(self, batch: int = 20_000) -> Iterator[AuditEntry]:
        for row in self.iter_rows(batch):
            yield _entry(row)

    def iter_rows(self, batch: int = 20_000) -> Iterator[Row]:
        """Every stored entry as a tuple in ``AuditEntry`` field order, by ``seq``."""
        last: object = -(2**62)
        stmt = sa.select(*_COLUMNS).where(_t.seq > sa.bindparam("last")).order_by(_t.seq)
        stmt = stmt.limit(batch)
        while True:
            with reading(self._engine, "reading the audit log") as conn:
                rows = conn.execute(stmt, {"last": last}).tuples().all()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

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
