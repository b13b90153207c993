"""Values of the release process: policy versions, approvals, waivers, gate results.

Each approval and waiver is a record *and* a signed in-toto statement; the
record says where to find the statement (``statement_digest``), the statement
is what a gate believes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bastion.core.canonical import JSON


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class PolicyVersion:
    """One stored version of a project's release policy (the YAML as written)."""

    id: str
    project: str
    version: int  # 0: the built-in default, never stored
    document: str
    sha256: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class ApprovalRecord:
    """An approval or rejection as stored; the signed statement is the evidence."""

    id: str
    project: str
    model: str
    version: int
    decision: Decision
    principal: str  # who acted (a user or a service account)
    human: str  # the person behind it (a service account's owner)
    token_id: str | None
    reason: str
    root_digest: str
    card_version: int
    card_sha256: str
    nonce: str
    statement_digest: str
    created_at: str
    expires_at: str


@dataclass(frozen=True)
class ApprovalView:
    """An approval as ``bastion model approvals`` shows it: the record, checked."""

    record: ApprovalRecord
    signature_verified: bool
    counts: bool  # verified, current digest and card, unexpired, first of its person
    problem: str | None

    def to_dict(self) -> dict[str, JSON]:
        r = self.record
        return {
            "id": r.id,
            "decision": r.decision.value,
            "principal": r.principal,
            "human": r.human,
            "at": r.created_at,
            "expires_at": r.expires_at,
            "reason": r.reason,
            "root_digest": r.root_digest,
            "card_version": r.card_version,
            "card_sha256": r.card_sha256,
            "statement_sha256": r.statement_digest,
            "signature_verified": self.signature_verified,
            "counts": self.counts,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class Waiver:
    """A named waiver of one gate rule for one model version."""

    id: str
    project: str
    model: str
    version: int
    rule: str
    reason: str
    granted_by: str
    granted_at: str
    expires_at: str
    statement_digest: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "model": f"{self.model}@{self.version}",
            "rule": self.rule,
            "reason": self.reason,
            "granted_by": self.granted_by,
            "granted_at": self.granted_at,
            "expires_at": self.expires_at,
            "statement_sha256": self.statement_digest,
        }


class Outcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    WAIVED = "waived"  # failed, and a valid waiver covers it


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    expression: str
    description: str
    outcome: Outcome
    evidence: tuple[str, ...]  # "audit#123", "sha256:…", "approval:…"
    detail: str  # the facts the rule read, or why it could not be evaluated
    waiver: str | None = None  # waiver id when waived

    def to_dict(self) -> dict[str, JSON]:
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "description": self.description,
            "expression": self.expression,
            "evidence": list(self.evidence),
            "detail": self.detail,
            "waiver": self.waiver,
        }


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one model version under one policy version."""

    project: str
    model: str  # "name@v"
    root_digest: str
    policy_version: int
    policy_sha256: str
    rules: tuple[RuleOutcome, ...]
    checked_at: str
    outcomes_sha256: str  # sha256 of the canonical rule outcomes (audited)
    audit_seq: int | None = None

    @property
    def passed(self) -> bool:
        return all(r.outcome is not Outcome.FAIL for r in self.rules)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.rules if r.outcome is Outcome.FAIL)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "project": self.project,
            "model": self.model,
            "root_digest": self.root_digest,
            "passed": self.passed,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "checked_at": self.checked_at,
            "outcomes_sha256": self.outcomes_sha256,
            "audit_seq": self.audit_seq,
            "rules": [r.to_dict() for r in self.rules],
        }


@dataclass(frozen=True)
class ApprovalResult:
    """What an approval did: the stored record and, if it completed the quorum, the gate."""

    approval: ApprovalRecord
    counted: int
    required: int
    gate: GateResult | None
    stage: str


__all__ = [
    "ApprovalRecord",
    "ApprovalResult",
    "ApprovalView",
    "Decision",
    "GateResult",
    "Outcome",
    "PolicyVersion",
    "RuleOutcome",
    "Waiver",
]
