"""SQL index of named objects per project (names map to blob digests)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.tables import objects
from bastion.core.store.interface import Digest
from bastion.core.store.objects import NamedObject


class SqlObjectIndex:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def add(self, o: NamedObject) -> bool:
        with transaction(self._e, "naming an object") as c:
            found = c.execute(
                sa.select(objects.c.id).where(
                    objects.c.project == o.project, objects.c.name == o.name
                )
            ).first()
            if found:
                return False
            c.execute(
                objects.insert().values(
                    project=o.project,
                    name=o.name,
                    digest=o.digest,
                    size=o.size,
                    created_at=o.created_at,
                    created_by=o.created_by,
                )
            )
        return True

    def get(self, project: str, name: str) -> NamedObject | None:
        with reading(self._e, "reading an object name") as c:
            r = c.execute(
                sa.select(objects).where(objects.c.project == project, objects.c.name == name)
            ).first()
        if r is None:
            return None
        return NamedObject(
            r.project, r.name, Digest(r.digest), int(r.size), r.created_at, r.created_by
        )

    def list(self, project: str) -> list[NamedObject]:
        with reading(self._e, "listing objects") as c:
            rows = c.execute(
                sa.select(objects).where(objects.c.project == project).order_by(objects.c.name)
            ).all()
        return [
            NamedObject(
                r.project, r.name, Digest(r.digest), int(r.size), r.created_at, r.created_by
            )
            for r in rows
        ]


__all__ = ["SqlObjectIndex"]
