"""The model registry: scan, sign, store, verify-before-load, evaluate, train.

Register: snapshot the artifact into a private folder (so it cannot change
under us) -> scan it without executing anything (a refusal keeps the bytes
quarantined for forensics and raises ``MaliciousArtifact``) -> sign the
snapshot with the project's key (OpenSSF model-signing, Sigstore bundle) ->
store every file encrypted and content-addressed -> record the version
(stage ``draft``) bound in lineage to the accepted dataset versions it was
trained on.

Load: materialize the stored files into a private snapshot, verify the
signature, signer identity and every digest, re-scan, and only then
deserialize from the verified bytes through the restricted unpickler (the
same allow-list as the scanner, from the project's scan policy).  Any
mismatch raises ``SignatureInvalid``.

Example::

    mv = registry.register(actor, RegisterRequest("credit", "scorer", Path("model/"),
                           Framework.SKLEARN, trained_on=("loans@2",)))
    model = registry.load_sklearn(actor, "credit", "scorer@1")
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditRecord, Outcome
from bastion.core.canonical import JSON
from bastion.core.crashpoints import crash_point
from bastion.core.crypto.keyring import LocalKeyring
from bastion.core.crypto.ledger import SigningKeyLedger
from bastion.core.errors import InputError, NotFound, PolicyDenied
from bastion.core.lineage.graph import Edge, LineageGraph, Node, NodeKind
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.core.store.scratch import Scratch
from bastion.data_security.service import DatasetService
from bastion.model_security.errors import MaliciousArtifact
from bastion.model_security.ports import ModelRepository
from bastion.model_security.scan_policy import ScanPolicyService
from bastion.model_security.scanning import ScanReport, scan_path
from bastion.model_security.scanning.restricted import restricted_joblib_load
from bastion.model_security.signing import (
    AllowedIdentities,
    SignerIdentity,
    TrustedKey,
    VerifiedModel,
    sign_model,
    verify_model,
)
from bastion.model_security.signing.key_trust import trusted_keys
from bastion.model_security.values import (
    Framework,
    ManifestFile,
    ModelRef,
    ModelVersion,
    Stage,
)

Progress = Callable[[str], None]
_MAX_FILES = 10_000


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _resource(project: str, name: str) -> str:
    return f"project/{project}/model/{name}"


def _registered_details(v: ModelVersion, key_id: str, report: ScanReport) -> dict[str, JSON]:
    return {
        "version": v.version,
        "version_id": v.id,
        "root_digest": v.root_digest,
        "signer": key_id,
        "scan": report.verdict.value,
    }


def signing_purpose(project: str) -> str:
    return f"model-signing:{project}"


def signer_identity(project: str) -> str:
    return f"project:{project}/signer"


@dataclass(frozen=True)
class RegisterRequest:
    project: str
    name: str
    path: Path
    framework: Framework
    trained_on: tuple[str, ...] = ()
    training_run: dict[str, Any] | None = None


def snapshot_artifact(source: Path, dest: Path) -> None:
    """Copy a file or folder into ``dest`` refusing links, devices and traversal."""
    try:
        st = source.lstat()
    except FileNotFoundError:
        raise NotFound(f"model artifact {source} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{source} is a symbolic link", hint="register the real file or folder")
    dest.mkdir(parents=True, exist_ok=True)
    if stat.S_ISREG(st.st_mode):
        _copy_file(source, dest / source.name, st)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{source} is neither a file nor a folder")
    count = 0
    for root, dirs, files in os.walk(source, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(root) / name
            rel = path.relative_to(source)
            lst = path.lstat()
            if stat.S_ISLNK(lst.st_mode):
                raise MaliciousArtifact(
                    f"model folder contains a symbolic link: {rel}",
                    hint="links can point outside the model; ship real files",
                )
            if stat.S_ISDIR(lst.st_mode):
                (dest / rel).mkdir(parents=True, exist_ok=True)
            elif stat.S_ISREG(lst.st_mode):
                count += 1
                if count > _MAX_FILES:
                    raise InputError(f"model folder has more than {_MAX_FILES} files")
                _copy_file(path, dest / rel, lst)
            else:
                raise MaliciousArtifact(f"model folder contains a special file: {rel}")


def _copy_file(src: Path, dst: Path, st: os.stat_result) -> None:
    if st.st_nlink > 1:
        raise MaliciousArtifact(
            f"{src.name} is a hard link (link count {st.st_nlink})",
            hint="hard links can alias files outside the model; ship a plain copy",
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


class ModelRegistry:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        repo: ModelRepository,
        lineage: LineageGraph,
        datasets: DatasetService,
        keyring: LocalKeyring,
        scratch: Scratch,
        *,
        ledger: SigningKeyLedger,
    ) -> None:
        self._access = access
        self._ledger = ledger
        self._blobs = blobs
        self._repo = repo
        self._lineage = lineage
        self._datasets = datasets
        self._keyring = keyring
        self._scratch = scratch
        #: the project's scan policy: the scanner and the restricted loader both use it
        self.scan_policies = ScanPolicyService(access, repo)
        lineage.register_rehash(NodeKind.MODEL_VERSION, self._rehash)

    # -- helpers ------------------------------------------------------------------
    @contextmanager
    def workdir(self) -> Iterator[Path]:
        """A private scratch folder (0700) inside the workspace, removed afterwards
        (and by the next ``Bastion.open`` if this process dies: it holds plaintext)."""
        with self._scratch.workdir("model") as path:
            yield path

    def signing_key_pem(self, project: str) -> tuple[str, bytes]:
        """The project's active signing key (PEM, in memory only) and its id."""
        self._keyring.reload()  # another process (the CLI) may have revoked or rotated the key
        key_id, key = self._keyring.ecdsa_key(signing_purpose(project))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key_id, pem

    def trusted_keys(self, project: str) -> list[TrustedKey]:
        """The project's keys, revoked or rotated per the keyring *or* the audit log."""
        self._keyring.reload()  # a revocation by another process must take effect at once
        infos = self._keyring.signing_keys(signing_purpose(project))
        return trusted_keys(infos, self._ledger.events(), signer_identity(project))

    def _files(self, root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*") if p.is_file())

    # -- registration ---------------------------------------------------------------
    def register(
        self, actor: Actor, req: RegisterRequest, progress: Progress | None = None
    ) -> ModelVersion:
        tick = progress or (lambda _s: None)
        ModelRef.parse(req.name)
        self._access.authorize(actor, "model.register", _resource(req.project, req.name))
        self._access.require_project(req.project)
        trained = [self._datasets.usable_version(actor, req.project, ref) for ref in req.trained_on]
        with self.workdir() as work:
            snap = work / "artifact"
            tick("snapshot")
            snapshot_artifact(req.path, snap)
            tick("scanning")
            report = scan_path(snap, policy=self.scan_policies.policy(req.project))
            if not report.accepted:
                self._refuse(actor, req, snap, report)
            tick("signing")
            key_id, pem = self.signing_key_pem(req.project)
            signed_at = _now()
            bundle = sign_model(
                snap, pem, signer=SignerIdentity(key_id, signer_identity(req.project))
            )
            tick("storing")
            manifest = self._store_files(snap)
            bundle_digest = self._blobs.put_bytes(bundle.bundle).digest
            crash_point("model.after_blobs")
        version = self._repo.add_version(
            ModelVersion(
                id=uuid.uuid4().hex,
                project=req.project,
                name=req.name,
                version=0,
                framework=req.framework,
                stage=Stage.DRAFT,
                manifest=tuple(manifest),
                root_digest=bundle.root_digest,
                bundle_digest=bundle_digest,
                signer_key_id=key_id,
                signer_identity=signer_identity(req.project),
                signed_at=signed_at,
                scan_report=json.dumps(report.to_dict(), default=str),
                trained_on=tuple(f"{d.lineage_id}#{d.data_digest}" for d in trained),
                training_run=json.dumps(req.training_run, sort_keys=True, default=str)
                if req.training_run
                else None,
                created_at=_now(),
                created_by=actor.name,
            ),
            # lineage and the audit record commit with the version (the record is
            # appended next; the start-up reconcile appends it if we die first)
            edges=lambda v: self._edges(v, trained, req.training_run),
            audit=lambda v: AuditRecord(
                actor.name,
                "model.registered",
                _resource(req.project, req.name),
                Outcome.OK,
                actor.request_id,
                _registered_details(v, key_id, report),
            ),
        )
        crash_point("model.after_version_commit")
        self._access.record(
            actor,
            "model.registered",
            _resource(req.project, req.name),
            Outcome.OK,
            _registered_details(version, key_id, report),
        )
        crash_point("model.after_audit_append")
        self._repo.clear_pending(version.id)
        return version

    def _store_files(self, root: Path) -> list[ManifestFile]:
        out = []
        for path in self._files(root):
            info = self._blobs.put_file(path)
            out.append(ManifestFile(path.relative_to(root).as_posix(), info.digest, info.size))
        return out

    def _refuse(self, actor: Actor, req: RegisterRequest, snap: Path, report: ScanReport) -> None:
        """Keep the refused bytes encrypted for forensics, audit, and raise."""
        manifest = self._store_files(snap)
        self._repo.add_refused(
            uuid.uuid4().hex,
            req.project,
            req.name,
            json.dumps([m.__dict__ for m in manifest]),
            json.dumps(report.to_dict(), default=str),
            _now(),
            actor.name,
        )
        self._access.record(
            actor,
            "model.refused",
            _resource(req.project, req.name),
            Outcome.FAILED,
            {"findings": [f.code for f in report.findings][:20], "verdict": report.verdict.value},
        )
        raise MaliciousArtifact(
            f"model artifact {req.path.name} refused by the scanner "
            f"({report.verdict.value}): "
            + "; ".join(f"{f.code} at {f.location()}" for f in report.findings[:3]),
            hint="the bytes are quarantined (encrypted) for forensics; nothing was executed",
        )

    @staticmethod
    def _edges(
        v: ModelVersion, trained: Sequence[Any], run: dict[str, Any] | None
    ) -> list[Edge]:
        at = _now()
        node = Node(NodeKind.MODEL_VERSION, v.lineage_id, v.root_digest)
        inputs = [Node(NodeKind.DATASET_VERSION, d.lineage_id, d.data_digest) for d in trained]
        if run is None:
            return [Edge(d, node, "trained_on", at) for d in inputs]
        # Graph digests are bare hex (the column holds 64 characters; PostgreSQL enforces it).
        spec = str(run.get("spec_digest") or "").removeprefix("sha256:") or None
        run_node = Node(NodeKind.TRAINING_RUN, f"{v.lineage_id}/run", spec)
        inputs_edges = [Edge(d, run_node, "input", at) for d in inputs]
        return [*inputs_edges, Edge(run_node, node, "trained", at)]

    # -- reading ---------------------------------------------------------------------
    def versions(self, actor: Actor, project: str, name: str | None = None) -> list[ModelVersion]:
        self._access.authorize(actor, "model.read", f"project/{project}/models")
        return list(self._repo.versions(project, name))

    def version(self, actor: Actor, project: str, ref: str) -> ModelVersion:
        r = ModelRef.parse(ref)
        self._access.authorize(actor, "model.read", _resource(project, r.name))
        return self._resolve(project, r)

    def _resolve(self, project: str, r: ModelRef) -> ModelVersion:
        if r.version is not None:
            v = self._repo.version(project, r.name, r.version)
            if v is None:
                raise NotFound(f"model {r.name} has no version {r.version}")
            return v
        all_versions = self._repo.versions(project, r.name)
        if not all_versions:
            raise NotFound(
                f"no model {r.name!r} in project {project}",
                hint="register one: bastion model register NAME PATH ...",
            )
        return all_versions[-1]

    def _materialize(self, v: ModelVersion, dest: Path) -> Path:
        root = dest / "model"
        root.mkdir(parents=True)
        for f in v.manifest:
            target = root / f.path
            if not target.resolve().is_relative_to(root.resolve()):
                raise MaliciousArtifact(f"stored manifest path {f.path!r} escapes the model folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._blobs.copy_to(f.digest, target)
        return root

    def _verify_dir(self, v: ModelVersion, root: Path) -> VerifiedModel:
        bundle = self._blobs.read_bytes(v.bundle_digest)
        # The signing time is the one the audit log recorded for this registration
        # (not the table's column), so a rotated key's new signature cannot pass
        # as an old one.
        signed_at = self._ledger.signed_at(
            "model.registered", _resource(v.project, v.name), v.root_digest, v.signer_key_id
        )
        return verify_model(
            root,
            bundle,
            trusted_keys=self.trusted_keys(v.project),
            policy=AllowedIdentities.of([signer_identity(v.project)]),
            signed_at=signed_at,
        )

    def verify(
        self, actor: Actor, project: str, ref: str, path: Path | None = None
    ) -> VerifiedModel:
        """Verify the stored version, or an external copy at ``path``, against its signature."""
        r = ModelRef.parse(ref)
        self._access.authorize(actor, "model.verify", _resource(project, r.name))
        v = self._resolve(project, r)
        if path is not None:
            verified = self._verify_dir(v, path)
        else:
            with self.workdir() as work:
                verified = self._verify_dir(v, self._materialize(v, work))
        self._access.record(
            actor,
            "model.verified",
            _resource(project, r.name),
            Outcome.OK,
            {"version": v.version, "root_digest": verified.root_digest},
        )
        return verified

    @contextmanager
    def checkout(self, actor: Actor, project: str, ref: str) -> Iterator[tuple[ModelVersion, Path]]:
        """A verified, re-scanned private copy of a model version (deleted afterwards)."""
        r = ModelRef.parse(ref)
        self._access.authorize(actor, "model.load", _resource(project, r.name))
        with self.verified_checkout(project, ref) as found:
            yield found

    @contextmanager
    def verified_checkout(self, project: str, ref: str) -> Iterator[tuple[ModelVersion, Path]]:
        """``checkout`` without the permission check, for a caller that authorized already
        (the serving layer: a deploy is authorized as ``deployment.create``, and the
        gateway reloads what was deployed). Same materialize, verify and re-scan."""
        v = self._resolve(project, ModelRef.parse(ref))
        with self.workdir() as work:
            root = self._materialize(v, work)
            self._verify_dir(v, root)
            report = scan_path(root, policy=self.scan_policies.policy(project))
            if not report.accepted:
                raise MaliciousArtifact(
                    f"{v.ref} failed the load-time scan: {report.render()[:300]}"
                )
            yield v, root

    def load_sklearn(self, actor: Actor, project: str, ref: str) -> tuple[ModelVersion, Any]:
        """Deserialize a verified scikit-learn model from verified bytes only.

        Defence in depth: the bytes passed the scan, and are still unpickled by the
        restricted loader, which enforces the same allow-list in ``find_class``.
        """
        with self.checkout(actor, project, ref) as (v, root):
            if v.framework not in (Framework.SKLEARN, Framework.XGBOOST, Framework.LIGHTGBM):
                raise InputError(f"{v.ref} is a {v.framework.value} model, not a pickled estimator")
            files = [f for f in v.manifest if f.path.endswith((".joblib", ".pkl"))]
            if len(files) != 1:
                raise InputError(f"{v.ref} has {len(files)} joblib/pickle files; expected one")
            # Read, then check the bytes against the verified digest before unpickling.
            data = (root / files[0].path).read_bytes()
            import hashlib

            if hashlib.sha256(data).hexdigest() != files[0].digest:
                raise MaliciousArtifact(f"{files[0].path} changed between verification and load")
            model = restricted_joblib_load(io.BytesIO(data), self.scan_policies.policy(project))
        self._access.record(
            actor, "model.loaded", _resource(project, v.name), Outcome.OK, {"version": v.version}
        )
        return v, model

    def _rehash(self, node: Node) -> str | None:
        project, _, rest = node.id.partition("/")
        r = ModelRef.parse(rest)
        v = self._resolve(project, r)
        with self.workdir() as work:
            return self._verify_dir(v, self._materialize(v, work)).root_digest

    def set_stage(self, actor: Actor, project: str, ref: str, stage: Stage) -> ModelVersion:
        r = ModelRef.parse(ref)
        self._access.authorize(
            actor, "model.approve", _resource(project, r.name), details={"stage": stage.value}
        )
        if stage is Stage.APPROVED:
            # Approval is the committee's (separation of duties, signed statements, the
            # release gate): no direct stage change may stand in for it.
            raise PolicyDenied(
                f"{r.name} cannot be set to approved directly",
                hint="reviewers approve it: bastion model approve MODEL@V --reason ...",
            )
        v = self._resolve(project, r)
        self._repo.set_stage(project, v.name, v.version, stage.value)
        return self._resolve(project, ModelRef(v.name, v.version))

    def refused(self, actor: Actor, project: str) -> list[dict[str, str]]:
        self._access.authorize(actor, "model.read", f"project/{project}/models")
        return list(self._repo.refused(project))


__all__ = [
    "ModelRegistry",
    "RegisterRequest",
    "signer_identity",
    "signing_purpose",
    "snapshot_artifact",
]
