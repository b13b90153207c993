"""Dataset use cases: sources, datasets, ingestion with audit and quarantine, review.

Ingestion: authorize -> read the file (streaming, strict) while staging it as
Parquet and profiling it -> verify lineage (registered, trusted source; bytes
match the declared SHA-256) -> audit every check against the pinned trusted
reference -> store raw bytes, Parquet and profile encrypted -> record the
version as ``accepted`` or ``quarantined`` -> link lineage -> audit-log it.
Nothing is recorded until every step succeeded: an error leaves no version.

Example::

    result = datasets.ingest(actor, IngestRequest("credit", "loans", Path("batch.csv"),
                                                  source="bureau", declared_sha256=digest))
    if result.version.status is VersionStatus.QUARANTINED:
        print(result.report.render_text())
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.errors import Conflict, InputError, NotFound, PolicyDenied
from bastion.core.lineage.graph import LineageGraph, Node, NodeKind
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.data_security.checks.bias import bias_baseline
from bastion.data_security.checks.report import AuditReport, CheckResult
from bastion.data_security.contract.infer import InferenceOptions, infer_contract
from bastion.data_security.contract.model import DataContract
from bastion.data_security.ingest.audit import AuditInputs, audit_chunks, bias_spec
from bastion.data_security.ingest.policy import DatasetPolicy
from bastion.data_security.ingest.staging import parquet_chunks, stage_file
from bastion.data_security.poisoning import PoisoningReference, RecentWindow, verify_source
from bastion.data_security.ports import DatasetRepository
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _resource(project: str, dataset: str) -> str:
    return f"project/{project}/dataset/{dataset}"


class DatasetService:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        repo: DatasetRepository,
        lineage: LineageGraph,
        scratch: Path,
    ) -> None:
        self._access = access
        self._blobs = blobs
        self._repo = repo
        self._lineage = lineage
        self._scratch = scratch
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
        self._access.require_project(project)
        self._access.authorize(actor, "source.register", f"project/{project}/source/{name}")
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
        """Authorize and build a dataset record (not stored yet)."""
        check_dataset_name("dataset", name)
        self._access.require_project(project)
        self._access.authorize(actor, "dataset.create", _resource(project, name))
        policy = DatasetPolicy(positive_label=positive_label)
        return Dataset(
            project, name, label, tuple(sensitive), policy.to_json(),
            None, None, None, _now(), actor.name,
        )

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
        self._dataset(project, name)
        self._access.authorize(actor, "contract.edit", _resource(project, name))
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
        self._dataset(project, name)
        self._access.authorize(actor, "contract.edit", _resource(project, name))
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

    # -- ingestion ----------------------------------------------------------------------
    def ingest(
        self, actor: Actor, req: IngestRequest, progress: Progress | None = None
    ) -> IngestResult:
        tick = progress or (lambda _s: None)
        self._access.require_project(req.project)
        self._access.authorize(actor, "dataset.ingest", _resource(req.project, req.dataset))
        # A new dataset is stored only once its first batch was read and audited,
        # so a refused file leaves no empty dataset behind.
        ds = self._repo.dataset(req.project, req.dataset) or self._new_dataset(
            actor, req.project, req.dataset, req.label, req.sensitive, req.positive_label
        )
        self._check_request(ds, req)
        self._scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix="ingest-", dir=self._scratch))
        try:
            return self._ingest(actor, ds, req, work, tick)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _check_request(self, ds: Dataset, req: IngestRequest) -> None:
        if req.label and ds.label and req.label != ds.label:
            raise InputError(
                f"dataset {ds.name} has label column {ds.label!r}, not {req.label!r}",
                hint="omit --label or pass the dataset's label column",
            )
        if req.declared_sha256 is not None:
            text = req.declared_sha256.lower().removeprefix("sha256:")
            if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
                raise InputError("--sha256 must be 64 hex characters")

    def _ingest(
        self, actor: Actor, ds: Dataset, req: IngestRequest, work: Path, tick: Progress
    ) -> IngestResult:
        staged = work / "batch.parquet"
        tick("reading")
        profile, rows, schema_doc, fmt, raw_sha = stage_file(req.path, req.read_options, staged)
        pinned = load_reference(self._blobs, ds.reference_digest) if ds.reference_digest else None
        inputs = AuditInputs(
            policy=DatasetPolicy.from_json(ds.policy),
            lineage=self._lineage_check(ds, req, raw_sha, rows),
            label=ds.label,
            sensitive=ds.sensitive,
            contract=self._current_contract(ds),
            reference_profile=pinned.profile if pinned else None,
            poisoning_reference=pinned.poisoning if pinned else None,
            recent=load_recent(self._blobs, ds.recent_digest),
            bias_baseline=pinned.bias if pinned else None,
            history_rows=pinned.history_rows if pinned else (),
        )
        tick("auditing")
        report = audit_chunks(parquet_chunks(staged), inputs, total_rows=rows, progress=tick)
        tick("storing")
        if self._repo.dataset(ds.project, ds.name) is None and not self._repo.add_dataset(ds):
            raise Conflict(f"dataset {ds.name!r} was created concurrently; retry the ingest")
        raw = self._blobs.put_file(req.path)
        if raw.digest != raw_sha:
            raise Conflict(f"{req.path} changed while it was being ingested; retry")
        data = self._blobs.put_file(staged)
        prof = self._blobs.put_bytes(profile.to_bytes())
        accepted = [
            v
            for v in self._repo.versions(ds.project, ds.name)
            if v.status is VersionStatus.ACCEPTED
        ]
        contract = self._repo.contract(ds.project, ds.name)
        version = self._repo.add_version(
            DatasetVersion(
                id=uuid.uuid4().hex,
                project=ds.project,
                dataset=ds.name,
                version=0,
                status=VersionStatus.ACCEPTED if report.passed else VersionStatus.QUARANTINED,
                data_digest=data.digest,
                raw_digest=raw.digest,
                profile_digest=prof.digest,
                format=fmt,
                rows=rows,
                schema=json.dumps(schema_doc),
                report=json.dumps(report.to_dict(), sort_keys=True, allow_nan=False, default=str),
                source=req.source,
                declared_sha256=req.declared_sha256,
                parent_version=accepted[-1].version if accepted else None,
                contract_version=contract[0] if contract else None,
                created_at=_now(),
                created_by=actor.name,
            )
        )
        self._link(version, accepted[-1] if accepted else None)
        if version.status is VersionStatus.ACCEPTED:
            tick("updating the trusted reference")
            self._after_accept(actor, ds, version, staged, profile)
        self._access.record(
            actor,
            "dataset.ingested",
            _resource(ds.project, ds.name),
            Outcome.OK if version.status is VersionStatus.ACCEPTED else Outcome.FAILED,
            {
                "version": version.version,
                "status": version.status.value,
                "rows": rows,
                "blocking_failures": [c.name for c in report.blocking_failures],
            },
        )
        return IngestResult(version, report)

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

    def _current_contract(self, ds: Dataset) -> DataContract | None:
        found = self._repo.contract(ds.project, ds.name)
        return DataContract.from_json(found[1]) if found else None

    def _after_accept(
        self,
        actor: Actor,
        ds: Dataset,
        version: DatasetVersion,
        staged: Path,
        profile: DatasetProfile,
    ) -> None:
        if self._repo.contract(ds.project, ds.name) is None:
            # Inferred ranges are a guess from one sample: widen them by half the
            # observed width so heavy tails of real data do not break the contract;
            # a steward tightens them to business bounds with `data contract set`.
            contract = infer_contract(
                profile, version=1, options=InferenceOptions(range_margin=0.5)
            )
            self._repo.add_contract(ds.project, ds.name, contract.to_json(), _now(), "inferred")
        if ds.reference_digest is None:
            self._pin(ds, [version])
            return
        frame = pl.read_parquet(staged)
        recent = load_recent(self._blobs, ds.recent_digest) or RecentWindow.empty()
        self._repo.update_dataset(
            ds.project, ds.name, recent_digest=save_recent(self._blobs, recent.with_batch(frame))
        )

    def _pin(self, ds: Dataset, accepted: list[DatasetVersion]) -> PinnedReference:
        """Pin the trusted reference from the given accepted versions."""
        frames = [self._frame(v) for v in accepted]
        history = pl.concat(frames, how="vertical_relaxed")
        profile = profile_frame(history)
        poisoning = (
            PoisoningReference.build(history, label=ds.label)
            if ds.label and ds.label in history.columns
            else None
        )
        policy = DatasetPolicy.from_json(ds.policy)
        spec = bias_spec(policy, ds.label, ds.sensitive)
        bias = bias_baseline(history, spec, profile) if spec else None
        pinned = PinnedReference(
            accepted[-1].version, profile, poisoning, bias, tuple(v.rows for v in accepted)
        )
        self._repo.update_dataset(
            ds.project,
            ds.name,
            reference_digest=save_reference(self._blobs, pinned),
            reference_version=accepted[-1].version,
            recent_digest=None,
        )
        return pinned

    def repin(self, actor: Actor, project: str, name: str) -> int:
        """Re-pin the trusted reference on the whole accepted history (steward decision)."""
        ds = self._dataset(project, name)
        self._access.authorize(actor, "contract.edit", _resource(project, name))
        accepted = [
            v for v in self._repo.versions(project, name) if v.status is VersionStatus.ACCEPTED
        ]
        if not accepted:
            raise NotFound(f"dataset {name} has no accepted version to pin")
        pinned = self._pin(ds, accepted)
        self._access.record(
            actor,
            "reference.pinned",
            _resource(project, name),
            Outcome.OK,
            {"version": pinned.pinned_version},
        )
        return pinned.pinned_version

    def _link(self, v: DatasetVersion, parent: DatasetVersion | None) -> None:
        src = Node(NodeKind.SOURCE, f"{v.project}/{v.source}")
        raw = Node("raw_batch", f"{v.lineage_id}/raw", v.raw_digest)
        node = Node(NodeKind.DATASET_VERSION, v.lineage_id, v.data_digest)
        self._lineage.link(src, raw, "delivered")
        self._lineage.link(raw, node, "parsed")
        if parent is not None:
            self._lineage.link(
                Node(NodeKind.DATASET_VERSION, parent.lineage_id, parent.data_digest),
                node,
                "parent",
            )

    def _rehash(self, node: Node) -> str | None:
        if node.digest is None:
            return None
        h = hashlib.sha256()
        for chunk in self._blobs.iter_chunks(node.digest):
            h.update(chunk)
        return h.hexdigest()

    # -- reading data ------------------------------------------------------------------
    def _frame(self, v: DatasetVersion) -> pl.DataFrame:
        import io

        return pl.read_parquet(io.BytesIO(self._blobs.read_bytes(v.data_digest)))

    def read_frame(
        self, actor: Actor, project: str, ref: str, *, purpose: str = "read"
    ) -> tuple[DatasetVersion, pl.DataFrame]:
        """Rows of a version (the batch), or for ``purpose="training"`` the dataset
        as of that version (all accepted batches up to it). Accepted versions need
        dataset.read; quarantined or rejected ones only open to data stewards
        (dataset.review) and never for training."""
        r = DatasetRef.parse(ref)
        v = self._resolve(project, r)
        usable = v.status is VersionStatus.ACCEPTED
        action = "dataset.read" if usable else "dataset.review"
        self._access.authorize(
            actor,
            action,
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
        v = self._resolve(project, r)
        self._access.authorize(
            actor,
            "dataset.review",
            _resource(project, r.name),
            details={"version": v.version, "release": release},
        )
        if v.status is not VersionStatus.QUARANTINED:
            raise Conflict(f"{v.ref} is {v.status.value}, not quarantined")
        status = VersionStatus.ACCEPTED if release else VersionStatus.REJECTED
        self._repo.set_status(project, r.name, v.version, status, actor.name, _now(), reason)
        self._access.record(
            actor,
            "dataset.released" if release else "dataset.rejected",
            _resource(project, r.name),
            Outcome.OK,
            {"version": v.version, "reason": reason},
        )
        updated = self._resolve(project, r)
        if release:
            ds = self._dataset(project, r.name)
            frame = self._frame(updated)
            if ds.reference_digest is None:
                self._pin(ds, [updated])
            else:
                recent = load_recent(self._blobs, ds.recent_digest) or RecentWindow.empty()
                self._repo.update_dataset(
                    project,
                    r.name,
                    recent_digest=save_recent(self._blobs, recent.with_batch(frame)),
                )
        return updated


__all__ = ["DatasetNotUsable", "DatasetService", "IngestRequest", "IngestResult"]
