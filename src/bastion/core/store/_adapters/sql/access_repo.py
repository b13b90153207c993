"""SQL implementation of the access repository port."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.access.values import (
    Principal,
    PrincipalId,
    PrincipalKind,
    Project,
    RoleBinding,
    TokenId,
    TokenRecord,
)
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.tables import principals, projects, role_bindings, tokens

_ROW = sa.Row[tuple[object, ...]]


def _principal(r: _ROW) -> Principal:
    m = r._mapping
    return Principal(
        PrincipalId(m["id"]),
        m["name"],
        PrincipalKind(m["kind"]),
        m["created_at"],
        bool(m["disabled"]),
    )


def _token(r: _ROW) -> TokenRecord:
    m = r._mapping
    return TokenRecord(
        TokenId(m["id"]),
        PrincipalId(m["principal_id"]),
        bytes(m["salt"]),
        bytes(m["hash"]),
        m["description"],
        m["created_at"],
        m["expires_at"],
        m["revoked_at"],
        m["last_used_at"],
        TokenId(m["parent_id"]) if m["parent_id"] else None,
    )


class SqlAccessRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    # principals
    def add_principal(self, p: Principal, created_by: str | None) -> None:
        with transaction(self._e, "creating a principal") as c:
            c.execute(
                principals.insert().values(
                    id=p.id,
                    name=p.name,
                    kind=p.kind.value,
                    created_at=p.created_at,
                    created_by=created_by,
                    disabled=p.disabled,
                )
            )

    def principal_by_id(self, pid: PrincipalId) -> Principal | None:
        with reading(self._e, "reading a principal") as c:
            r = c.execute(sa.select(principals).where(principals.c.id == pid)).first()
        return _principal(r) if r else None

    def principal_by_name(self, name: str) -> Principal | None:
        with reading(self._e, "reading a principal") as c:
            r = c.execute(sa.select(principals).where(principals.c.name == name)).first()
        return _principal(r) if r else None

    def principals(self) -> list[Principal]:
        with reading(self._e, "listing principals") as c:
            rows = c.execute(sa.select(principals).order_by(principals.c.name)).all()
        return [_principal(r) for r in rows]

    def set_disabled(self, pid: PrincipalId, disabled: bool) -> None:
        with transaction(self._e, "updating a principal") as c:
            c.execute(principals.update().where(principals.c.id == pid).values(disabled=disabled))

    # tokens
    def add_token(self, t: TokenRecord) -> bool:
        with transaction(self._e, "issuing a token") as c:
            if t.parent_id is not None:
                # Lock the parent row: a concurrent revocation either commits first
                # (we see it and refuse) or waits for us (and then revokes the child).
                parent = c.execute(
                    sa.select(tokens.c.revoked_at)
                    .where(tokens.c.id == t.parent_id)
                    .with_for_update()
                ).first()
                if parent is None or parent[0] is not None:
                    return False
            c.execute(
                tokens.insert().values(
                    id=t.id,
                    principal_id=t.principal_id,
                    salt=t.salt,
                    hash=t.hash,
                    description=t.description,
                    created_at=t.created_at,
                    expires_at=t.expires_at,
                    parent_id=t.parent_id,
                )
            )
        return True

    def token(self, tid: TokenId) -> TokenRecord | None:
        with reading(self._e, "reading a token") as c:
            r = c.execute(sa.select(tokens).where(tokens.c.id == tid)).first()
        return _token(r) if r else None

    def tokens_of(self, pid: PrincipalId) -> list[TokenRecord]:
        with reading(self._e, "listing tokens") as c:
            rows = c.execute(
                sa.select(tokens).where(tokens.c.principal_id == pid).order_by(tokens.c.created_at)
            ).all()
        return [_token(r) for r in rows]

    def revoke_token(self, tid: TokenId, at: str) -> list[TokenId]:
        # The token and every token issued under it, in one transaction: a child
        # never outlives the revocation of its parent. Returns the ids revoked now.
        revoked: list[TokenId] = []
        with transaction(self._e, "revoking a token") as c:
            frontier, seen = [tid], {tid}
            while frontier:
                done = c.execute(
                    tokens.update()
                    .where(tokens.c.id.in_(frontier), tokens.c.revoked_at.is_(None))
                    .values(revoked_at=at)
                    .returning(tokens.c.id)
                ).all()
                revoked += [TokenId(r[0]) for r in done]
                children = c.execute(
                    sa.select(tokens.c.id).where(tokens.c.parent_id.in_(frontier))
                ).all()
                frontier = [TokenId(r[0]) for r in children if r[0] not in seen]
                seen.update(frontier)
        return revoked

    def touch_token(self, tid: TokenId, at: str) -> None:
        with transaction(self._e, "recording token use") as c:
            c.execute(tokens.update().where(tokens.c.id == tid).values(last_used_at=at))

    # bindings
    def add_binding(self, b: RoleBinding) -> bool:
        with transaction(self._e, "binding a role") as c:
            exists = c.execute(
                sa.select(role_bindings.c.id).where(
                    role_bindings.c.principal_id == b.principal_id,
                    role_bindings.c.role == b.role,
                    role_bindings.c.project == b.project,
                )
            ).first()
            if exists:
                return False
            c.execute(
                role_bindings.insert().values(
                    principal_id=b.principal_id,
                    role=b.role,
                    project=b.project,
                    created_at=b.created_at,
                    created_by=b.created_by,
                )
            )
        return True

    def remove_binding(self, pid: PrincipalId, role: str, project: str) -> bool:
        with transaction(self._e, "removing a role binding") as c:
            res = c.execute(
                role_bindings.delete().where(
                    role_bindings.c.principal_id == pid,
                    role_bindings.c.role == role,
                    role_bindings.c.project == project,
                )
            )
        return bool(res.rowcount)

    def bindings(self, pid: PrincipalId | None = None) -> list[RoleBinding]:
        stmt = sa.select(role_bindings, principals.c.name).join(
            principals, principals.c.id == role_bindings.c.principal_id
        )
        if pid is not None:
            stmt = stmt.where(role_bindings.c.principal_id == pid)
        with reading(self._e, "listing role bindings") as c:
            rows = c.execute(stmt.order_by(principals.c.name, role_bindings.c.project)).all()
        return [
            RoleBinding(
                PrincipalId(r.principal_id), r.name, r.role, r.project, r.created_at, r.created_by
            )
            for r in rows
        ]

    # projects
    def add_project(self, p: Project) -> bool:
        with transaction(self._e, "creating a project") as c:
            if c.execute(sa.select(projects.c.name).where(projects.c.name == p.name)).first():
                return False
            c.execute(
                projects.insert().values(
                    name=p.name,
                    description=p.description,
                    created_at=p.created_at,
                    created_by=p.created_by,
                )
            )
        return True

    def project(self, name: str) -> Project | None:
        with reading(self._e, "reading a project") as c:
            r = c.execute(sa.select(projects).where(projects.c.name == name)).first()
        return Project(r.name, r.description, r.created_at, r.created_by) if r else None

    def projects(self) -> list[Project]:
        with reading(self._e, "listing projects") as c:
            rows = c.execute(sa.select(projects).order_by(projects.c.name)).all()
        return [Project(r.name, r.description, r.created_at, r.created_by) for r in rows]


__all__ = ["SqlAccessRepository"]
