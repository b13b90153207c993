"""SQL implementation of the dataset repository."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.errors import Conflict
from bastion.core.lineage.graph import Edge
from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.core.store._adapters.sql.lineage_repo import lineage_edges
from bastion.data_security.ingest.commit import (
    PendingVersion,
    StaleAudit,
    VersionCommit,
    record_from_json,
    record_to_json,
)
from bastion.data_security.values import Dataset, DatasetVersion, Source, VersionStatus

_md = sa.MetaData()
sources = sa.Table(
    "sources",
    _md,
    sa.Column("project", sa.String),
    sa.Column("name", sa.String),
    sa.Column("description", sa.String),
    sa.Column("trusted", sa.Boolean),
    sa.Column("require_checksum", sa.Boolean),
    sa.Column("created_at", sa.String),
    sa.Column("created_by", sa.String),
)
dataset_sources = sa.Table(
    "dataset_sources",
    _md,
    sa.Column("project", sa.String),
    sa.Column("dataset", sa.String),
    sa.Column("source", sa.String),
)
datasets = sa.Table(
    "datasets",
    _md,
    sa.Column("project", sa.String),
    sa.Column("name", sa.String),
    sa.Column("label", sa.String),
    sa.Column("sensitive", sa.Text),
    sa.Column("policy", sa.Text),
    sa.Column("reference_digest", sa.String),
    sa.Column("reference_version", sa.Integer),
    sa.Column("recent_digest", sa.String),
    sa.Column("created_at", sa.String),
    sa.Column("created_by", sa.String),
    sa.Column("generation", sa.Integer),
)
versions = sa.Table(
    "dataset_versions",
    _md,
    *(
        sa.Column(n, sa.String)
        for n in (
            "id",
            "project",
            "dataset",
            "status",
            "data_digest",
            "raw_digest",
            "profile_digest",
            "format",
            "schema",
            "report",
            "source",
            "declared_sha256",
            "created_at",
            "created_by",
            "reviewed_by",
            "reviewed_at",
            "review_reason",
            "pending_status",
            "pending_audit",
        )
    ),
    sa.Column("version", sa.Integer),
    sa.Column("rows", sa.BigInteger),
    sa.Column("parent_version", sa.Integer),
    sa.Column("contract_version", sa.Integer),
)
contracts = sa.Table(
    "contracts",
    _md,
    sa.Column("project", sa.String),
    sa.Column("dataset", sa.String),
    sa.Column("version", sa.Integer),
    sa.Column("body", sa.Text),
    sa.Column("created_at", sa.String),
    sa.Column("created_by", sa.String),
)

_Row = sa.Row[tuple[object, ...]]


def _dataset(r: _Row) -> Dataset:
    m = r._mapping
    return Dataset(
        m["project"],
        m["name"],
        m["label"],
        tuple(json.loads(m["sensitive"])),
        m["policy"],
        m["reference_digest"],
        m["reference_version"],
        m["recent_digest"],
        m["created_at"],
        m["created_by"],
        int(m["generation"] or 0),
    )


def _version(r: _Row) -> DatasetVersion:
    m = r._mapping
    return DatasetVersion(
        m["id"],
        m["project"],
        m["dataset"],
        int(m["version"]),
        VersionStatus(m["status"]),
        m["data_digest"],
        m["raw_digest"],
        m["profile_digest"],
        m["format"],
        int(m["rows"]),
        m["schema"],
        m["report"],
        m["source"],
        m["declared_sha256"],
        m["parent_version"],
        m["contract_version"],
        m["created_at"],
        m["created_by"],
        m["reviewed_by"],
        m["reviewed_at"],
        m["review_reason"],
    )


def _source(r: _Row) -> Source:
    m = r._mapping
    return Source(
        m["project"],
        m["name"],
        m["description"],
        bool(m["trusted"]),
        bool(m["require_checksum"]),
        m["created_at"],
        m["created_by"],
    )


def _bump(c: sa.Connection, project: str, name: str, expected: int | None = None) -> bool:
    """Advance a dataset's generation (only from ``expected``, if given)."""
    stmt = datasets.update().where(datasets.c.project == project, datasets.c.name == name)
    if expected is not None:
        stmt = stmt.where(datasets.c.generation == expected)
    return c.execute(stmt.values(generation=datasets.c.generation + 1)).rowcount == 1


def _next_contract(c: sa.Connection, project: str, dataset: str) -> int:
    current = c.execute(
        sa.select(sa.func.max(contracts.c.version)).where(
            contracts.c.project == project, contracts.c.dataset == dataset
        )
    ).scalar()
    return int(current or 0) + 1


def _edge_row(edge: Edge) -> dict[str, str | None]:
    return {
        "src_kind": edge.src.kind,
        "src_id": edge.src.id,
        "src_digest": edge.src.digest,
        "dst_kind": edge.dst.kind,
        "dst_id": edge.dst.id,
        "dst_digest": edge.dst.digest,
        "relation": edge.relation,
        "created_at": edge.created_at,
    }


