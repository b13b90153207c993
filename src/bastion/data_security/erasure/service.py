"""Erasure of a data subject (GDPR Art. 17), end to end.

``erase``: authorize ``dataset.erase`` on the requested name -> pseudonymize
the subject (HMAC under a keyring key: the identifier itself is never stored,
logged or reported) -> refuse, audited, a missing reason, a reason that holds
the identifier, an unknown column, a value no live version holds -> under the
dataset's lock: finish any erasure a crash interrupted -> rewrite every live
version that holds the subject's rows (new data, raw bytes and profile blobs;
quarantined batches stay quarantined, rejected ones are not rewritten) ->
rebuild the trusted reference and the recent window if they held those rows
-> list every model version downstream of the affected versions -> commit in
one transaction: the superseded versions become ``erased``, the new versions
are written ``pending`` with their audit records, the dataset state moves,
``erased_from`` lineage edges and the erasure record (state ``committed``)
-> finalize the new versions -> crypto-shred the data keys of every blob of
the superseded versions (unless the dataset's policy says ``retain``, or a
live version still names the same bytes) -> append the ``dataset.erased``
audit record -> state ``done``.

A crash before the commit changes nothing visible (only unreferenced blobs,
which ``store fsck`` reclaims); after it, the subject's rows are in no usable
version, and the rest (finalize, shred, audit) is rolled forward by
``Bastion.open`` or by the next ``erase``.  Re-running a finished erasure
changes nothing and returns its report.

Example::

    report = erasures.erase(actor, ErasureRequest.parse("credit", "loans",
                                                        "customer_id=C-1042", reason="DSR 77"))
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable

import polars as pl

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditRecord, Outcome
from bastion.core.audit.log import AuditLog
from bastion.core.canonical import JSON
from bastion.core.crashpoints import crash_point
from bastion.core.errors import BastionError, InputError, NotFound
from bastion.core.lineage.graph import Edge, LineageGraph, Node, NodeKind
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.data_security.erasure.ports import (
    ErasureCommit,
    ErasureRepository,
    StoredErasure,
    SubjectKeys,
)
from bastion.data_security.erasure.rewrite import (
    mentions,
    parquet_bytes,
    raw_bytes,
    scrub,
    subject_rows,
)
from bastion.data_security.erasure.values import (
    SUBJECT_KEY,
    BlobOutcome,
    ErasureReport,
    ErasureRequest,
    NoMatchingRows,
    UnknownColumn,
    VersionOutcome,
)
from bastion.data_security.ingest.commit import DatasetState, Outbox, append_once
from bastion.data_security.ingest.pipeline import Ingestion, now, resource
from bastion.data_security.ingest.policy import DatasetPolicy, ErasureMode, ErasurePolicy
from bastion.data_security.poisoning import RecentWindow
from bastion.data_security.ports import DatasetLocks, DatasetRepository
from bastion.data_security.profile.build import profile_frame
from bastion.data_security.reference import (
    load_recent,
    load_reference,
    reference_parts,
    save_recent,
    save_reference,
)
from bastion.data_security.values import Dataset, DatasetVersion, VersionStatus

Progress = Callable[[str], None]
_LIVE = (VersionStatus.ACCEPTED, VersionStatus.QUARANTINED, VersionStatus.REJECTED)


@dataclasses.dataclass(frozen=True)
class _Hit:
    version: DatasetVersion
    rest: pl.DataFrame
    removed: int


@dataclasses.dataclass
class _Plan:
    outcomes: list[VersionOutcome]
    erased: list[DatasetVersion]
    written: list[tuple[DatasetVersion, AuditRecord]]
    edges: list[Edge]
    blobs: dict[str, str]  # digest -> role (first role wins)
    derived: dict[str, str]
    state: DatasetState | None = None


class Erasures:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        repo: DatasetRepository,
        erasures: ErasureRepository,
        lineage: LineageGraph,
        locks: DatasetLocks,
        outbox: Outbox,
        ingestion: Ingestion,
        audit: AuditLog,
        keys: SubjectKeys,
    ) -> None:
        self._access = access
        self._blobs = blobs
        self._repo = repo
        self._erasures = erasures
        self._lineage = lineage
        self._locks = locks
        self._outbox = outbox
        self._ingestion = ingestion
        self._audit = audit
        self._keys = keys

    # -- the use case ------------------------------------------------------------------
    def erase(
        self, actor: Actor, req: ErasureRequest, progress: Progress | None = None
    ) -> ErasureReport:
        tick = progress or (lambda _s: None)
        res = resource(req.project, req.dataset)
        subject = self._keys.keyed_digest(SUBJECT_KEY, req.value.encode())
        details: dict[str, JSON] = {"subject": f"hmac-sha256:{subject}"}
        self._access.authorize(actor, "dataset.erase", res, details=details)
        try:
            return self._erase(actor, req, subject, tick)
        except (InputError, NotFound) as e:
            # Every refusal is on the log, by pseudonym; the message (which may
            # name the columns) stays with the caller.
            self._access.record(
                actor, "dataset.erase", res, Outcome.FAILED, {**details, "refused": e.code}
            )
            raise

    def _erase(
        self, actor: Actor, req: ErasureRequest, subject: str, tick: Progress
    ) -> ErasureReport:
        if len(req.reason.strip()) < 10:
            raise InputError(
                "an erasure needs a reason of at least 10 characters",
                hint="cite the request, e.g. --reason 'GDPR Art. 17 request DSR-2026-077'",
            )
        if mentions(req.reason, req.value):
            raise InputError(
                "the reason contains the subject's identifier; it would be kept in clear",
                hint="cite the request by its ticket number, not by the person's identifier",
            )
        with self._locks.hold(req.project, req.dataset):
            self._outbox.reconcile_locked(req.project, req.dataset)
            for unfinished in self._erasures.unfinished(req.project, req.dataset):
                self._complete(unfinished)
            ds = self._repo.dataset(req.project, req.dataset)
            if ds is None:
                raise NotFound(
                    f"no dataset {req.dataset!r} in project {req.project}",
                    hint="list them with `bastion data list`",
                )
            tick("searching every version for the subject's rows")
            hits = self._hits(ds, req)
            if not hits:
                return self._nothing_to_do(actor, req, subject)
            tick(f"rewriting {len(hits)} version(s) without the subject's rows")
            stored = self._commit(actor, req, ds, subject, hits, tick)
            crash_point("erasure.after_commit")
            tick("shredding the data keys of the superseded versions")
            return self._complete(stored)

    def _hits(self, ds: Dataset, req: ErasureRequest) -> list[_Hit]:
        live = [v for v in self._repo.versions(ds.project, ds.name) if v.status in _LIVE]
        columns = sorted({c["name"] for v in live for c in json.loads(v.schema)["columns"]})
        if req.column not in columns:
            raise UnknownColumn(
                f"dataset {ds.name} has no column {req.column!r}",
                hint=f"its columns: {', '.join(columns) or '(none: no live version)'}",
            )
        hits: list[_Hit] = []
        for v in live:
            frame = self._ingestion.frame(v)
            if req.column not in frame.columns:
                continue
            mask = subject_rows(frame, req.column, req.value)
            removed = int(mask.sum())
            if removed:
                hits.append(_Hit(v, frame.filter(~mask), removed))
        return hits

    def _nothing_to_do(self, actor: Actor, req: ErasureRequest, subject: str) -> ErasureReport:
        done = [
            e
            for e in self._erasures.erasures(req.project, req.dataset, subject)
            if e.column == req.column
        ]
        if not done:
            raise NoMatchingRows(
                f"no live version of {req.dataset} has a row with that value in {req.column!r}; "
                "nothing was changed",
                hint="values are compared as text, exactly as stored (check case and format)",
            )
        last = ErasureReport.from_json(done[-1].report)
        self._access.record(
            actor,
            "dataset.erased",
            resource(req.project, req.dataset),
            Outcome.OK,
            {"erasure": last.id, "subject": last.subject, "already_done": True},
        )
        return dataclasses.replace(last, already_done=True)

    # -- planning and the atomic commit ----------------------------------------------------
    def _commit(
        self,
        actor: Actor,
        req: ErasureRequest,
        ds: Dataset,
        subject: str,
        hits: list[_Hit],
        tick: Progress,
    ) -> StoredErasure:
        erasure_id = uuid.uuid4().hex
        at = now()
        policy = DatasetPolicy.from_json(ds.policy).erasure_policy()
        plan = self._rewrite(actor, ds, hits, erasure_id, at, policy, req.value)
        crash_point("erasure.after_blobs")
        tick("rebuilding the trusted reference and the recent window")
        self._derive(ds, req, hits, plan)
        models = self._affected_models(hits)
        state = "pending" if policy.mode is ErasureMode.SHRED else "retained"
        blobs = tuple((d, role, state) for d, role in plan.blobs.items())
        report = ErasureReport(
            id=erasure_id,
            project=ds.project,
            dataset=ds.name,
            subject=f"hmac-sha256:{subject}",
            column=req.column,
            reason=req.reason,
            mode=policy.mode.value,
            retain_reason=policy.reason,
            created_at=at,
            created_by=actor.name,
            state="committed",
            versions=tuple(plan.outcomes),
            blobs=tuple(BlobOutcome(*b) for b in blobs),
            derived=plan.derived,
            affected_models=models,
        )
        record = AuditRecord(
            actor.name,
            "dataset.erased",
            resource(ds.project, ds.name),
            Outcome.OK,
            actor.request_id,
            {
                "version_id": erasure_id,
                "erasure": erasure_id,
                "subject": report.subject,
                "column": req.column,
                "reason": req.reason,
                "policy": policy.mode.value,
                "versions": [[o.old, o.new] for o in plan.outcomes],
                "affected_models": list(models),
            },
        )
        stored = StoredErasure(
            erasure_id,
            ds.project,
            ds.name,
            subject,
            req.column,
            "committed",
            report.to_json(),
            record,
        )
        self._erasures.commit_erasure(
            ErasureCommit(
                stored,
                at,
                actor.name,
                req.reason,
                policy.mode.value,
                ds.generation,
                tuple(plan.erased),
                tuple(plan.written),
                plan.state,
                tuple(plan.edges),
                blobs,
            )
        )
        return stored

    def _rewrite(
        self,
        actor: Actor,
        ds: Dataset,
        hits: list[_Hit],
        erasure_id: str,
        at: str,
        policy: ErasurePolicy,
        value: str,
    ) -> _Plan:
        plan = _Plan([], [], [], [], {}, {})
        number = max(v.version for v in self._repo.versions(ds.project, ds.name))
        replaced: dict[int, int] = {}
        for hit in hits:
            v = hit.version
            for digest, what in (
                (v.data_digest, "data"),
                (v.raw_digest, "raw bytes"),
                (v.profile_digest, "profile"),
            ):
                plan.blobs.setdefault(digest, f"{v.ref} {what}")
            new: DatasetVersion | None = None
            if v.status is not VersionStatus.REJECTED and hit.rest.height:
                number += 1
                new = self._rewritten(actor, v, hit.rest, number, replaced, erasure_id, at)
                new = dataclasses.replace(new, report=scrub(v.report, value))
                replaced[v.version] = number
                plan.written.append((new, _written_record(actor, new, v, erasure_id)))
                plan.edges.extend(_erasure_edges(v, new, at))
            note = _note(v, new)
            plan.outcomes.append(
                VersionOutcome(
                    v.version,
                    v.status.value,
                    v.rows,
                    hit.removed,
                    new.version if new else None,
                    note,
                )
            )
            plan.erased.append(
                dataclasses.replace(
                    v,
                    status=VersionStatus.ERASED,
                    report=scrub(v.report, value),
                    reviewed_by=actor.name,
                    reviewed_at=at,
                    review_reason=_erased_reason(erasure_id, at, new, policy),
                )
            )
        return plan

    def _rewritten(
        self,
        actor: Actor,
        v: DatasetVersion,
        rest: pl.DataFrame,
        number: int,
        replaced: dict[int, int],
        erasure_id: str,
        at: str,
    ) -> DatasetVersion:
        data = self._blobs.put_bytes(parquet_bytes(rest))
        raw = self._blobs.put_bytes(raw_bytes(rest, v.format))
        prof = self._blobs.put_bytes(profile_frame(rest).to_bytes())
        parent = v.parent_version
        return dataclasses.replace(
            v,
            id=uuid.uuid4().hex,
            version=number,
            data_digest=data.digest,
            raw_digest=raw.digest,
            profile_digest=prof.digest,
            rows=rest.height,
            declared_sha256=None,  # the source's checksum was of bytes that no longer exist
            parent_version=replaced.get(parent, parent) if parent is not None else None,
            created_at=at,
            created_by=actor.name,
            review_reason=(
                f"rewritten from @{v.version} by erasure request {erasure_id}"
                + (f"; {v.review_reason}" if v.review_reason else "")
            )[:1000],
        )

    def _derive(self, ds: Dataset, req: ErasureRequest, hits: list[_Hit], plan: _Plan) -> None:
        """Rebuild the pin and the recent window if they held the subject's rows."""
        reference_digest, reference_version = ds.reference_digest, ds.reference_version
        recent_digest = ds.recent_digest
        if ds.reference_digest:
            pinned = load_reference(self._blobs, ds.reference_digest)
            members = set(pinned.versions) or {
                v.version
                for v in self._repo.versions(ds.project, ds.name)
                if v.status is VersionStatus.ACCEPTED and v.version <= pinned.pinned_version
            }
            hit_numbers = {h.version.version for h in hits}
            if members & hit_numbers:
                reference_digest, reference_version = self._repin(ds, members, plan)
                parts = reference_parts(self._blobs, ds.reference_digest)
                for d, what in zip(
                    (ds.reference_digest, *parts), ("bundle", "profile", "model"), strict=False
                ):
                    plan.blobs.setdefault(d, f"trusted reference {what} (superseded)")
            else:
                plan.derived["trusted reference"] = "unchanged (held none of the subject's rows)"
        recent = load_recent(self._blobs, ds.recent_digest)
        if recent is not None and req.column in recent.rows.columns:
            mask = subject_rows(recent.rows, req.column, req.value)
            if int(mask.sum()):
                window = RecentWindow(recent.rows.filter(~mask), recent.batches, recent.max_rows)
                recent_digest = save_recent(self._blobs, window)
                assert ds.recent_digest is not None
                plan.blobs.setdefault(ds.recent_digest, "recent window (superseded)")
                plan.derived["recent window"] = f"rewritten without {int(mask.sum())} row(s)"
        if (reference_digest, reference_version, recent_digest) != (
            ds.reference_digest,
            ds.reference_version,
            ds.recent_digest,
        ):
            plan.state = DatasetState(reference_digest, reference_version, recent_digest)

    def _repin(self, ds: Dataset, members: set[int], plan: _Plan) -> tuple[str | None, int | None]:
        swap = {int(str(rec.details["replaces"])): new for new, rec in plan.written}
        erased = {v.version for v in plan.erased}
        keep: list[DatasetVersion] = []
        for v in self._repo.versions(ds.project, ds.name):
            if v.version not in members or v.status is not VersionStatus.ACCEPTED:
                continue
            if v.version in swap:
                keep.append(swap[v.version])
            elif v.version not in erased:
                keep.append(v)
        if not keep:
            plan.derived["trusted reference"] = (
                "removed: every pinned row was the subject's; re-pin before the next ingest"
            )
            return None, None
        pinned = self._ingestion.build_reference(ds, keep)
        plan.derived["trusted reference"] = "rebuilt without the subject's rows over " + ", ".join(
            f"@{v.version}" for v in keep
        )
        return save_reference(self._blobs, pinned), pinned.pinned_version

    def _affected_models(self, hits: list[_Hit]) -> tuple[str, ...]:
        found: set[str] = set()
        for hit in hits:
            start = Node(NodeKind.DATASET_VERSION, hit.version.lineage_id)
            for n in self._lineage.descendants(start):
                if n.kind == NodeKind.MODEL_VERSION:
                    found.add(n.id)
        return tuple(sorted(found))

    # -- rolling forward: finalize, shred, audit ---------------------------------------------
    def _complete(self, e: StoredErasure) -> ErasureReport:
        self._outbox.reconcile_locked(e.project, e.dataset)
        crash_point("erasure.after_versions")
        live = self._live_digests()
        for digest, _role, state in self._erasures.blobs(e.id):
            if state != "pending":
                continue
            if digest in live:
                self._erasures.set_blob_state(e.id, digest, "shared", now())
                continue
            self._blobs.delete(digest)  # the wrapped data key goes first
            self._erasures.set_blob_state(e.id, digest, "shredded", now())
            crash_point("erasure.mid_shred")
        report = ErasureReport.from_json(e.report)
        final = dataclasses.replace(
            report,
            state="done",
            completed_at=now(),
            blobs=tuple(BlobOutcome(*b) for b in self._erasures.blobs(e.id)),
        )
        details = dict(e.audit.details)
        details.update(
            shredded=len(final.blobs_in("shredded")),
            retained=len(final.blobs_in("retained")),
            shared=len(final.blobs_in("shared")),
        )
        append_once(self._audit, dataclasses.replace(e.audit, details=details))
        crash_point("erasure.after_audit")
        self._erasures.finish(e.id, final.to_json(), final.completed_at or now())
        self._erasures.compact()
        return final

    def _live_digests(self) -> set[str]:
        live = self._erasures.live_digests()
        for ds_digest in list(live):
            try:
                live.update(reference_parts(self._blobs, ds_digest))
            except (BastionError, ValueError, KeyError, TypeError, AttributeError):
                continue  # not a pin's bundle (or unreadable): it names nothing
        return live

    def recover(self) -> int:
        """Finish erasures a crash interrupted (at open); skips datasets someone holds."""
        done = 0
        for e in self._erasures.unfinished():
            with self._locks.try_hold(e.project, e.dataset) as held:
                if held:
                    self._complete(e)
                    done += 1
        return done

    # -- reading -----------------------------------------------------------------------------
    def history(self, actor: Actor, project: str, dataset: str) -> list[ErasureReport]:
        """Every erasure of a dataset (pseudonymous reports)."""
        self._access.authorize(actor, "dataset.list", resource(project, dataset))
        return [
            ErasureReport.from_json(e.report) for e in self._erasures.erasures(project, dataset)
        ]


