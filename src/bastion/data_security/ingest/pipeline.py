"""Ingestion and review of dataset versions: audited under a lock, committed atomically.

Ingest: authorize -> stage the file (strict streaming read to Parquet, profile,
SHA-256) in a locked scratch folder -> take the dataset's lock (across
processes) -> roll forward versions a crashed process left ``pending`` ->
audit every check against the state the batch will be committed onto (the
pinned trusted reference, the recent window, policy, contract, source
lineage) -> store raw bytes, Parquet and profile encrypted -> commit the
version, its new pin or recent window, its inferred contract, its lineage and
its audit record in one transaction (``ingest/commit.py``) -> append the
audit record and release the version -> unlock.

Fail closed: a dataset that has accepted versions but no pinned reference
cannot be checked for poisoning, so any batch into it is quarantined (the
``trusted_reference`` check) until a steward re-pins.  A commit whose dataset
moved during the audit (generation fence) is audited again.

Example::

    result = ingestion.ingest(actor, IngestRequest("credit", "loans", Path("batch.csv"),
                                                   source="bureau", declared_sha256=digest))
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditRecord, Outcome
from bastion.core.crashpoints import crash_point
from bastion.core.errors import Conflict, InputError, NotFound
from bastion.core.lineage.graph import Edge, Node, NodeKind
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.core.store.scratch import Scratch
from bastion.data_security.checks.bias import bias_baseline
from bastion.data_security.checks.report import AuditReport, CheckResult
from bastion.data_security.contract.infer import InferenceOptions, infer_contract
from bastion.data_security.contract.model import DataContract
from bastion.data_security.ingest.audit import AuditInputs, audit_chunks, bias_spec
from bastion.data_security.ingest.commit import (
    DatasetState,
    Outbox,
    StaleAudit,
    VersionCommit,
)
from bastion.data_security.ingest.policy import DatasetPolicy
from bastion.data_security.ingest.staging import parquet_chunks, stage_file
from bastion.data_security.poisoning import PoisoningReference, RecentWindow, verify_source
from bastion.data_security.ports import DatasetLocks, DatasetRepository
from bastion.data_security.profile.build import profile_frame
from bastion.data_security.profile.dataset import DatasetProfile
from bastion.data_security.readers import ReadOptions
from bastion.data_security.reference import (
    PinnedReference,
    load_recent,
    load_reference,
    save_recent,
    save_reference,
)
from bastion.data_security.values import (
    Dataset,
    DatasetVersion,
    VersionStatus,
    check_dataset_name,
)

Progress = Callable[[str], None]
#: audits of one batch before giving up on a dataset that keeps changing under it
_ATTEMPTS = 3


@dataclass(frozen=True)
class IngestRequest:
    project: str
    dataset: str
    path: Path
    source: str
    declared_sha256: str | None = None
    label: str | None = None
    sensitive: tuple[str, ...] = ()
    positive_label: str | None = None
    read_options: ReadOptions = field(default_factory=ReadOptions)


@dataclass(frozen=True)
class IngestResult:
    version: DatasetVersion
    report: AuditReport

    @property
    def accepted(self) -> bool:
        return self.version.status is VersionStatus.ACCEPTED


@dataclass(frozen=True)
class _Staged:
    path: Path
    profile: DatasetProfile
    rows: int
    schema: dict[str, object]
    format: str
    raw_sha256: str


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def resource(project: str, dataset: str) -> str:
    return f"project/{project}/dataset/{dataset}"


def missing_reference_check(accepted: int) -> CheckResult:
    """Fail closed: accepted history without a pin means poisoning cannot be checked."""
    return CheckResult(
        name="trusted_reference",
        category="poisoning",
        passed=False,
        blocking=True,
        summary=(
            f"the dataset has {accepted} accepted version(s) but no pinned trusted reference, "
            "so the poisoning checks cannot run; a data steward must re-pin "
            "(bastion data repin) before batches can be accepted"
        ),
        metrics={"accepted_versions": accepted},
    )


class Ingestion:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        repo: DatasetRepository,
        scratch: Scratch,
        locks: DatasetLocks,
        outbox: Outbox,
    ) -> None:
        self._access = access
        self._blobs = blobs
        self._repo = repo
        self._scratch = scratch
        self._locks = locks
        self._outbox = outbox

    # -- datasets ------------------------------------------------------------------
    def new_dataset(
        self,
        actor: Actor,
        project: str,
        name: str,
        label: str | None,
        sensitive: tuple[str, ...],
        positive_label: str | None,
    ) -> Dataset:
        """Authorize and build a dataset record (not stored yet)."""
        check_dataset_name("dataset", name)
        self._access.authorize(actor, "dataset.create", resource(project, name))
        self._access.require_project(project)
        policy = DatasetPolicy(positive_label=positive_label)
        return Dataset(
            project, name, label, tuple(sensitive), policy.to_json(),
            None, None, None, now(), actor.name,
        )

    def accepted(self, project: str, name: str) -> list[DatasetVersion]:
        return [
            v for v in self._repo.versions(project, name) if v.status is VersionStatus.ACCEPTED
        ]

    # -- ingestion -------------------------------------------------------------------
    def ingest(
        self, actor: Actor, req: IngestRequest, progress: Progress | None = None
    ) -> IngestResult:
        tick = progress or (lambda _s: None)
        self._access.authorize(actor, "dataset.ingest", resource(req.project, req.dataset))
        self._access.require_project(req.project)
        # A new dataset is stored only with its first batch, so a refused file
        # leaves no empty dataset behind; creating one is authorized up front.
        fresh = None
        existing = self._repo.dataset(req.project, req.dataset)
        if existing is None:
            fresh = self.new_dataset(
                actor, req.project, req.dataset, req.label, req.sensitive, req.positive_label
            )
        _check_request(existing or fresh, req)
        with self._scratch.workdir("ingest") as work:
            tick("reading")
            staged = self._stage(req, work / "batch.parquet")
            crash_point("ingest.after_staging")
            tick("waiting for the dataset lock")
            with self._locks.hold(req.project, req.dataset):
                self._outbox.reconcile_locked(req.project, req.dataset)
                for _ in range(_ATTEMPTS):
                    try:
                        return self._audit_and_commit(actor, req, fresh, staged, tick)
                    except StaleAudit:
                        tick("the dataset changed during the audit; auditing again")
        raise Conflict(
            f"dataset {req.dataset} kept changing while the batch was audited",
            hint="retry when the dataset's policy and contract are not being edited",
        )

    @staticmethod
    def _stage(req: IngestRequest, path: Path) -> _Staged:
        profile, rows, schema, fmt, sha = stage_file(req.path, req.read_options, path)
        return _Staged(path, profile, rows, schema, fmt, sha)

    def _audit_and_commit(
        self,
        actor: Actor,
        req: IngestRequest,
        fresh: Dataset | None,
        staged: _Staged,
        tick: Progress,
    ) -> IngestResult:
        stored = self._repo.dataset(req.project, req.dataset)
        ds = stored or fresh
        if ds is None:  # it existed before staging: datasets are never deleted
            raise NotFound(f"dataset {req.dataset} disappeared during the ingest")
        _check_request(ds, req)
        tick("auditing")
        report = self._audit(ds, req, staged, tick)
        tick("storing")
        raw = self._blobs.put_file(req.path)
        if raw.digest != staged.raw_sha256:
            raise Conflict(f"{req.path} changed while it was being ingested; retry")
        data = self._blobs.put_file(staged.path)
        prof = self._blobs.put_bytes(staged.profile.to_bytes())
        crash_point("ingest.after_blobs")
        known = self._repo.versions(ds.project, ds.name)
        accepted = [v for v in known if v.status is VersionStatus.ACCEPTED]
        contract = self._repo.contract(ds.project, ds.name)
        version = DatasetVersion(
            id=uuid.uuid4().hex,
            project=ds.project,
            dataset=ds.name,
            version=max((v.version for v in known), default=0) + 1,
            status=VersionStatus.ACCEPTED if report.passed else VersionStatus.QUARANTINED,
            data_digest=data.digest,
            raw_digest=raw.digest,
            profile_digest=prof.digest,
            format=staged.format,
            rows=staged.rows,
            schema=json.dumps(staged.schema),
            report=json.dumps(report.to_dict(), sort_keys=True, allow_nan=False, default=str),
            source=req.source,
            declared_sha256=req.declared_sha256,
            parent_version=accepted[-1].version if accepted else None,
            contract_version=contract[0] if contract else None,
            created_at=now(),
            created_by=actor.name,
        )
        accepted_now = version.status is VersionStatus.ACCEPTED
        if accepted_now:
            tick("updating the trusted reference")
        record = AuditRecord(
            actor.name,
            "dataset.ingested",
            resource(ds.project, ds.name),
            Outcome.OK if accepted_now else Outcome.FAILED,
            actor.request_id,
            {
                "version": version.version,
                "version_id": version.id,
                "status": version.status.value,
                "rows": staged.rows,
                "blocking_failures": [c.name for c in report.blocking_failures],
            },
        )
        pending = self._repo.commit_version(
            VersionCommit(
                version,
                record,
                ds.generation,
                new_dataset=ds if stored is None else None,
                state=self._next_state(ds, version, staged.path) if accepted_now else None,
                contract=_inferred(staged.profile) if accepted_now and not contract else None,
                edges=_edges(version, accepted[-1] if accepted else None),
            )
        )
        crash_point("ingest.after_version_commit")
        return IngestResult(self._outbox.finalize(pending), report)

    def _audit(
        self, ds: Dataset, req: IngestRequest, staged: _Staged, tick: Progress
    ) -> AuditReport:
        pinned = load_reference(self._blobs, ds.reference_digest) if ds.reference_digest else None
        found = self._repo.contract(ds.project, ds.name)
        inputs = AuditInputs(
            policy=DatasetPolicy.from_json(ds.policy),
            lineage=self._lineage_check(ds, req, staged.raw_sha256, staged.rows),
            label=ds.label,
            sensitive=ds.sensitive,
            contract=DataContract.from_json(found[1]) if found else None,
            reference_profile=pinned.profile if pinned else None,
            poisoning_reference=pinned.poisoning if pinned else None,
            recent=load_recent(self._blobs, ds.recent_digest),
            bias_baseline=pinned.bias if pinned else None,
            history_rows=pinned.history_rows if pinned else (),
        )
        report = audit_chunks(
            parquet_chunks(staged.path), inputs, total_rows=staged.rows, progress=tick
        )
        accepted = len(self.accepted(ds.project, ds.name))
        if pinned is None and accepted:
            fail_closed = missing_reference_check(accepted)
            return AuditReport.of(report.row_count, [*report.checks, fail_closed])
        return report

    def _lineage_check(
        self, ds: Dataset, req: IngestRequest, actual: str, rows: int
    ) -> CheckResult:
        src = self._repo.source(ds.project, req.source)
        allowed = self._repo.allowed_sources(ds.project, ds.name)
        trusted = src is not None and src.trusted and (not allowed or req.source in allowed)
        declared = (
            req.declared_sha256.lower().removeprefix("sha256:") if req.declared_sha256 else None
        )
        if src is not None and not src.require_checksum and declared is None:
            declared = actual
        return verify_source(
            req.source, {req.source} if trusted else set(), declared, actual, row_count=rows
        )

    def _next_state(self, ds: Dataset, version: DatasetVersion, staged: Path) -> DatasetState:
        """The pin and recent window once ``version`` is accepted (blobs stored, not yet live)."""
        if ds.reference_digest is None:
            pinned = self.build_reference(ds, [version])
            return DatasetState(save_reference(self._blobs, pinned), version.version, None)
        recent = load_recent(self._blobs, ds.recent_digest) or RecentWindow.empty()
        window = save_recent(self._blobs, recent.with_batch(pl.read_parquet(staged)))
        return DatasetState(ds.reference_digest, ds.reference_version, window)

    # -- the trusted reference ---------------------------------------------------------
    def build_reference(self, ds: Dataset, accepted: list[DatasetVersion]) -> PinnedReference:
        """The trusted reference over the given accepted versions (not stored)."""
        history = pl.concat([self.frame(v) for v in accepted], how="vertical_relaxed")
        profile = profile_frame(history)
        poisoning = (
            PoisoningReference.build(history, label=ds.label)
            if ds.label and ds.label in history.columns
            else None
        )
        spec = bias_spec(DatasetPolicy.from_json(ds.policy), ds.label, ds.sensitive)
        bias = bias_baseline(history, spec, profile) if spec else None
        return PinnedReference(
            accepted[-1].version,
            profile,
            poisoning,
            bias,
            tuple(v.rows for v in accepted),
            tuple(v.version for v in accepted),
        )

    def repin(self, actor: Actor, project: str, name: str) -> int:
        """Re-pin the trusted reference on the whole accepted history (steward decision)."""
        self._access.authorize(actor, "contract.edit", resource(project, name))
        with self._locks.hold(project, name):
            self._outbox.reconcile_locked(project, name)
            ds = self._repo.dataset(project, name)
            if ds is None:
                raise NotFound(f"no dataset {name!r} in project {project}")
            accepted = self.accepted(project, name)
            if not accepted:
                raise NotFound(f"dataset {name} has no accepted version to pin")
            pinned = self.build_reference(ds, accepted)
            self._repo.update_dataset(
                project,
                name,
                reference_digest=save_reference(self._blobs, pinned),
                reference_version=pinned.pinned_version,
                recent_digest=None,
            )
        self._access.record(
            actor,
            "reference.pinned",
            resource(project, name),
            Outcome.OK,
            {"version": pinned.pinned_version},
        )
        return pinned.pinned_version

    # -- review of a quarantined version ------------------------------------------------
    def review(
        self, actor: Actor, v: DatasetVersion, *, release: bool, reason: str
    ) -> DatasetVersion:
        """Release or reject ``v`` (authorized by the caller): status, pin and audit at once."""
        with self._locks.hold(v.project, v.dataset):
            self._outbox.reconcile_locked(v.project, v.dataset)
            current = self._repo.version(v.project, v.dataset, v.version)
            ds = self._repo.dataset(v.project, v.dataset)
            if current is None or ds is None:
                raise NotFound(f"dataset {v.dataset} has no version {v.version}")
            if current.status is not VersionStatus.QUARANTINED:
                raise Conflict(f"{current.ref} is {current.status.value}, not quarantined")
            status = VersionStatus.ACCEPTED if release else VersionStatus.REJECTED
            reviewed = DatasetVersion(
                **{
                    **current.__dict__,
                    "status": status,
                    "reviewed_by": actor.name,
                    "reviewed_at": now(),
                    "review_reason": reason,
                }
            )
            record = AuditRecord(
                actor.name,
                "dataset.released" if release else "dataset.rejected",
                resource(v.project, v.dataset),
                Outcome.OK,
                actor.request_id,
                {"version": v.version, "version_id": v.id, "reason": reason},
            )
            state = self._released_state(ds, current) if release else None
            pending = self._repo.commit_version(
                VersionCommit(reviewed, record, ds.generation, state=state, review=True)
            )
            crash_point("review.after_commit")
            return self._outbox.finalize(pending)

    def _released_state(self, ds: Dataset, v: DatasetVersion) -> DatasetState:
        if ds.reference_digest is None:
            pinned = self.build_reference(ds, [v])
            return DatasetState(save_reference(self._blobs, pinned), v.version, None)
        recent = load_recent(self._blobs, ds.recent_digest) or RecentWindow.empty()
        window = save_recent(self._blobs, recent.with_batch(self.frame(v)))
        return DatasetState(ds.reference_digest, ds.reference_version, window)

    def frame(self, v: DatasetVersion) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self._blobs.read_bytes(v.data_digest)))


def _check_request(ds: Dataset | None, req: IngestRequest) -> None:
    if ds is not None and req.label and ds.label and req.label != ds.label:
        raise InputError(
            f"dataset {ds.name} has label column {ds.label!r}, not {req.label!r}",
            hint="omit --label or pass the dataset's label column",
        )
    if req.declared_sha256 is not None:
        text = req.declared_sha256.lower().removeprefix("sha256:")
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise InputError("--sha256 must be 64 hex characters")


def _inferred(profile: DatasetProfile) -> str:
    # Inferred ranges are a guess from one sample: widen them by half the
    # observed width so heavy tails of real data do not break the contract;
    # a steward tightens them to business bounds with `data contract set`.
    return infer_contract(profile, version=1, options=InferenceOptions(range_margin=0.5)).to_json()


def _edges(v: DatasetVersion, parent: DatasetVersion | None) -> tuple[Edge, ...]:
    at = now()
    src = Node(NodeKind.SOURCE, f"{v.project}/{v.source}")
    raw = Node("raw_batch", f"{v.lineage_id}/raw", v.raw_digest)
    node = Node(NodeKind.DATASET_VERSION, v.lineage_id, v.data_digest)
    edges = [Edge(src, raw, "delivered", at), Edge(raw, node, "parsed", at)]
    if parent is not None:
        prev = Node(NodeKind.DATASET_VERSION, parent.lineage_id, parent.data_digest)
        edges.append(Edge(prev, node, "parent", at))
    return tuple(edges)


__all__ = [
    "IngestRequest",
    "IngestResult",
    "Ingestion",
    "missing_reference_check",
    "now",
    "resource",
]
