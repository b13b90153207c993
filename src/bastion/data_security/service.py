"""Dataset use cases: sources, datasets, policy and contract, reading, review.

Ingestion (read, audit against the pinned trusted reference, store, accept or
quarantine, all under the dataset's lock and committed atomically) lives in
``ingest/pipeline.py``; this service authorizes and delegates to it.

Example::

    result = datasets.ingest(actor, IngestRequest("credit", "loans", Path("batch.csv"),
                                                  source="bureau", declared_sha256=digest))
    if result.version.status is VersionStatus.QUARANTINED:
        print(result.report.render_text())
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.audit.log import AuditLog
from bastion.core.errors import Conflict, InputError, NotFound, PolicyDenied
from bastion.core.lineage.graph import LineageGraph, Node, NodeKind, NodeUnverifiable
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.core.store.scratch import Scratch
from bastion.data_security.contract.model import DataContract
from bastion.data_security.erasure.values import VersionErased
from bastion.data_security.ingest.commit import Outbox
from bastion.data_security.ingest.pipeline import (
    Ingestion,
    IngestRequest,
    IngestResult,
    now,
    resource,
)
from bastion.data_security.ingest.policy import DatasetPolicy
from bastion.data_security.ports import DatasetLocks, DatasetRepository
from bastion.data_security.values import (
    Dataset,
    DatasetRef,
    DatasetVersion,
    Source,
    VersionStatus,
    check_dataset_name,
)

Progress = Callable[[str], None]


class DatasetNotUsable(PolicyDenied):
    """A quarantined or rejected version was asked for where only accepted data may go."""

    code = "dataset_not_usable"


_now = now
_resource = resource


class DatasetService:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        repo: DatasetRepository,
        lineage: LineageGraph,
        scratch: Scratch,
        locks: DatasetLocks,
        audit: AuditLog,
    ) -> None:
        self._access = access
        self._blobs = blobs
        self._repo = repo
        self._lineage = lineage
        self.outbox = Outbox(repo, audit)
        self._locks = locks
        self._ingestion = Ingestion(access, blobs, repo, scratch, locks, self.outbox)
        lineage.register_rehash(NodeKind.DATASET_VERSION, self._rehash)
        lineage.register_rehash("raw_batch", self._rehash)

    # -- sources ------------------------------------------------------------------
    def register_source(
        self,
        actor: Actor,
        project: str,
        name: str,
        *,
        description: str = "",
        datasets: tuple[str, ...] = (),
        require_checksum: bool = True,
    ) -> Source:
        check_dataset_name("source", name)
        self._access.authorize(actor, "source.register", f"project/{project}/source/{name}")
        self._access.require_project(project)
        src = Source(project, name, description[:500], True, require_checksum, _now(), actor.name)
        if not self._repo.add_source(src):
            existing = self._repo.source(project, name)
            assert existing is not None
            src = existing
        for d in datasets:
            self._repo.allow_source(project, check_dataset_name("dataset", d), name)
        self._access.record(
            actor,
            "source.registered",
            f"project/{project}/source/{name}",
            Outcome.OK,
            {"datasets": list(datasets), "require_checksum": require_checksum},
        )
        return src

    def distrust_source(self, actor: Actor, project: str, name: str) -> None:
        self._access.authorize(actor, "source.register", f"project/{project}/source/{name}")
        if self._repo.source(project, name) is None:
            raise NotFound(f"no source {name!r} in {project}")
        self._repo.set_source_trusted(project, name, False)

    def sources(self, actor: Actor, project: str) -> list[Source]:
        self._access.authorize(actor, "dataset.list", f"project/{project}/sources")
        return self._repo.sources(project)

    # -- datasets -------------------------------------------------------------------
    def create_dataset(
        self,
        actor: Actor,
        project: str,
        name: str,
        *,
        label: str | None = None,
        sensitive: tuple[str, ...] = (),
        positive_label: str | None = None,
    ) -> Dataset:
        ds = self._new_dataset(actor, project, name, label, sensitive, positive_label)
        if not self._repo.add_dataset(ds):
            raise Conflict(f"dataset {name!r} already exists in {project}")
        return ds

    def _new_dataset(
        self,
        actor: Actor,
        project: str,
        name: str,
        label: str | None,
        sensitive: tuple[str, ...],
        positive_label: str | None,
    ) -> Dataset:
        return self._ingestion.new_dataset(actor, project, name, label, sensitive, positive_label)

    def dataset(self, actor: Actor, project: str, name: str) -> Dataset:
        self._access.authorize(actor, "dataset.list", _resource(project, name))
        return self._dataset(project, name)

    def _dataset(self, project: str, name: str) -> Dataset:
        ds = self._repo.dataset(project, name)
        if ds is None:
            raise NotFound(
                f"no dataset {name!r} in project {project}",
                hint="ingest a first batch with `bastion data ingest FILE --dataset NAME`",
            )
        return ds

    def datasets(self, actor: Actor, project: str) -> list[Dataset]:
        self._access.authorize(actor, "dataset.list", f"project/{project}/datasets")
        return self._repo.datasets(project)

    def versions(self, actor: Actor, project: str, name: str) -> list[DatasetVersion]:
        self._access.authorize(actor, "dataset.list", _resource(project, name))
        self._dataset(project, name)
        return self._repo.versions(project, name)

    def version(self, actor: Actor, project: str, ref: str) -> DatasetVersion:
        r = DatasetRef.parse(ref)
        self._access.authorize(actor, "dataset.list", _resource(project, r.name))
        return self._resolve(project, r)

    def _resolve(
        self, project: str, r: DatasetRef, *, accepted_only: bool = False
    ) -> DatasetVersion:
        self._dataset(project, r.name)
        if r.version is not None:
            v = self._repo.version(project, r.name, r.version)
            if v is None:
                raise NotFound(f"dataset {r.name} has no version {r.version}")
            return v
        accepted = [
            v for v in self._repo.versions(project, r.name) if v.status is VersionStatus.ACCEPTED
        ]
        if not accepted:
            raise NotFound(f"dataset {r.name} has no accepted version yet")
        return accepted[-1]

    def usable_version(self, actor: Actor, project: str, ref: str) -> DatasetVersion:
        """The accepted version ``ref`` (for training lineage); refuse anything else."""
        v = self.version(actor, project, ref)
        if v.status is not VersionStatus.ACCEPTED:
            raise DatasetNotUsable(
                f"{v.ref} is {v.status.value}; models may only be trained on accepted data",
                hint="a data steward must release it first (bastion data release)",
            )
        return v

    # -- policy and contract ----------------------------------------------------------
    def policy(self, actor: Actor, project: str, name: str) -> DatasetPolicy:
        self._access.authorize(actor, "dataset.list", _resource(project, name))
        return DatasetPolicy.from_json(self._dataset(project, name).policy)

    def set_policy(self, actor: Actor, project: str, name: str, text: str) -> DatasetPolicy:
        self._access.authorize(actor, "contract.edit", _resource(project, name))
        self._dataset(project, name)
        policy = DatasetPolicy.from_json(text)
        self._repo.update_dataset(project, name, policy=policy.to_json())
        self._access.record(actor, "policy.updated", _resource(project, name), Outcome.OK)
        return policy

    def contract(self, actor: Actor, project: str, name: str) -> DataContract | None:
        self._access.authorize(actor, "dataset.list", _resource(project, name))
        found = self._repo.contract(project, name)
        return DataContract.from_json(found[1]) if found else None

    def set_contract(self, actor: Actor, project: str, name: str, text: str) -> DataContract:
        """A steward's reviewed edit: validated, stored as the next contract version."""
        self._access.authorize(actor, "contract.edit", _resource(project, name))
        self._dataset(project, name)
        current = self._repo.contract(project, name)
        edited = DataContract.from_json(text)
        number = (current[0] if current else 0) + 1
        body = DataContract.from_json(
            json.dumps({**json.loads(edited.to_json()), "version": number})
        ).to_json()
        stored = self._repo.add_contract(project, name, body, _now(), actor.name)
        self._access.record(
            actor, "contract.updated", _resource(project, name), Outcome.OK, {"version": stored}
        )
        return DataContract.from_json(body)

    # -- ingestion (ingest/pipeline.py) ----------------------------------------------
    def ingest(
        self, actor: Actor, req: IngestRequest, progress: Progress | None = None
    ) -> IngestResult:
        return self._ingestion.ingest(actor, req, progress)

    def repin(self, actor: Actor, project: str, name: str) -> int:
        """Re-pin the trusted reference on the whole accepted history (steward decision)."""
        self._dataset(project, name)
        return self._ingestion.repin(actor, project, name)

    def reconcile(self) -> int:
        """Roll forward versions a crashed process left pending (run at open)."""
        return self.outbox.reconcile(self._locks)

    def _rehash(self, node: Node) -> str | None:
        if node.digest is None:
            return None
        h = hashlib.sha256()
        try:
            for chunk in self._blobs.iter_chunks(node.digest):
                h.update(chunk)
        except NotFound:
            erased = self._erased_version(node)
            if erased is None:
                raise
            # Gone on purpose, on the record: unverifiable, not a failure.
            raise NodeUnverifiable(f"{erased.ref} {erased.review_reason}") from None
        return h.hexdigest()

    def _erased_version(self, node: Node) -> DatasetVersion | None:
        project, _, ref = node.id.removesuffix("/raw").partition("/")
        try:
            r = DatasetRef.parse(ref)
        except InputError:
            return None
        v = self._repo.version(project, r.name, r.version) if r.version is not None else None
        return v if v is not None and v.status is VersionStatus.ERASED else None

    # -- reading data ------------------------------------------------------------------
    def _frame(self, v: DatasetVersion) -> pl.DataFrame:
        return self._ingestion.frame(v)

    def read_frame(
        self, actor: Actor, project: str, ref: str, *, purpose: str = "read"
    ) -> tuple[DatasetVersion, pl.DataFrame]:
        """Rows of a version (the batch), or for ``purpose="training"`` the dataset
        as of that version (all accepted batches up to it). Accepted versions need
        dataset.read; quarantined or rejected ones only open to data stewards
        (dataset.review) and never for training."""
        r = DatasetRef.parse(ref)
        # Authorize on the requested name before the lookup (a caller without
        # the right learns nothing about which datasets or versions exist); a
        # version that is not accepted then also needs the review right.
        self._access.authorize(
            actor,
            "dataset.read",
            _resource(project, r.name),
            details={"version": r.version, "purpose": purpose},
        )
        v = self._resolve(project, r)
        if v.status is VersionStatus.ERASED:
            raise VersionErased(
                f"{v.ref} {v.review_reason or 'was erased'}",
                hint="read the version that replaced it (bastion data versions)",
            )
        usable = v.status is VersionStatus.ACCEPTED
        if not usable:
            self._access.authorize(
                actor,
                "dataset.review",
                _resource(project, r.name),
                details={"version": v.version, "purpose": purpose},
            )
        if purpose == "training" and not usable:
            raise DatasetNotUsable(
                f"{v.ref} is {v.status.value}; only accepted versions may be used for training",
                hint="a data steward must release it first (bastion data release)",
            )
        if purpose == "training":
            # DATASET@V for training means the dataset as of version V: every
            # accepted batch up to and including V.
            batches = [
                b
                for b in self._repo.versions(project, r.name)
                if b.status is VersionStatus.ACCEPTED and b.version <= v.version
            ]
            frame = pl.concat([self._frame(b) for b in batches], how="vertical_relaxed")
        else:
            frame = self._frame(v)
        self._access.record(
            actor,
            "dataset.exported" if purpose == "export" else "dataset.read",
            _resource(project, r.name),
            Outcome.OK,
            {"version": v.version, "rows": frame.height, "purpose": purpose},
        )
        return v, frame

    def export(self, actor: Actor, project: str, ref: str, dest: Path) -> DatasetVersion:
        v, frame = self.read_frame(actor, project, ref, purpose="export")
        suffix = dest.suffix.lower()
        tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.part")
        try:
            # Created 0600 before a decrypted row is written: the writers below truncate
            # and keep the mode (with the umask alone, exports were 0644).
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            if suffix == ".parquet":
                frame.write_parquet(tmp)
            elif suffix in (".jsonl", ".ndjson"):
                frame.write_ndjson(tmp)
            elif suffix == ".csv":
                frame.write_csv(tmp)
            else:
                raise InputError(
                    f"cannot export to {dest.name}", hint="use a .csv, .parquet or .jsonl file name"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return v

    # -- review of quarantined batches -----------------------------------------------------
    def review(
        self, actor: Actor, project: str, ref: str, *, release: bool, reason: str
    ) -> DatasetVersion:
        r = DatasetRef.parse(ref)
        if r.version is None:
            raise InputError("name the exact version to review, e.g. loans@3")
        if len(reason.strip()) < 10:
            raise InputError(
                "a review needs a reason of at least 10 characters",
                hint="say why the batch is safe to release (or why it is rejected)",
            )
        self._access.authorize(
            actor,
            "dataset.review",
            _resource(project, r.name),
            details={"version": r.version, "release": release},
        )
        v = self._resolve(project, r)
        if v.status is not VersionStatus.QUARANTINED:
            raise Conflict(f"{v.ref} is {v.status.value}, not quarantined")
        return self._ingestion.review(actor, v, release=release, reason=reason)


__all__ = ["DatasetNotUsable", "DatasetService", "IngestRequest", "IngestResult"]
