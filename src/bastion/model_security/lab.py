"""Model-lab use cases: train from a spec, evaluate with signed evidence, monitor drift.

Every evaluation is stored twice: as a record and as an in-toto statement,
signed with the project's key, whose subjects are the model's root digest and
the dataset version's digest — so a release gate checks evidence, not flags.

Example::

    mv = lab.train(actor, "credit", "scorer", spec_yaml, "loans@2")
    ev = lab.evaluate(actor, "credit", "scorer@1", "loans@3", sensitive=("Age",))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import platform
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata, resources
from pathlib import Path

import polars as pl

from bastion import __version__
from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.lineage.graph import LineageGraph, Node, NodeKind
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.data_security.readers import open_table
from bastion.data_security.service import DatasetService
from bastion.model_security.evaluation import (
    RobustnessSuite,
    TabularConstraints,
    Task,
    evaluate,
)
from bastion.model_security.monitoring import (
    DriftPolicy,
    DriftReference,
    DriftReport,
    detect_drift,
    render_html,
)
from bastion.model_security.ports import ModelRepository
from bastion.model_security.registry import ModelRegistry, RegisterRequest
from bastion.model_security.signing import sign_statement
from bastion.model_security.training import parse_spec, save_model, train
from bastion.model_security.values import EvaluationRecord, Framework, ModelRef, ModelVersion

Progress = Callable[[str], None]
EVALUATION_PREDICATE = "https://bastion.dev/attestations/evaluation/v1"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def training_code_digest() -> str:
    """SHA-256 over the training code and library versions (the run's code identity)."""
    import sklearn

    h = hashlib.sha256(f"bastion {__version__}; scikit-learn {sklearn.__version__}\n".encode())
    pkg = resources.files("bastion.model_security.training")
    for name in sorted(p.name for p in pkg.iterdir() if p.name.endswith(".py")):
        h.update(name.encode() + b"\0" + pkg.joinpath(name).read_bytes())
    return h.hexdigest()


def training_environment() -> dict[str, object]:
    """The interpreter and the Python packages a training run used (for the ML-BOM)."""
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in packages:
            packages[name.lower()] = dist.version
    return {
        "python": platform.python_version(),
        "packages": [[n, v] for n, v in sorted(packages.items())],
    }


class ModelLab:
    def __init__(
        self,
        access: AccessService,
        blobs: EncryptedBlobStore,
        repo: ModelRepository,
        lineage: LineageGraph,
        datasets: DatasetService,
        registry: ModelRegistry,
    ) -> None:
        self._access = access
        self._blobs = blobs
        self._repo = repo
        self._lineage = lineage
        self._datasets = datasets
        self._registry = registry

    # -- training ----------------------------------------------------------------------
    def train(
        self,
        actor: Actor,
        project: str,
        name: str,
        spec_text: str,
        dataset_ref: str,
        *,
        spec_format: str = "yaml",
        progress: Progress | None = None,
    ) -> ModelVersion:
        tick = progress or (lambda _s: None)
        self._access.authorize(actor, "model.train", f"project/{project}/model/{name}")
        spec = parse_spec(spec_text, spec_format)
        dv = self._datasets.usable_version(actor, project, dataset_ref)
        _, frame = self._datasets.read_frame(actor, project, dv.ref, purpose="training")
        tick("training")
        trained = train(spec, frame)
        run = {
            "spec": json.loads(spec.model_dump_json()),
            "spec_digest": trained.spec_digest,
            "code_digest": training_code_digest(),
            "params": trained.params,
            "data": [{"dataset": dv.lineage_id, "sha256": dv.data_digest}],
            "holdout": trained.to_dict().get("holdout"),
            "features": [f.name for f in trained.features],
            "categorical": [f.name for f in trained.features if f.kind.value == "categorical"],
            "n_train": trained.n_train,
            "n_test": trained.n_test,
            "environment": training_environment(),
        }
        with self._registry.workdir() as work:
            save_model(trained.pipeline, work)
            tick("registering")
            return self._registry.register(
                actor,
                RegisterRequest(project, name, work, Framework.SKLEARN, (dv.ref,), run),
                progress=progress,
            )

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(
        self,
        actor: Actor,
        project: str,
        model_ref: str,
        dataset_ref: str,
        *,
        sensitive: Sequence[str] = (),
        immutable: Sequence[str] = (),
        suite: RobustnessSuite | None = None,
        progress: Progress | None = None,
    ) -> EvaluationRecord:
        tick = progress or (lambda _s: None)
        name = ModelRef.parse(model_ref).name
        self._access.authorize(actor, "model.evaluate", f"project/{project}/model/{name}")
        v = self._registry.version(actor, project, model_ref)
        dv = self._datasets.usable_version(actor, project, dataset_ref)
        _, frame = self._datasets.read_frame(actor, project, dv.ref, purpose="evaluation")
        tick("verifying and loading the model")
        v, model = self._registry.load_sklearn(actor, project, v.ref)
        run = json.loads(v.training_run) if v.training_run else {}
        spec = run.get("spec", {})
        label = spec.get("label") or self._datasets.dataset(actor, project, dv.dataset).label
        if not label:
            from bastion.core.errors import InputError

            raise InputError(
                f"cannot tell the label column of {dv.ref}", hint="ingest the dataset with --label"
            )
        features = run.get("features") or [c for c in frame.columns if c != label]
        integer = frozenset(
            c for c in features if c in frame.columns and frame.schema[c].is_integer()
        )
        constraints = TabularConstraints(immutable=frozenset(immutable), integer=integer)
        tick("evaluating (metrics, fairness, adversarial attacks)")
        result = evaluate(
            model,
            frame,
            label=label,
            task=Task(spec.get("task", "classification")),
            sensitive=tuple(sensitive),
            constraints=constraints,
            suite=suite or RobustnessSuite(),
            features=features,
            categorical=run.get("categorical", ()),
        )
        predicate = {
            "model": {"ref": v.lineage_id, "root_digest": v.root_digest},
            "dataset": {"ref": dv.lineage_id, "sha256": dv.data_digest},
            "result": result.to_dict(),
            "evaluated_at": _now(),
            "evaluator": f"bastion {__version__}",
        }
        key_id, pem = self._registry.signing_key_pem(project)
        statement = sign_statement(
            EVALUATION_PREDICATE,
            json.loads(json.dumps(predicate, default=str)),
            [
                (f"model:{v.lineage_id}", v.root_digest),
                (f"dataset:{dv.lineage_id}", dv.data_digest),
            ],
            pem,
        )
        stmt_digest = self._blobs.put_bytes(statement).digest
        record = EvaluationRecord(
            uuid.uuid4().hex,
            project,
            v.name,
            v.version,
            dv.lineage_id,
            dv.data_digest,
            json.dumps(result.to_dict(), default=str),
            stmt_digest,
            _now(),
            actor.name,
        )
        self._repo.add_evaluation(record)
        ev_node = Node(
            NodeKind.EVALUATION, f"{v.lineage_id}/evaluation/{record.id[:12]}", stmt_digest
        )
        self._lineage.link(
            Node(NodeKind.MODEL_VERSION, v.lineage_id, v.root_digest), ev_node, "evaluated"
        )
        self._lineage.link(
            Node(NodeKind.DATASET_VERSION, dv.lineage_id, dv.data_digest), ev_node, "evaluated_on"
        )
        self._access.record(
            actor,
            "model.evaluated",
            f"project/{project}/model/{v.name}",
            Outcome.OK,
            {
                "version": v.version,
                "dataset": dv.lineage_id,
                "statement": stmt_digest,
                "signer": key_id,
            },
        )
        return record

    def evaluations(self, actor: Actor, project: str, model_ref: str) -> list[EvaluationRecord]:
        v = self._registry.version(actor, project, model_ref)
        return list(self._repo.evaluations(project, v.name, v.version))

    def statement(self, actor: Actor, project: str, record: EvaluationRecord) -> bytes:
        self._access.authorize(actor, "model.read", f"project/{project}/model/{record.model}")
        return self._blobs.read_bytes(record.statement_digest)

    # -- monitoring ------------------------------------------------------------------------
    def drift_reference(self, actor: Actor, project: str, dataset_ref: str) -> DriftReference:
        """The drift reference of an accepted dataset version (computed once, stored)."""
        dv = self._datasets.usable_version(actor, project, dataset_ref)
        digest = self._repo.drift_reference(project, dv.lineage_id)
        if digest is not None:
            return DriftReference.from_bytes(self._blobs.read_bytes(digest))
        _, frame = self._datasets.read_frame(actor, project, dv.ref, purpose="monitoring")
        ds = self._datasets.dataset(actor, project, dv.dataset)
        columns = [c for c in frame.columns if c != ds.label]
        reference = DriftReference.from_frame(frame, columns)
        digest = self._blobs.put_bytes(reference.to_bytes()).digest
        self._repo.add_drift_reference(project, dv.lineage_id, digest, _now())
        return reference

    def drift(
        self,
        actor: Actor,
        project: str,
        dataset_ref: str,
        current: Path | pl.DataFrame,
        *,
        policy: DriftPolicy | None = None,
        html: Path | None = None,
    ) -> DriftReport:
        self._access.authorize(actor, "monitor.run", f"project/{project}/monitoring")
        reference = self.drift_reference(actor, project, dataset_ref)
        if isinstance(current, Path):
            with open_table(current) as reader:
                frames = list(reader.iter_batches(500_000))
            current_frame = pl.concat(frames) if frames else pl.DataFrame()
        else:
            current_frame = current
        cols = [c.name for c in reference.columns]
        report = detect_drift(
            reference,
            current_frame.select([c for c in cols if c in current_frame.columns]),
            policy=policy,
        )
        if html is not None:
            html.write_text(render_html(report, title=f"Drift vs {dataset_ref}"), encoding="utf-8")
        self._access.record(
            actor,
            "monitor.drift",
            f"project/{project}/monitoring",
            Outcome.OK,
            {"reference": dataset_ref, "verdict": str(report.verdict.value)},
        )
        return report


def load_frame_bytes(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


__all__ = [
    "EVALUATION_PREDICATE",
    "ModelLab",
    "training_code_digest",
    "training_environment",
]
