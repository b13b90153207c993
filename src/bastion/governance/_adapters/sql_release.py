"""SQL adapters of the release process (migration 0009): policies, approvals, waivers,
and the identity directory (the people behind principals, from the access tables)."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.governance.release_values import ApprovalRecord, Decision, PolicyVersion, Waiver

_md = sa.MetaData()


def _strings(*names: str) -> list[sa.Column[str]]:
    return [sa.Column(n, sa.String) for n in names]


policies = sa.Table(
    "release_policies", _md,
    *_strings("id", "project", "document", "sha256", "created_at", "created_by"),
    sa.Column("version", sa.Integer),
)  # fmt: skip
approvals = sa.Table(
    "model_approvals", _md,
    *_strings("id", "project", "model", "decision", "principal", "human", "token_id", "reason",
              "root_digest", "card_sha256", "nonce", "statement_digest", "created_at",
              "expires_at"),
    sa.Column("version", sa.Integer), sa.Column("card_version", sa.Integer),
)  # fmt: skip
waivers = sa.Table(
    "gate_waivers", _md,
    *_strings("id", "project", "model", "rule", "reason", "granted_by", "granted_at",
              "expires_at", "statement_digest"),
    sa.Column("version", sa.Integer),
)  # fmt: skip
principals = sa.Table("principals", _md, *_strings("id", "name", "kind", "created_by"))
tokens = sa.Table("tokens", _md, *_strings("id", "principal_id", "parent_id"))


class SqlReleaseRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    # -- policies ------------------------------------------------------------------------
    def add_policy(self, policy: PolicyVersion) -> PolicyVersion:
        # Two concurrent sets both compute latest + 1: the unique constraint refuses one.
        with transaction(self._e, "storing a release policy") as c:
            latest = c.execute(
                sa.select(sa.func.max(policies.c.version)).where(
                    policies.c.project == policy.project
                )
            ).scalar()
            numbered = dataclasses.replace(policy, version=int(latest or 0) + 1)
            c.execute(policies.insert().values(**dataclasses.asdict(numbered)))
        return numbered

    def policies(self, project: str) -> list[PolicyVersion]:
        with reading(self._e, "reading release policies") as c:
            rows = c.execute(
                sa.select(policies).where(policies.c.project == project)
                .order_by(policies.c.version)
            ).all()  # fmt: skip
        return [PolicyVersion(**{k: r._mapping[k] for k in _POLICY_FIELDS}) for r in rows]

    # -- approvals -----------------------------------------------------------------------
    def add_approval(self, record: ApprovalRecord) -> bool:
        with transaction(self._e, "storing an approval") as c:
            if self._nonce_used(c, record.project, record.nonce):
                return False
            values = dataclasses.asdict(record)
            values["decision"] = record.decision.value
            c.execute(approvals.insert().values(**values))
        return True

    def nonce_used(self, project: str, nonce: str) -> bool:
        with reading(self._e, "reading approvals") as c:
            return self._nonce_used(c, project, nonce)

    @staticmethod
    def _nonce_used(c: sa.Connection, project: str, nonce: str) -> bool:
        found = c.execute(
            sa.select(approvals.c.id).where(approvals.c.project == project,
                                            approvals.c.nonce == nonce)
        ).first()  # fmt: skip
        return found is not None

    def approvals(self, project: str, model: str, version: int) -> list[ApprovalRecord]:
        with reading(self._e, "reading approvals") as c:
            rows = c.execute(
                sa.select(approvals)
                .where(approvals.c.project == project, approvals.c.model == model,
                       approvals.c.version == version)
                .order_by(approvals.c.created_at, approvals.c.id)
            ).all()  # fmt: skip
        out = []
        for r in rows:
            m = {k: r._mapping[k] for k in _APPROVAL_FIELDS}
            m["decision"] = Decision(m["decision"])
            out.append(ApprovalRecord(**m))
        return out

    # -- waivers -------------------------------------------------------------------------
    def add_waiver(self, waiver: Waiver) -> None:
        with transaction(self._e, "storing a waiver") as c:
            c.execute(waivers.insert().values(**dataclasses.asdict(waiver)))

    def waivers(self, project: str, model: str | None = None) -> list[Waiver]:
        q = sa.select(waivers).where(waivers.c.project == project)
        if model is not None:
            q = q.where(waivers.c.model == model)
        with reading(self._e, "reading waivers") as c:
            rows = c.execute(q.order_by(waivers.c.granted_at, waivers.c.id)).all()
        return [Waiver(**{k: r._mapping[k] for k in _WAIVER_FIELDS}) for r in rows]


_POLICY_FIELDS = [f.name for f in dataclasses.fields(PolicyVersion)]
_APPROVAL_FIELDS = [f.name for f in dataclasses.fields(ApprovalRecord)]
_WAIVER_FIELDS = [f.name for f in dataclasses.fields(Waiver)]


class SqlIdentityDirectory:
    """The humans behind a principal, from the principals and tokens tables.

    A user is itself.  A service account is the user who created it plus, for
    each of its tokens, the first user up that token's lineage (whoever issued
    it, directly or through other service accounts): whoever holds its
    credentials.  A service account nobody can be traced to counts as itself
    (it still may approve only once)."""

    _MAX_DEPTH = 32

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def humans(self, principal: str, token_id: str | None = None) -> frozenset[str]:
        with reading(self._e, "resolving principals") as c:
            row = c.execute(sa.select(principals).where(principals.c.name == principal)).first()
            if row is None:
                return frozenset({principal})
            if row.kind == "user":
                return frozenset({principal})
            found: set[str] = set()
            creator = self._user(c, row.created_by)
            if creator:
                found.add(creator)
            starts = [str(t) for (t,) in c.execute(
                sa.select(tokens.c.id).where(tokens.c.principal_id == row.id)
            ).all()]  # fmt: skip
            for start in [*starts, *([token_id] if token_id else [])]:
                found |= self._token_users(c, start)
        return frozenset(found or {principal})

    def _user(self, c: sa.Connection, principal_id: str | None) -> str | None:
        if not principal_id:
            return None
        row = c.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
        return str(row.name) if row is not None and row.kind == "user" else None

    def _token_users(self, c: sa.Connection, token_id: str) -> set[str]:
        current: str | None = token_id
        for _ in range(self._MAX_DEPTH):
            if current is None:
                break
            row = c.execute(sa.select(tokens).where(tokens.c.id == current)).first()
            if row is None:
                break
            user = self._user(c, row.principal_id)
            if user:
                return {user}
            current = row.parent_id
        return set()


__all__ = ["SqlIdentityDirectory", "SqlReleaseRepository"]
