"""Value types of the governance layer: card versions and the assembled card."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.canonical import JSON
from bastion.governance.card_spec import CardSpec


@dataclass(frozen=True)
class CardVersion:
    """One stored edit of a model version's card (edits never overwrite)."""

    id: str
    project: str
    model: str
    version: int
    card_version: int
    spec: CardSpec
    spec_sha256: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class TrainingData:
    """A dataset version the model was trained on, with its digest and upstream sources."""

    dataset_version: str  # lineage id "project/dataset@v"
    sha256: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationFact:
    """An evaluation as its signed statement says it, or why it could not be used.

    ``verified`` is False when the statement failed verification: then ``result``
    is empty and ``problem`` says why — nothing unverified reaches a card.
    """

    evaluation_id: str
    dataset_version: str
    dataset_sha256: str
    statement_sha256: str
    verified: bool
    signer: str | None
    evaluated_at: str | None
    result: dict[str, JSON]
    problem: str | None = None


@dataclass(frozen=True)
class Packages:
    """The Python packages of the training environment and where the list came from."""

    source: str  # "training-run-record" | "current-environment"
    items: tuple[tuple[str, str], ...]  # (name, version)


@dataclass(frozen=True)
class ReleaseFact:
    """An approval, rejection or gate waiver as its signed statement says it, checked."""

    kind: str  # "approve" | "reject" | "waiver"
    by: str
    at: str
    expires_at: str
    subject: str  # "card version N" for decisions, the rule for a waiver
    reason: str
    statement_sha256: str
    valid: bool  # verified, current, unexpired (a waiver: and not granted by the author)
    note: str | None = None


@dataclass(frozen=True)
class CardFacts:
    """What Bastion knows about a model version; nobody may type these in."""

    model: str  # "name@v"
    project: str
    framework: str
    stage: str
    root_digest: str
    files: tuple[tuple[str, str, int], ...]  # (path, sha256, size)
    registered_by: str
    registered_at: str
    signer_key_id: str
    signer_identity: str
    signed_at: str
    scan_verdict: str
    scan_findings: int
    task: str | None
    estimator: str | None
    training_data: tuple[TrainingData, ...]
    evaluations: tuple[EvaluationFact, ...]
    packages: Packages
    #: approvals, rejections and waivers (empty when no release reader is wired)
    release: tuple[ReleaseFact, ...] = ()


@dataclass(frozen=True)
class ModelCard:
    """The card as shown: the hand-written spec (if any) plus the facts."""

    facts: CardFacts
    card: CardVersion | None

    def to_dict(self) -> dict[str, JSON]:
        f = self.facts
        spec = self.card.spec if self.card else None
        return {
            "model": f.model,
            "project": f.project,
            "card_version": self.card.card_version if self.card else None,
            "card_sha256": self.card.spec_sha256 if self.card else None,
            "edited_by": self.card.created_by if self.card else None,
            "edited_at": self.card.created_at if self.card else None,
            "intended_use": spec.intended_use if spec else None,
            "out_of_scope_uses": list(spec.out_of_scope_uses) if spec else [],
            "owners": list(spec.owners) if spec else [],
            "risk_tier": spec.risk_tier.value if spec else None,
            "limitations": list(spec.limitations) if spec else [],
            "facts": {
                "framework": f.framework,
                "stage": f.stage,
                "root_digest": f.root_digest,
                "files": [{"path": p, "sha256": d, "size": s} for p, d, s in f.files],
                "registered_by": f.registered_by,
                "registered_at": f.registered_at,
                "signer": {
                    "key_id": f.signer_key_id,
                    "identity": f.signer_identity,
                    "signed_at": f.signed_at,
                },
                "scan": {"verdict": f.scan_verdict, "findings": f.scan_findings},
                "task": f.task,
                "estimator": f.estimator,
                "training_data": [
                    {
                        "dataset_version": t.dataset_version,
                        "sha256": t.sha256,
                        "sources": list(t.sources),
                    }
                    for t in f.training_data
                ],
                "evaluations": [
                    {
                        "id": e.evaluation_id,
                        "dataset_version": e.dataset_version,
                        "dataset_sha256": e.dataset_sha256,
                        "statement_sha256": e.statement_sha256,
                        "verified": e.verified,
                        "signer": e.signer,
                        "evaluated_at": e.evaluated_at,
                        "result": e.result,
                        "problem": e.problem,
                    }
                    for e in f.evaluations
                ],
                "packages_source": f.packages.source,
                "approvals": [_release(r) for r in f.release if r.kind != "waiver"],
                "waivers": [_release(r) for r in f.release if r.kind == "waiver"],
            },
        }


def _release(r: ReleaseFact) -> dict[str, JSON]:
    return {
        "kind": r.kind,
        "by": r.by,
        "at": r.at,
        "expires_at": r.expires_at,
        "subject": r.subject,
        "reason": r.reason,
        "statement_sha256": r.statement_sha256,
        "valid": r.valid,
        "note": r.note,
    }


__all__ = [
    "CardFacts",
    "CardVersion",
    "EvaluationFact",
    "ModelCard",
    "Packages",
    "ReleaseFact",
    "TrainingData",
]
