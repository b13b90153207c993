"""SQL implementation of the lineage repository."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.lineage.graph import Edge, Node
from bastion.core.store._adapters.sql.engine import reading, transaction

lineage_edges = sa.Table(
    "lineage_edges",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("src_kind", sa.String(40)),
    sa.Column("src_id", sa.String(300)),
    sa.Column("src_digest", sa.String(64)),
    sa.Column("dst_kind", sa.String(40)),
    sa.Column("dst_id", sa.String(300)),
    sa.Column("dst_digest", sa.String(64)),
    sa.Column("relation", sa.String(40)),
    sa.Column("created_at", sa.String(40)),
)


def _edge(r: sa.Row[tuple[object, ...]]) -> Edge:
    m = r._mapping
    return Edge(
        Node(m["src_kind"], m["src_id"], m["src_digest"]),
        Node(m["dst_kind"], m["dst_id"], m["dst_digest"]),
        m["relation"],
        m["created_at"],
    )


class SqlLineageRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def add(self, edge: Edge) -> None:
        with transaction(self._e, "recording lineage") as c:
            c.execute(
                lineage_edges.insert().values(
                    src_kind=edge.src.kind,
                    src_id=edge.src.id,
                    src_digest=edge.src.digest,
                    dst_kind=edge.dst.kind,
                    dst_id=edge.dst.id,
                    dst_digest=edge.dst.digest,
                    relation=edge.relation,
                    created_at=edge.created_at,
                )
            )

    def _select(self, where: sa.ColumnElement[bool]) -> list[Edge]:
        with reading(self._e, "reading lineage") as c:
            rows = c.execute(
                sa.select(lineage_edges).where(where).order_by(lineage_edges.c.id)
            ).all()
        return [_edge(r) for r in rows]

    def edges_into(self, kind: str, id: str) -> list[Edge]:
        t = lineage_edges.c
        return self._select(sa.and_(t.dst_kind == kind, t.dst_id == id))

    def edges_from(self, kind: str, id: str) -> list[Edge]:
        t = lineage_edges.c
        return self._select(sa.and_(t.src_kind == kind, t.src_id == id))

    def all_edges(self) -> list[Edge]:
        return self._select(sa.true())


__all__ = ["SqlLineageRepository"]
