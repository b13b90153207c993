"""SQL implementation of the provider register (tables ``providers`` and
``provider_assessments``, migration 0010)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bastion.core.errors import Conflict
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.governance.provider_values import (
    Assessment,
    DataCategory,
    Provider,
    ProviderKind,
    RiskRating,
    lookalike_key,
)

_md = sa.MetaData()
providers = sa.Table(
    "providers",
    _md,
    *(
        sa.Column(n, sa.String)
        for n in ("project", "name", "name_key", "kind", "description", "created_at", "created_by")
    ),
)
_ASSESSMENT_TEXT = (
    "id", "project", "provider", "data_sent", "certifications", "reviewed_on", "expires_on",
    "risk", "notes", "sha256", "created_at", "created_by",
)  # fmt: skip
assessments = sa.Table(
    "provider_assessments",
    _md,
    *(sa.Column(n, sa.String) for n in _ASSESSMENT_TEXT),
    sa.Column("assessment_version", sa.Integer),
    sa.Column("dpa", sa.Boolean),
)


def _provider(r: sa.Row[tuple[object, ...]]) -> Provider:
    m = r._mapping
    return Provider(
        m["project"], m["name"], ProviderKind(m["kind"]), m["description"], m["created_at"],
        m["created_by"],
    )  # fmt: skip


def _assessment(r: sa.Row[tuple[object, ...]]) -> Assessment:
    m = r._mapping
    return Assessment(
        m["project"],
        m["provider"],
        int(m["assessment_version"]),
        tuple(DataCategory(c) for c in json.loads(m["data_sent"])),
        bool(m["dpa"]),
        tuple(json.loads(m["certifications"])),
        dt.date.fromisoformat(m["reviewed_on"]),
        dt.date.fromisoformat(m["expires_on"]),
        RiskRating(m["risk"]),
        m["notes"],
        m["sha256"],
        m["created_at"],
        m["created_by"],
    )


@contextmanager
def _unique(what: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.IntegrityError as e:  # a concurrent writer took the name or number
        raise Conflict(f"{what} was written concurrently", hint="retry") from e


class SqlProviderRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def add_provider(self, p: Provider) -> None:
        """Store ``p``; ``Conflict`` naming the existing provider when the name looks alike."""
        key = lookalike_key(p.name)
        with _unique(f"provider {p.name!r}"), transaction(self._e, "registering a provider") as c:
            found = c.execute(
                sa.select(providers.c.name).where(
                    providers.c.project == p.project, providers.c.name_key == key
                )
            ).first()
            if found:
                same = found[0] == p.name
                raise Conflict(
                    f"provider {found[0]!r} is already registered in project {p.project}"
                    + ("" if same else f"; {p.name!r} would be a look-alike of it"),
                    hint=f"assess or link {found[0]!r}, or choose a clearly different name",
                )
            c.execute(
                providers.insert().values(
                    project=p.project,
                    name=p.name,
                    name_key=key,
                    kind=p.kind.value,
                    description=p.description,
                    created_at=p.created_at,
                    created_by=p.created_by,
                )
            )

    def provider(self, project: str, name: str) -> Provider | None:
        with reading(self._e, "reading a provider") as c:
            row = c.execute(
                sa.select(providers).where(providers.c.project == project, providers.c.name == name)
            ).first()
        return _provider(row) if row else None

    def lookalike(self, project: str, name: str) -> str | None:
        """The registered provider ``name`` would collide with, if any."""
        with reading(self._e, "reading a provider") as c:
            row = c.execute(
                sa.select(providers.c.name).where(
                    providers.c.project == project, providers.c.name_key == lookalike_key(name)
                )
            ).first()
        return str(row[0]) if row else None

    def providers(self, project: str) -> list[Provider]:
        with reading(self._e, "listing providers") as c:
            rows = c.execute(
                sa.select(providers)
                .where(providers.c.project == project)
                .order_by(providers.c.name)
            ).all()
        return [_provider(r) for r in rows]

    def add_assessment(self, a: Assessment) -> Assessment:
        """Store ``a`` as the provider's next assessment version (latest + 1)."""
        with (
            _unique(f"an assessment of {a.provider!r}"),
            transaction(self._e, "storing a provider assessment") as c,
        ):
            numbered = dataclasses.replace(a, assessment_version=self._next(c, a))
            c.execute(
                assessments.insert().values(
                    id=uuid.uuid4().hex,
                    project=a.project,
                    provider=a.provider,
                    assessment_version=numbered.assessment_version,
                    data_sent=json.dumps([x.value for x in a.data_sent]),
                    dpa=a.dpa,
                    certifications=json.dumps(list(a.certifications)),
                    reviewed_on=a.reviewed_on.isoformat(),
                    expires_on=a.expires_on.isoformat(),
                    risk=a.risk.value,
                    notes=a.notes,
                    sha256=a.sha256,
                    created_at=a.created_at,
                    created_by=a.created_by,
                )
            )
        return numbered

    @staticmethod
    def _next(c: Connection, a: Assessment) -> int:
        latest = c.execute(
            sa.select(sa.func.max(assessments.c.assessment_version)).where(
                assessments.c.project == a.project, assessments.c.provider == a.provider
            )
        ).scalar()
        return int(latest or 0) + 1

    def assessments(self, project: str, provider: str) -> list[Assessment]:
        with reading(self._e, "reading provider assessments") as c:
            rows = c.execute(
                sa.select(assessments)
                .where(assessments.c.project == project, assessments.c.provider == provider)
                .order_by(assessments.c.assessment_version)
            ).all()
        return [_assessment(r) for r in rows]


__all__ = ["SqlProviderRepository"]