def _same_name(kind: str, wanted: str, existing: str) -> None:
    """Names are unique case-insensitively: ``Credit`` beside ``credit`` is refused."""
    if existing != wanted:
        raise Conflict(
            f"a {kind} named {existing!r} already exists; names are case-insensitive, "
            f"so {wanted!r} would be a look-alike",
            hint=f"use {existing!r}, or choose a different name",
        )


class SqlDatasetRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    # sources
    def add_source(self, s: Source) -> bool:
        with transaction(self._e, "registering a source") as c:
            found = c.execute(
                sa.select(sources.c.name).where(
                    sources.c.project == s.project, sa.func.lower(sources.c.name) == s.name.lower()
                )
            ).first()
            if found:
                _same_name("source", s.name, found[0])
                return False
            c.execute(sources.insert().values(**s.__dict__))
        return True

    def source(self, project: str, name: str) -> Source | None:
        with reading(self._e, "reading a source") as c:
            r = c.execute(
                sa.select(sources).where(sources.c.project == project, sources.c.name == name)
            ).first()
        return _source(r) if r else None

    def sources(self, project: str) -> list[Source]:
        with reading(self._e, "listing sources") as c:
            rows = c.execute(
                sa.select(sources).where(sources.c.project == project).order_by(sources.c.name)
            ).all()
        return [_source(r) for r in rows]

    def set_source_trusted(self, project: str, name: str, trusted: bool) -> None:
        with transaction(self._e, "updating a source") as c:
            c.execute(
                sources.update()
                .where(sources.c.project == project, sources.c.name == name)
                .values(trusted=trusted)
            )

    def allow_source(self, project: str, dataset: str, source: str) -> None:
        with transaction(self._e, "allowing a source") as c:
            found = c.execute(
                sa.select(dataset_sources.c.source).where(
                    dataset_sources.c.project == project,
                    dataset_sources.c.dataset == dataset,
                    dataset_sources.c.source == source,
                )
            ).first()
            if not found:
                c.execute(
                    dataset_sources.insert().values(project=project, dataset=dataset, source=source)
                )

    def allowed_sources(self, project: str, dataset: str) -> list[str]:
        with reading(self._e, "listing dataset sources") as c:
            rows = c.execute(
                sa.select(dataset_sources.c.source).where(
                    dataset_sources.c.project == project, dataset_sources.c.dataset == dataset
                )
            ).all()
        return [r[0] for r in rows]

    # datasets
    def add_dataset(self, d: Dataset) -> bool:
        with transaction(self._e, "creating a dataset") as c:
            return self._insert_dataset(c, d)

    @staticmethod
    def _insert_dataset(c: sa.Connection, d: Dataset) -> bool:
        found = c.execute(
            sa.select(datasets.c.name).where(
                datasets.c.project == d.project, sa.func.lower(datasets.c.name) == d.name.lower()
            )
        ).first()
        if found:
            _same_name("dataset", d.name, found[0])
            return False
        c.execute(
            datasets.insert().values(
                project=d.project,
                name=d.name,
                label=d.label,
                sensitive=json.dumps(list(d.sensitive)),
                policy=d.policy,
                reference_digest=d.reference_digest,
                reference_version=d.reference_version,
                recent_digest=d.recent_digest,
                created_at=d.created_at,
                created_by=d.created_by,
                generation=0,
            )
        )
        return True

    def dataset(self, project: str, name: str) -> Dataset | None:
        with reading(self._e, "reading a dataset") as c:
            r = c.execute(
                sa.select(datasets).where(datasets.c.project == project, datasets.c.name == name)
            ).first()
        return _dataset(r) if r else None

    def datasets(self, project: str) -> list[Dataset]:
        with reading(self._e, "listing datasets") as c:
            rows = c.execute(
                sa.select(datasets).where(datasets.c.project == project).order_by(datasets.c.name)
            ).all()
        return [_dataset(r) for r in rows]

    def update_dataset(self, project: str, name: str, **values: object) -> None:
        if "sensitive" in values:
            values["sensitive"] = json.dumps(list(values["sensitive"]))  # type: ignore[call-overload]
        with transaction(self._e, "updating a dataset") as c:
            c.execute(
                datasets.update()
                .where(datasets.c.project == project, datasets.c.name == name)
                .values(**values, generation=datasets.c.generation + 1)
            )

    # versions
    def commit_version(self, cv: VersionCommit) -> PendingVersion:
        v = cv.version
        with transaction(self._e, "committing a dataset version") as c:
            if cv.new_dataset is not None:
                if not self._insert_dataset(c, cv.new_dataset):
                    raise Conflict(
                        f"dataset {v.dataset!r} was created concurrently; retry the ingest"
                    )
            elif not _bump(c, v.project, v.dataset, cv.expected_generation):
                raise StaleAudit(
                    f"dataset {v.dataset!r} changed while the batch was audited; retry",
                    hint="the pin, policy or contract moved during the audit",
                )
            if cv.state is not None:
                c.execute(
                    datasets.update()
                    .where(datasets.c.project == v.project, datasets.c.name == v.dataset)
                    .values(
                        reference_digest=cv.state.reference_digest,
                        reference_version=cv.state.reference_version,
                        recent_digest=cv.state.recent_digest,
                    )
                )
            pending = {
                "status": VersionStatus.PENDING.value,
                "pending_status": v.status.value,
                "pending_audit": record_to_json(cv.audit),
            }
            if cv.review:
                self._pend_review(c, v, pending)
            else:
                c.execute(versions.insert().values(**{**v.__dict__, **pending}))
            if cv.contract is not None:
                c.execute(
                    contracts.insert().values(
                        project=v.project,
                        dataset=v.dataset,
                        version=_next_contract(c, v.project, v.dataset),
                        body=cv.contract,
                        created_at=v.created_at,
                        created_by="inferred",
                    )
                )
            for edge in cv.edges:
                c.execute(lineage_edges.insert().values(**_edge_row(edge)))
        stored = DatasetVersion(**{**v.__dict__, "status": VersionStatus.PENDING})
        return PendingVersion(stored, v.status, cv.audit)

    @staticmethod
    def _pend_review(c: sa.Connection, v: DatasetVersion, pending: dict[str, str]) -> None:
        done = c.execute(
            versions.update()
            .where(
                versions.c.project == v.project,
                versions.c.dataset == v.dataset,
                versions.c.version == v.version,
                versions.c.status == VersionStatus.QUARANTINED.value,
            )
            .values(
                reviewed_by=v.reviewed_by,
                reviewed_at=v.reviewed_at,
                review_reason=v.review_reason,
                **pending,
            )
        )
        if done.rowcount != 1:
            raise Conflict(f"{v.ref} is no longer quarantined (reviewed concurrently)")

    def finalize_version(self, project: str, dataset: str, number: int) -> DatasetVersion:
        where = (
            versions.c.project == project,
            versions.c.dataset == dataset,
            versions.c.version == number,
        )
        with transaction(self._e, "finalizing a dataset version") as c:
            c.execute(
                versions.update()
                .where(*where, versions.c.status == VersionStatus.PENDING.value)
                .values(status=versions.c.pending_status, pending_status=None, pending_audit=None)
            )
            row = c.execute(sa.select(versions).where(*where)).one()
        return _version(row)

    def pending_versions(
        self, project: str | None = None, dataset: str | None = None
    ) -> list[PendingVersion]:
        stmt = sa.select(versions).where(versions.c.status == VersionStatus.PENDING.value)
        if project is not None:
            stmt = stmt.where(versions.c.project == project)
        if dataset is not None:
            stmt = stmt.where(versions.c.dataset == dataset)
        with reading(self._e, "listing pending dataset versions") as c:
            rows = c.execute(stmt.order_by(versions.c.project, versions.c.dataset,
                                           versions.c.version)).all()
        return [
            PendingVersion(
                _version(r),
                VersionStatus(r._mapping["pending_status"]),
                record_from_json(r._mapping["pending_audit"]),
            )
            for r in rows
        ]

    def version(self, project: str, dataset: str, number: int) -> DatasetVersion | None:
        with reading(self._e, "reading a dataset version") as c:
            r = c.execute(
                sa.select(versions).where(
                    versions.c.project == project,
                    versions.c.dataset == dataset,
                    versions.c.version == number,
                )
            ).first()
        return _version(r) if r else None

    def versions(self, project: str, dataset: str) -> list[DatasetVersion]:
        with reading(self._e, "listing dataset versions") as c:
            rows = c.execute(
                sa.select(versions)
                .where(versions.c.project == project, versions.c.dataset == dataset)
                .order_by(versions.c.version)
            ).all()
        return [_version(r) for r in rows]

    def set_status(
        self,
        project: str,
        dataset: str,
        number: int,
        status: VersionStatus,
        by: str,
        at: str,
        reason: str,
    ) -> None:
        with transaction(self._e, "reviewing a dataset version") as c:
            c.execute(
                versions.update()
                .where(
                    versions.c.project == project,
                    versions.c.dataset == dataset,
                    versions.c.version == number,
                )
                .values(status=status.value, reviewed_by=by, reviewed_at=at, review_reason=reason)
            )

    # contracts
    def add_contract(self, project: str, dataset: str, body: str, at: str, by: str) -> int:
        with transaction(self._e, "storing a data contract") as c:
            current = c.execute(
                sa.select(sa.func.max(contracts.c.version)).where(
                    contracts.c.project == project, contracts.c.dataset == dataset
                )
            ).scalar()
            number = int(current or 0) + 1
            _bump(c, project, dataset)
            c.execute(
                contracts.insert().values(
                    project=project,
                    dataset=dataset,
                    version=number,
                    body=body,
                    created_at=at,
                    created_by=by,
                )
            )
        return number

    def contract(
        self, project: str, dataset: str, number: int | None = None
    ) -> tuple[int, str] | None:
        stmt = sa.select(contracts).where(
            contracts.c.project == project, contracts.c.dataset == dataset
        )
        stmt = (
            stmt.where(contracts.c.version == number)
            if number
            else stmt.order_by(contracts.c.version.desc())
        )
        with reading(self._e, "reading a data contract") as c:
            r = c.execute(stmt.limit(1)).first()
        return (int(r.version), r.body) if r else None


__all__ = ["SqlDatasetRepository"]