def _written_record(
    actor: Actor, new: DatasetVersion, old: DatasetVersion, erasure_id: str
) -> AuditRecord:
    return AuditRecord(
        actor.name,
        "dataset.rewritten",
        resource(new.project, new.dataset),
        Outcome.OK,
        actor.request_id,
        {
            "version": new.version,
            "version_id": new.id,
            "status": new.status.value,
            "rows": new.rows,
            "replaces": old.version,
            "erasure": erasure_id,
        },
    )


def _erasure_edges(old: DatasetVersion, new: DatasetVersion, at: str) -> list[Edge]:
    old_node = Node(NodeKind.DATASET_VERSION, old.lineage_id, old.data_digest)
    new_node = Node(NodeKind.DATASET_VERSION, new.lineage_id, new.data_digest)
    old_raw = Node("raw_batch", f"{old.lineage_id}/raw", old.raw_digest)
    new_raw = Node("raw_batch", f"{new.lineage_id}/raw", new.raw_digest)
    return [
        Edge(old_node, new_node, "erased_from", at),
        Edge(old_raw, new_raw, "erased_from", at),
        Edge(new_raw, new_node, "parsed", at),
    ]


def _note(v: DatasetVersion, new: DatasetVersion | None) -> str:
    if v.status is VersionStatus.REJECTED:
        return "rejected batch: superseded, not rewritten"
    if new is None:
        return "every row was the subject's: superseded, no replacement"
    if v.status is VersionStatus.QUARANTINED:
        return f"quarantined batch: rewritten as @{new.version}, still quarantined for review"
    return f"rewritten as @{new.version}"


def _erased_reason(
    erasure_id: str, at: str, new: DatasetVersion | None, policy: ErasurePolicy
) -> str:
    replaced = f"replaced by @{new.version}" if new else "not replaced"
    kept = (
        "its data keys are shredded"
        if policy.mode is ErasureMode.SHRED
        else f"its data is retained encrypted, never served (policy: {policy.reason})"
    )
    return f"erased by erasure request {erasure_id} on {at}; {replaced}; {kept}"[:1000]


__all__ = ["Erasures"]
