"""The composition root: wires adapters to services for one workspace.

A workspace is a folder::

    <home>/workspace.json   settings chosen at init (database URL)
    <home>/keyring.json     the keyring (0600)
    <home>/bastion.db       SQLite metadata (WAL) unless a PostgreSQL URL is used
    <home>/blobs/           content-addressed encrypted objects
    <home>/audit-head.json  the audit log's signed witness head (unless
                            BASTION_AUDIT_WITNESS / ``audit_witness`` puts it elsewhere)
    <home>/credentials      the CLI's API token (0600)
    <home>/tls/             self-signed certificate and key (``init --tls``)

Nothing here runs at import time; ``Bastion.open`` builds everything.

Example::

    ws, token = Bastion.init(Path("/tmp/ws"), MasterKeySource.from_passphrase("pw"))
    actor = ws.access.authenticate(token.secret)
    ws.objects.put(actor, "default", "hello.txt", Path("hello.txt"))
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from bastion.core.access.service import AccessService
from bastion.core.access.values import DEFAULT_PROJECT, Actor, IssuedToken
from bastion.core.audit.log import AuditLog
from bastion.core.audit.service import AuditTrail
from bastion.core.audit.witness import WitnessFile
from bastion.core.crypto.keyring import DEFAULT_SCRYPT_N, LocalKeyring, MasterKeySource
from bastion.core.crypto.ledger import SigningKeyLedger
from bastion.core.crypto.service import KeyService
from bastion.core.crypto.signers import KeyringSigner, KeyringVerifier
from bastion.core.errors import BastionError, ConfigurationError
from bastion.core.lineage.graph import LineageGraph
from bastion.core.lineage.service import LineageService
from bastion.core.store._adapters.local_folder import LocalFolderBackend
from bastion.core.store._adapters.sql.access_repo import SqlAccessRepository
from bastion.core.store._adapters.sql.audit_repo import SqlAuditRepository
from bastion.core.store._adapters.sql.engine import make_engine, migrate
from bastion.core.store._adapters.sql.lineage_repo import SqlLineageRepository
from bastion.core.store._adapters.sql.object_repo import SqlObjectIndex
from bastion.core.store._adapters.sql.references import digests_in, referenced_digests
from bastion.core.store.backup import (
    BackupCorrupted,
    BackupManifest,
    BackupSources,
    check_backup,
    check_signature,
    copy_backup,
    write_backup,
)
from bastion.core.store.blobs import EncryptedBlobStore, FsckReport
from bastion.core.store.objects import ObjectService
from bastion.core.store.scratch import Scratch

if TYPE_CHECKING:
    from bastion.data_security.access_report import AccessReports
    from bastion.data_security.erasure.service import Erasures
    from bastion.data_security.ports import DatasetLocks
    from bastion.data_security.service import DatasetService
    from bastion.governance.approvals import ApprovalService
    from bastion.governance.cards import CardService
    from bastion.governance.compliance import ComplianceService
    from bastion.governance.compliance_checks import CheckOutcome
    from bastion.governance.gate import GateService
    from bastion.governance.providers import ProviderLineageCheck, ProviderService
    from bastion.governance.release_sources import ReleaseSources
    from bastion.model_security._adapters.sql_repo import SqlModelRepository
    from bastion.model_security.lab import ModelLab
    from bastion.model_security.registry import ModelRegistry
    from bastion.model_security.values import ModelVersion
    from bastion.serving.alerts import AlertService
    from bastion.serving.canary import CanaryService
    from bastion.serving.delivery import Deliveries, DeliveryOptions, Poster
    from bastion.serving.deployments import DeploymentService
    from bastion.serving.monitor import DriftMonitor, MonitorOptions
    from bastion.serving.webhooks import TargetGuard


@dataclass(frozen=True)
class WorkspaceOptions:
    home: Path
    database_url: str
    checkpoint_every: int = 1024
    #: the audit witness file; ``None`` means ``<home>/audit-head.json``
    witness: Path | None = None

    @property
    def witness_path(self) -> Path:
        return self.witness if self.witness is not None else self.home / "audit-head.json"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _default_db(home: Path) -> str:
    return f"sqlite:///{home / 'bastion.db'}"


#: workspace.json says this for the embedded database, never its absolute path:
#: a copied, moved or restored workspace must use its own database, not the original's.
_EMBEDDED = {"database": "embedded"}


def _saved_database(home: Path, saved: dict[str, object]) -> str:
    if saved.get("database") == "embedded":
        return _default_db(home)
    url = saved.get("database_url")
    if not isinstance(url, str) or not url:
        raise ConfigurationError(
            f"{home / 'workspace.json'} names no database",
            hint='it must hold {"database": "embedded"} or {"database_url": "postgresql://..."}',
        )
    # Workspaces written before the "embedded" marker stored their SQLite path;
    # the embedded database is the one inside this folder, wherever it was made.
    legacy = url.startswith("sqlite:///") and url.endswith("/bastion.db")
    if legacy and (home / "bastion.db").exists():
        return _default_db(home)
    return url


def _witness_override(path: Path | None) -> Path | None:
    return path.expanduser().resolve() if path is not None else None


def _saved_witness(saved: dict[str, object]) -> Path | None:
    # The witness may live on another volume than the database (docs/operations.md);
    # the workspace records where, so every process checks the same file.
    value = saved.get("audit_witness")
    return Path(value) if isinstance(value, str) and value else None


def _use_restored_witness(home: Path) -> None:
    # A restored workspace checks the witness its backup holds, never the live
    # one the original pointed at: that one is ahead of the backup by design
    # (docs/operations.md, "What a restore from backup looks like").
    config = home / "workspace.json"
    saved = json.loads(config.read_text())
    if isinstance(saved, dict) and saved.pop("audit_witness", None) is not None:
        _write_private(config, json.dumps(saved, indent=2))


class Bastion:
    """One open workspace: services sharing a keyring, stores and the audit log."""

    def __init__(self, options: WorkspaceOptions, keyring: LocalKeyring, engine: Engine) -> None:
        self.options = options
        self.home = options.home
        self.keyring = keyring
        self.engine = engine
        self.blobs = EncryptedBlobStore(LocalFolderBackend(options.home / "blobs"), keyring)
        self.audit = AuditLog(
            SqlAuditRepository(engine),
            KeyringSigner(keyring, "audit"),
            KeyringVerifier(keyring, "audit"),
            WitnessFile(options.witness_path),
            checkpoint_every=options.checkpoint_every,
        )
        self.access = AccessService(SqlAccessRepository(engine), self.audit)
        self.scratch = Scratch(options.home / "tmp")
        #: set by an edge before first use of ``monitor`` (MonitorOptions.from_settings)
        self.monitor_options: MonitorOptions | None = None
        self._senders: list[Deliveries] = []  # alert_service's, stopped by close()
        self.objects = ObjectService(
            self.access,
            self.blobs,
            SqlObjectIndex(engine),
            references=self._referenced_blobs,
            busy_for=self.scratch.oldest_live_work,
        )
        self.keys = KeyService(self.access, keyring, self.blobs)
        #: the audit log as a principal reads, verifies and anchors it (authorized)
        self.audit_trail = AuditTrail(self.access, self.audit, keyring)
        self._graph = LineageGraph(SqlLineageRepository(engine))

    def _referenced_blobs(self) -> set[str]:
        """Digests the metadata names, followed into the small blobs they name.

        Some blobs are documents naming other blobs (a pinned reference names its
        profile and poisoning model), so references are closed transitively over
        every referenced blob up to 16 MiB; bulk data (Parquet, artifacts) is larger
        and names nothing."""
        found = referenced_digests(self.engine)
        todo = list(found)
        while todo:
            digest = todo.pop()
            try:
                if self.blobs.info(digest).size > 16 * 1024 * 1024:
                    continue
                inner = digests_in(self.blobs.read_bytes(digest)) - found
            except BastionError:
                continue  # missing or damaged: fsck reports it; it names nothing we can read
            found |= inner
            todo.extend(inner)
        return found

    # -- layer services, built on first use --------------------------------------
    # The data and model layers pull in polars, scikit-learn and friends; building
    # them lazily keeps identity, key and audit commands fast.
    @cached_property
    def datasets(self) -> DatasetService:
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.data_security.service import DatasetService

        return DatasetService(
            self.access,
            self.blobs,
            SqlDatasetRepository(self.engine),
            self._graph,
            self.scratch,
            self._dataset_locks,
            self.audit,
        )

    @cached_property
    def _dataset_locks(self) -> DatasetLocks:
        from bastion.data_security._adapters.locks import dataset_locks

        return dataset_locks(self.engine, self.home / "locks")

    def reconcile(self) -> None:
        """Recover from a crash before anything else runs: remove plaintext scratch
        folders of dead processes and roll forward half-finished (``pending``)
        dataset versions and model registrations, appending their audit records."""
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.data_security.ingest.commit import Outbox, append_once
        from bastion.model_security._adapters.sql_repo import SqlModelRepository

        self.scratch.sweep()
        Outbox(SqlDatasetRepository(self.engine), self.audit).reconcile(self._dataset_locks)
        models = SqlModelRepository(self.engine)
        for version_id, record in models.pending_registrations():
            append_once(self.audit, record)
            models.clear_pending(version_id)
        from bastion.data_security._adapters.sql_erasure_repo import SqlErasureRepository

        if SqlErasureRepository(self.engine).unfinished():
            self.erasures.recover()  # finish shredding and auditing a crashed erasure

    @cached_property
    def erasures(self) -> Erasures:
        """Erasure of a data subject (GDPR Art. 17): rewrite, crypto-shred, report."""
        from bastion.data_security._adapters.sql_erasure_repo import SqlErasureRepository
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.data_security.erasure.service import Erasures
        from bastion.data_security.ingest.pipeline import Ingestion

        repo = SqlDatasetRepository(self.engine)
        outbox = self.datasets.outbox
        ingestion = Ingestion(
            self.access, self.blobs, repo, self.scratch, self._dataset_locks, outbox
        )
        return Erasures(
            self.access, self.blobs, repo, SqlErasureRepository(self.engine), self.lineage,
            self._dataset_locks, outbox, ingestion, self.audit, self.keyring,
        )  # fmt: skip

    @cached_property
    def access_reports(self) -> AccessReports:
        from bastion.data_security.access_report import AccessReports

        return AccessReports(self.access, self.audit)

    @cached_property
    def _model_repo(self) -> SqlModelRepository:
        from bastion.model_security._adapters.sql_repo import SqlModelRepository

        return SqlModelRepository(self.engine)

    @cached_property
    def models(self) -> ModelRegistry:
        from bastion.model_security.registry import ModelRegistry

        return ModelRegistry(
            self.access,
            self.blobs,
            self._model_repo,
            self._graph,
            self.datasets,
            self.keyring,
            self.scratch,
            ledger=SigningKeyLedger(self.audit),
        )

    @cached_property
    def lab(self) -> ModelLab:
        from bastion.model_security.lab import ModelLab

        return ModelLab(
            self.access, self.blobs, self._model_repo, self._graph, self.datasets, self.models
        )

    @cached_property
    def deployments(self) -> DeploymentService:
        """Deploy, status, rollback and revocation of model versions behind endpoints;
        a deploy runs governance's release gate (``self.gate``) on the exact version."""
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.serving._adapters.sql_canary import SqlCanaryRepository
        from bastion.serving._adapters.sql_repo import SqlDeploymentRepository
        from bastion.serving.deployments import DeploymentService

        datasets = SqlDatasetRepository(self.engine)

        def contract(project: str, name: str) -> str | None:
            found = datasets.contract(project, name)
            return found[1] if found else None

        return DeploymentService(
            self.access, self.models, SqlDeploymentRepository(self.engine),
            self.gate, contract, SqlCanaryRepository(self.engine),
        )

    @cached_property
    def canaries(self) -> CanaryService:
        """Canary releases: the analysis and its one decision, and feedback labels."""
        from bastion.serving._adapters.sql_canary import SqlCanaryRepository
        from bastion.serving.canary import CanaryService

        return CanaryService(self.access, SqlCanaryRepository(self.engine))

    def revoke_signing_key(self, actor: Actor, key_id: str) -> list[str]:
        """Revoke a signing key, then re-verify every deployment in service at once: each
        version that no longer verifies is revoked in the database, and every gateway
        (every replica) stops serving it at its next refresh (about a second), not at its
        next periodic re-verification.  Returns the endpoints taken out of service."""
        self.keys.revoke_signing(actor, key_id)
        return [f"{d.project}/{d.endpoint} ({d.ref})"
                for d in self.deployments.enforce_revocations(actor)]

    @cached_property
    def alerts(self) -> AlertService:
        """Alerts of deployed models (one open per endpoint and kind) and their webhooks:
        signed deliveries from a durable outbox off the request path, targets SSRF-checked
        at registration and at every delivery.  Each webhook's secret is an HMAC under a
        keyring key of its id."""
        return self.alert_service()

    def alert_service(self, guard: TargetGuard | None = None, poster: Poster | None = None,
                      options: DeliveryOptions | None = None,
                      sender_class: type[Deliveries] | None = None) -> AlertService:
        """An alert service on this workspace; ``alerts`` is the one with the default
        guard (no private or loopback target), poster and options.  Every sender thread
        built here is stopped by ``close()``."""
        from bastion.serving._adapters.sql_alerts import SqlAlertOutbox, SqlAlertRepository
        from bastion.serving._adapters.webhook_http import HttpPoster
        from bastion.serving.alerts import AlertService, delivery_audit
        from bastion.serving.delivery import Deliveries, DeliveryOptions
        from bastion.serving.webhooks import TargetGuard

        guard = guard or TargetGuard()  # the loopback allowance exists for tests only
        sender = (sender_class or Deliveries)(
            poster or HttpPoster(), guard, SqlAlertOutbox(self.engine), self.webhook_secret,
            delivery_audit(self.access), options or DeliveryOptions())
        self._senders.append(sender)
        return AlertService(self.access, SqlAlertRepository(self.engine), self.webhook_secret,
                            sender, guard)

    def webhook_secret(self, webhook_id: str) -> bytes:
        return bytes.fromhex(self.keyring.keyed_digest("alert-webhook", webhook_id.encode()))

    @cached_property
    def monitor(self) -> DriftMonitor:
        """Drift monitors on live traffic (the gateway's encrypted samples) against the
        stored drift reference of each deployed model's training data."""
        from bastion.model_security.monitoring import DriftReference
        from bastion.serving._adapters.sql_alerts import SqlLiveWindows
        from bastion.serving._adapters.sql_repo import SqlDeploymentRepository
        from bastion.serving._adapters.sql_retention import SqlRetention
        from bastion.serving.live import LiveStore
        from bastion.serving.monitor import DriftMonitor
        from bastion.serving.values import Deployment

        def reference(actor: Actor | None, d: Deployment) -> tuple[str, DriftReference | None]:
            v = self._model_repo.version(d.project, d.model, d.version)
            lineage = v.trained_on[0].split("#")[0] if v is not None and v.trained_on else ""
            digest = self._model_repo.drift_reference(d.project, lineage) if lineage else None
            if digest is not None:
                return lineage, DriftReference.from_bytes(self.blobs.read_bytes(digest))
            if actor is None or not lineage:  # the gateway never reads training data
                return lineage, None
            return lineage, self.lab.drift_reference(actor, d.project, lineage.split("/", 1)[1])

        live = LiveStore(SqlLiveWindows(self.engine), lambda b: self.blobs.put_bytes(b).digest,
                         self.blobs.read_bytes, self.blobs.delete)
        return DriftMonitor(self.access, SqlDeploymentRepository(self.engine), live, reference,
                            self.alerts, self.monitor_options, SqlRetention(self.engine))

    @cached_property
    def cards(self) -> CardService:
        """Model cards: versioned, audited edits plus facts from signed evidence."""
        from bastion.governance._adapters.sql_repo import SqlCardRepository
        from bastion.governance.cards import CardService
        from bastion.governance.facts import Evidence

        evidence = Evidence(
            self._model_repo,
            self.blobs,
            self.lineage,
            self.models.trusted_keys,
            release=lambda v: self.gate.release_facts(v),
        )
        return CardService(self.access, SqlCardRepository(self.engine), evidence)

    @cached_property
    def providers(self) -> ProviderService:
        """The third-party register: providers, versioned assessments, lineage links."""
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.governance._adapters.sql_providers import SqlProviderRepository
        from bastion.governance.providers import LinkTargets, ProviderService

        sources = SqlDatasetRepository(self.engine)
        exists = lambda p, n: sources.source(p, n) is not None  # noqa: E731
        targets = LinkTargets(exists, self._model_repo.version)
        return ProviderService(
            self.access,
            SqlProviderRepository(self.engine),
            self.lineage,
            SqlLineageRepository(self.engine),
            targets,
        )

    @cached_property
    def provider_check(self) -> ProviderLineageCheck:
        """The gate's port: unassessed or expired providers in a model version's lineage."""
        from bastion.governance._adapters.sql_providers import SqlProviderRepository
        from bastion.governance.providers import ProviderLineageCheck

        return ProviderLineageCheck(SqlProviderRepository(self.engine), self.lineage)

    @cached_property
    def _release_sources(self) -> ReleaseSources:
        from bastion.governance._adapters.sql_release import (
            SqlIdentityDirectory,
            SqlReleaseRepository,
        )
        from bastion.governance._adapters.sql_repo import SqlCardRepository
        from bastion.governance.facts import Evidence
        from bastion.governance.release_sources import ReleaseSources

        evidence = Evidence(self._model_repo, self.blobs, self.lineage, self.models.trusted_keys)
        return ReleaseSources(
            self.access,
            SqlReleaseRepository(self.engine),
            SqlCardRepository(self.engine),
            evidence,
            self.audit,
            SqlIdentityDirectory(self.engine),
            self.provider_check,
            self.models.signing_key_pem,
            drift_alerts=lambda p, ids: [
                f"alert {a.id} open on endpoint {a.endpoint}"
                for a in self.alerts.open_drift_on(p, ids)],
        )

    @cached_property
    def gate(self) -> GateService:
        """The release gate (CEL policy over signed evidence), its policy versions and waivers."""
        from bastion.governance.gate import GateService

        def verify(actor: Actor, v: ModelVersion) -> str:
            signer = self.models.verify(actor, v.project, v.ref).signer
            return f"{signer.identity} ({signer.key_id})"

        return GateService(self._release_sources, verify)

    @cached_property
    def approvals(self) -> ApprovalService:
        """Committee approvals with separation of duties; promotion runs the gate."""
        from bastion.governance.approvals import ApprovalService

        return ApprovalService(self._release_sources, self.gate)

    def _erasure_finding(self, project: str) -> CheckOutcome:
        """The compliance check over this project's erasure records (GDPR Art. 17)."""
        from bastion.data_security._adapters.sql_erasure_repo import SqlErasureRepository
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.governance.compliance_model_checks import erasure_finding

        repo = SqlErasureRepository(self.engine)
        found = [
            e for d in SqlDatasetRepository(self.engine).datasets(project)
            for e in repo.erasures(project, d.name)
        ]  # fmt: skip
        return erasure_finding(
            [e for e in found if e.state == "done"], [e for e in found if e.state != "done"]
        )

    @cached_property
    def compliance(self) -> ComplianceService:
        """Compliance reports: catalogue controls answered by checks over this workspace."""
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.governance._adapters.sql_providers import SqlProviderRepository
        from bastion.governance._adapters.sql_repo import SqlCardRepository
        from bastion.governance.compliance import ComplianceService
        from bastion.governance.compliance_checks import ComplianceSources
        from bastion.governance.compliance_release import release_finding
        from bastion.governance.facts import Evidence

        sources = ComplianceSources(
            access=SqlAccessRepository(self.engine),
            keys=self.keyring,
            keyring_file=self.home / "keyring.json",
            blobs=self.blobs,
            audit=self.audit,
            lineage=self.lineage,
            datasets=SqlDatasetRepository(self.engine),
            models=self._model_repo,
            cards=SqlCardRepository(self.engine),
            providers=SqlProviderRepository(self.engine),
            provider_check=self.provider_check,
            evidence=Evidence(self._model_repo, self.blobs, self.lineage, self.models.trusted_keys),
            erasure=self._erasure_finding,
            tls_dir=self.home / "tls",
            approvals=release_finding(self._release_sources),
        )
        return ComplianceService(self.access, sources)

    @property
    def lineage(self) -> LineageGraph:
        """The provenance graph, with every node kind's verifier registered."""
        _ = (self.datasets, self.models)
        return self._bound_graph

    @property
    def provenance(self) -> LineageService:
        """The lineage graph as a principal shows, verifies and exports it (authorized)."""
        return LineageService(self.access, self.lineage)

    @cached_property
    def _bound_graph(self) -> LineageGraph:
        # Kinds without bytes to re-hash are checked against what binds them.
        from bastion.core.lineage.graph import NodeKind
        from bastion.data_security._adapters.sql_repo import SqlDatasetRepository
        from bastion.data_security.lineage_binders import source_binder
        from bastion.model_security.lineage_binders import blob_rehash, training_run_binder

        g = self._graph
        sources = SqlDatasetRepository(self.engine)
        g.register_binder(NodeKind.SOURCE, source_binder(sources, self.audit))
        g.register_binder(NodeKind.TRAINING_RUN, training_run_binder(self._model_repo, g))
        g.register_rehash(NodeKind.EVALUATION, blob_rehash(self.blobs))
        from bastion.governance._adapters.sql_providers import SqlProviderRepository
        from bastion.governance.lineage_binders import provider_binder

        register = SqlProviderRepository(self.engine)
        edges = SqlLineageRepository(self.engine)
        g.register_binder(NodeKind.PROVIDER, provider_binder(register, edges, self.audit))
        return g

    # -- life cycle -----------------------------------------------------------
    @classmethod
    def init(
        cls,
        home: Path,
        master: MasterKeySource,
        *,
        database_url: str | None = None,
        admin: str = "admin",
        scrypt_n: int = DEFAULT_SCRYPT_N,
        witness_path: Path | None = None,
    ) -> tuple[Bastion, IssuedToken]:
        home = home.expanduser().resolve()
        if (home / "workspace.json").exists():
            raise ConfigurationError(
                f"a Bastion workspace already exists at {home}",
                hint="use it (set BASTION_HOME), or choose an empty folder",
            )
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        url = database_url or _default_db(home)
        keyring = LocalKeyring.create(home / "keyring.json", master, scrypt_n=scrypt_n)
        engine = make_engine(url)
        migrate(engine)
        config: dict[str, str] = dict(_EMBEDDED) if database_url is None else {"database_url": url}
        witness = _witness_override(witness_path)
        if witness is not None:
            config["audit_witness"] = str(witness)
        _write_private(home / "workspace.json", json.dumps(config, indent=2))
        ws = cls(WorkspaceOptions(home, url, witness=witness), keyring, engine)
        principal, token = ws.access.bootstrap_admin(admin)
        ws.access.ensure_project(DEFAULT_PROJECT, principal.name)
        ws.audit.checkpoint()
        _write_private(home / "credentials", token.secret + "\n")
        return ws, token

    @classmethod
    def open(
        cls,
        home: Path,
        master: MasterKeySource,
        *,
        database_url: str | None = None,
        witness_path: Path | None = None,
    ) -> Bastion:
        home = home.expanduser().resolve()
        config = home / "workspace.json"
        if not config.exists():
            raise ConfigurationError(
                f"no Bastion workspace at {home}",
                hint="create one with `bastion init`, or set BASTION_HOME",
            )
        try:
            saved = json.loads(config.read_text())
        except ValueError as e:
            raise ConfigurationError(f"{config} is unreadable: {e}") from e
        if not isinstance(saved, dict):
            raise ConfigurationError(f"{config} is not a JSON object")
        url = database_url or _saved_database(home, saved)
        keyring = LocalKeyring.open(home / "keyring.json", master)
        engine = make_engine(url)
        migrate(engine)
        witness = _witness_override(witness_path) or _saved_witness(saved)
        ws = cls(WorkspaceOptions(home, url, witness=witness), keyring, engine)
        ws.reconcile()
        return ws

    # -- backup and restore ---------------------------------------------------
    def backup(self, actor: Actor, dest: Path) -> BackupManifest:
        """Write a consistent, signed snapshot of this workspace to the new folder ``dest``.

        Safe while other processes (a running server) keep writing; see
        :mod:`bastion.core.store.backup` for the order that makes it consistent.
        """
        self.access.authorize(actor, "workspace.backup", "system/workspace")
        embedded = self.options.database_url == _default_db(self.home)
        sources = BackupSources(
            home=self.home,
            keyring=self.home / "keyring.json",
            witness=self.options.witness_path,
            blobs=self.home / "blobs",
            sqlite_db=self.home / "bastion.db" if embedded else None,
            database_url=None if embedded else self.options.database_url,
        )
        signer = KeyringSigner(self.keyring, "audit")
        return write_backup(
            sources, dest.expanduser().resolve(), lambda body: (signer.key_id, signer.sign(body))
        )

    @classmethod
    def restore(cls, src: Path, dest: Path, master: MasterKeySource) -> tuple[Bastion, FsckReport]:
        """Check the backup at ``src``, copy it to the new folder ``dest``, and prove it.

        Every file is re-hashed against the manifest *before* anything is copied;
        after the copy the manifest signature, the audit log and every blob are
        verified. A restore that fails any check is removed again, so a damaged
        backup never becomes a workspace. A restore never writes over a workspace.
        """
        src, dest = src.expanduser().resolve(), dest.expanduser().resolve()
        manifest = check_backup(src)
        # The signature is checked with the backup's own keyring, unlocked by the
        # master key, before a single file is copied.
        keyring = LocalKeyring.open(src / "keyring.json", master)
        check_signature(src, KeyringVerifier(keyring, "audit").verify)
        copy_backup(src, dest, manifest)
        try:
            _use_restored_witness(dest)
            ws = cls.open(dest, master)
            try:
                ws.audit.require_intact()
                report = ws.blobs.fsck(deep=True)
                if not report.ok:
                    raise BackupCorrupted(
                        f"restored blobs fail verification: {len(report.corrupted)} corrupted"
                    )
            except BaseException:
                ws.close()
                raise
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return ws, report

    def stored_token(self) -> str | None:
        path = self.home / "credentials"
        try:
            return path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def close(self) -> None:
        try:
            for sender in self._senders:  # webhook sender threads, if they ran
                sender.stop()
            self.access.flush_failed_authentications()  # counts of repeated failures
        finally:
            self.scratch.close()
            self.engine.dispose()


__all__ = ["DEFAULT_PROJECT", "Bastion", "WorkspaceOptions"]
