"""The facts of a model card: what Bastion knows and nobody may type in by hand.

- training data: the dataset versions the model version was registered with
  (``trained_on``, digests included) and the sources upstream of each in lineage;
- evaluations: read from their *signed statements*, each verified with the
  project's trusted keys and signer policy (``verify_statement``) and checked to
  speak of this model's root digest and the recorded dataset digest; an
  evaluation whose statement fails any check is listed as unverified, with the
  reason, and none of its numbers are used (the ``result`` column of the
  evaluations table is never read: a database edit cannot improve a card);
- signer and scan result, from the registration record;
- the training environment's Python packages, from the training-run record when
  it holds them, else the current environment (and the card says which).

Example::

    facts = gather_facts(version, evidence)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

from bastion.core.canonical import JSON
from bastion.core.errors import BastionError, NotFound
from bastion.core.lineage.graph import LineageGraph, Node, NodeKind, TreeNode
from bastion.core.store.blobs import EncryptedBlobStore
from bastion.governance.values import (
    CardFacts,
    EvaluationFact,
    Packages,
    ReleaseFact,
    TrainingData,
)
from bastion.model_security.lab import EVALUATION_PREDICATE
from bastion.model_security.ports import ModelRepository
from bastion.model_security.registry import signer_identity
from bastion.model_security.signing import AllowedIdentities, TrustedKey, verify_statement
from bastion.model_security.values import EvaluationRecord, ModelRef, ModelVersion

RUN_RECORD = "training-run-record"
CURRENT_ENVIRONMENT = "current-environment"


@dataclass(frozen=True)
class Evidence:
    """Where the facts come from (wired by the composition root)."""

    models: ModelRepository
    blobs: EncryptedBlobStore
    lineage: LineageGraph
    trusted_keys: Callable[[str], Sequence[TrustedKey]]
    #: approvals, rejections and waivers of a version (the release services), if wired
    release: Callable[[ModelVersion], tuple[ReleaseFact, ...]] | None = None


def resolve_version(models: ModelRepository, project: str, r: ModelRef) -> ModelVersion:
    """``r``'s version (the latest when it names none), or ``NotFound``."""
    if r.version is None:
        found = models.versions(project, r.name)
        if not found:
            raise NotFound(f"no model {r.name!r} in project {project}")
        return found[-1]
    v = models.version(project, r.name, r.version)
    if v is None:
        raise NotFound(f"model {r.name} has no version {r.version} in project {project}")
    return v


def gather_facts(v: ModelVersion, ev: Evidence) -> CardFacts:
    run = json.loads(v.training_run) if v.training_run else {}
    scan = json.loads(v.scan_report) if v.scan_report else {}
    spec = run.get("spec") if isinstance(run, dict) else None
    records = ev.models.evaluations(v.project, v.name, v.version)
    return CardFacts(
        model=v.ref,
        project=v.project,
        framework=v.framework.value,
        stage=v.stage.value,
        root_digest=v.root_digest,
        files=tuple((f.path, f.digest, f.size) for f in v.manifest),
        registered_by=v.created_by,
        registered_at=v.created_at,
        signer_key_id=v.signer_key_id,
        signer_identity=v.signer_identity,
        signed_at=v.signed_at,
        scan_verdict=str(scan.get("verdict", "unknown")),
        scan_findings=len(scan.get("findings", []) or []),
        task=str(spec.get("task", "classification")) if isinstance(spec, dict) else None,
        estimator=str(spec.get("estimator")) if isinstance(spec, dict) else None,
        training_data=tuple(_training_data(t, ev.lineage) for t in v.trained_on),
        evaluations=tuple(_evaluation(v, r, ev) for r in records),
        packages=_packages(run),
        release=ev.release(v) if ev.release is not None else (),
    )


def _training_data(entry: str, lineage: LineageGraph) -> TrainingData:
    lineage_id, _, digest = entry.partition("#")
    tree = lineage.upstream(Node(NodeKind.DATASET_VERSION, lineage_id, digest or None))
    return TrainingData(lineage_id, digest, tuple(sorted(set(_sources(tree)))))


def _sources(tree: TreeNode) -> list[str]:
    found = [tree.node.id] if tree.node.kind == NodeKind.SOURCE else []
    for child in tree.children:
        found += _sources(child)
    return found


def _evaluation(v: ModelVersion, r: EvaluationRecord, ev: Evidence) -> EvaluationFact:
    def refused(problem: str) -> EvaluationFact:
        return EvaluationFact(
            r.id, r.dataset_ref, r.dataset_digest, r.statement_digest, False, None, None, {},
            problem,
        )  # fmt: skip

    try:
        statement = verify_statement(
            ev.blobs.read_bytes(r.statement_digest),
            ev.trusted_keys(v.project),
            AllowedIdentities.of([signer_identity(v.project)]),
            predicate_type=EVALUATION_PREDICATE,
        )
    except BastionError as e:  # unreadable blob, bad signature, untrusted signer, wrong type
        return refused(f"{e.code}: {e.message}")
    subjects = {(s.name, s.sha256) for s in statement.subjects}
    if (f"model:{v.lineage_id}", v.root_digest) not in subjects:
        return refused("the signed statement does not name this model's root digest")
    if (f"dataset:{r.dataset_ref}", r.dataset_digest) not in subjects:
        return refused("the signed statement does not name the recorded dataset digest")
    result = statement.predicate.get("result")
    if not isinstance(result, dict):
        return refused("the signed statement carries no result")
    at = statement.predicate.get("evaluated_at")
    return EvaluationFact(
        r.id,
        r.dataset_ref,
        r.dataset_digest,
        r.statement_digest,
        True,
        f"{statement.signer.identity} ({statement.signer.key_id})",
        at if isinstance(at, str) else None,
        dict(result),
    )


def _packages(run: dict[str, JSON] | object) -> Packages:
    env = run.get("environment") if isinstance(run, dict) else None
    recorded = env.get("packages") if isinstance(env, dict) else None
    if isinstance(recorded, list) and recorded:
        items = tuple(
            (str(p[0]), str(p[1])) for p in recorded if isinstance(p, list) and len(p) == 2
        )
        return Packages(RUN_RECORD, tuple(sorted(items)))
    return Packages(CURRENT_ENVIRONMENT, installed_packages())


def installed_packages() -> tuple[tuple[str, str], ...]:
    """(name, version) of every distribution in this interpreter's environment, sorted."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = dist.version
    return tuple(sorted(seen.items()))


__all__ = [
    "CURRENT_ENVIRONMENT",
    "RUN_RECORD",
    "Evidence",
    "gather_facts",
    "installed_packages",
    "resolve_version",
]
