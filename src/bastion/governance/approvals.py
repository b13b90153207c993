"""Committee approvals with separation of duties.

A model version moves to ``approved`` when as many distinct reviewers as its
risk tier requires (the project's release policy, :mod:`bastion.governance.gate_policy`)
have approved *the current artifact digest and card version* and the release
gate passes.  Each approval or rejection is an in-toto statement signed with
the project key (``APPROVAL_PREDICATE``) that binds the model's root digest,
the card version and its sha256, and the evidence the reviewer saw (evaluation
statements, training data digests, the signature bundle).

Refused, audited (``model.approval_refused``) and nothing stored: a model with
no card; an unacceptable risk tier; a digest or card version other than the
current one; the author (who registered or trained it) or anyone who released
one of its training batches from quarantine, counting the humans behind service
accounts and tokens; a second approval by the same person; a reused nonce.
A non-reviewer is refused by ``authorize`` (``model.approve``).

Counting (:class:`ApprovalLedger`) reads the signed statements, never the
table's columns: an approval counts when its signature verifies with the
project's trusted keys, it speaks of the current digest and card, it has not
expired, its nonce and its person are not already counted, and its person is
not the author or a releaser.

Example::

    res = approvals.approve(actor, "credit", "scorer@3", reason="reviewed eval and card",
                            expected_root_digest=shown.root_digest, expected_card_version=2)
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError, InputError
from bastion.governance.card_spec import RiskTier
from bastion.governance.errors import ApprovalRefused, GateFailed
from bastion.governance.facts import resolve_version
from bastion.governance.gate_policy import ReleasePolicy
from bastion.governance.release_sources import (
    Duties,
    ReleaseSources,
    active_policy,
    iso,
    model_resource,
)
from bastion.governance.release_values import (
    ApprovalRecord,
    ApprovalResult,
    ApprovalView,
    Decision,
    GateResult,
)
from bastion.governance.values import CardVersion
from bastion.model_security.registry import signer_identity
from bastion.model_security.signing import AllowedIdentities, sign_statement, verify_statement
from bastion.model_security.values import ModelRef, ModelVersion, Stage

if TYPE_CHECKING:
    from bastion.governance.gate import GateService

APPROVAL_PREDICATE = "https://bastion.dev/attestations/approval/v1"
MIN_REASON = 10
_NONCE_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-_")


@dataclass(frozen=True)
class Tally:
    views: tuple[ApprovalView, ...]
    valid: int
    expired: int
    rejections: int
    required: int

    @property
    def approvers(self) -> list[str]:
        return [
            v.record.human for v in self.views if v.counts and v.record.decision is Decision.APPROVE
        ]


class ApprovalLedger:
    """Reads and checks stored approvals (no authorization: callers authorize)."""

    def __init__(self, sources: ReleaseSources) -> None:
        self._s = sources
        self._duties = Duties(sources)

    def current_card(self, v: ModelVersion) -> CardVersion | None:
        history = self._s.cards.cards(v.project, v.name, v.version)
        return history[-1] if history else None

    def tally(self, v: ModelVersion, policy: ReleasePolicy) -> Tally:
        card = self.current_card(v)
        now = self._s.now()
        tier = card.spec.risk_tier.value if card else None
        required = policy.required.get(tier, 0) if tier else 0
        authors = [*self._duties.authors(v), *self._duties.releasers(v)]
        seen_nonces: set[str] = set()
        seen_humans: set[str] = set()
        views: list[ApprovalView] = []
        valid = expired = rejections = 0
        for r in self._s.repo.approvals(v.project, v.name, v.version):
            signed, why = self._signed(v, r)
            if signed is None:
                views.append(ApprovalView(r, False, False, why))
                continue
            listed = signed.get("humans")
            humans = frozenset(str(h) for h in listed) if isinstance(listed, list) else frozenset()
            problem: str | None = None
            if signed.get("nonce") in seen_nonces:
                problem = "replay: this nonce was already counted"
            elif card is None or signed.get("card_sha256") != card.spec_sha256:
                problem = "for another card version than the current one"
            elif signed.get("root_digest") != v.root_digest:
                problem = "for another artifact digest than the current one"
            elif dt.datetime.fromisoformat(str(signed.get("expires_at"))) <= now:
                problem, expired = "expired", expired + 1
            elif any(p.humans & humans for p in authors):
                problem = "by the author or a releaser of its training data"
            elif r.decision is Decision.APPROVE and humans & seen_humans:
                problem = "a second approval by the same person"
            seen_nonces.add(str(signed.get("nonce")))
            counts = problem is None
            if counts and r.decision is Decision.APPROVE:
                valid += 1
                seen_humans |= humans
            elif counts:
                rejections += 1
            views.append(ApprovalView(r, True, counts, problem))
        return Tally(tuple(views), valid, expired, rejections, required)

    def _signed(self, v: ModelVersion, r: ApprovalRecord) -> tuple[Mapping[str, JSON] | None, str]:
        """The verified predicate of ``r``'s statement, checked against the record."""
        try:
            st = verify_statement(
                self._s.evidence.blobs.read_bytes(r.statement_digest),
                self._s.evidence.trusted_keys(v.project),
                AllowedIdentities.of([signer_identity(v.project)]),
                predicate_type=APPROVAL_PREDICATE,
            )
        except BastionError as e:
            return None, f"{e.code}: {e.message}"
        p = st.predicate
        if (f"model:{v.lineage_id}", str(p.get("root_digest"))) not in {
            (s.name, s.sha256) for s in st.subjects
        }:
            return None, "the signed statement does not name this model version"
        claimed = {
            "decision": r.decision.value, "nonce": r.nonce, "root_digest": r.root_digest,
            "card_sha256": r.card_sha256, "card_version": r.card_version,
            "expires_at": r.expires_at, "principal": r.principal,
        }  # fmt: skip
        for key, value in claimed.items():
            if p.get(key) != value:
                return None, f"the record's {key} differs from its signed statement"
        return p, ""


class ApprovalService:
    def __init__(self, sources: ReleaseSources, gate: GateService) -> None:
        self._s = sources
        self._gate = gate
        self._ledger = ApprovalLedger(sources)
        self._duties = Duties(sources)

    # -- decisions ---------------------------------------------------------------------
    def approve(
        self,
        actor: Actor,
        project: str,
        ref: str,
        *,
        reason: str,
        expected_root_digest: str,
        expected_card_version: int,
        nonce: str | None = None,
    ) -> ApprovalResult:
        """Approve the exact digest and card version the reviewer was shown."""
        return self._decide(
            actor, project, ref, Decision.APPROVE, reason, expected_root_digest,
            expected_card_version, nonce,
        )  # fmt: skip

    def reject(
        self,
        actor: Actor,
        project: str,
        ref: str,
        *,
        reason: str,
        expected_root_digest: str,
        expected_card_version: int,
        nonce: str | None = None,
    ) -> ApprovalResult:
        """Reject (a reason is required); a counted rejection fails the gate's approvals rule."""
        return self._decide(
            actor, project, ref, Decision.REJECT, reason, expected_root_digest,
            expected_card_version, nonce,
        )  # fmt: skip

    def approvals(self, actor: Actor, project: str, ref: str) -> tuple[ModelVersion, Tally]:
        """Every approval and rejection of ``ref``, each checked (signature, expiry, digest)."""
        r = ModelRef.parse(ref)
        self._s.access.authorize(actor, "model.read", model_resource(project, r.name))
        v = self._resolve(project, r)
        _, policy = active_policy(self._s.repo, project)
        return v, self._ledger.tally(v, policy)

    def _decide(
        self,
        actor: Actor,
        project: str,
        ref: str,
        decision: Decision,
        reason: str,
        expected_root_digest: str,
        expected_card_version: int,
        nonce: str | None,
    ) -> ApprovalResult:
        r = ModelRef.parse(ref)
        resource = model_resource(project, r.name)
        self._s.access.authorize(
            actor, "model.approve", resource,
            details={"version": r.version, "decision": decision.value},
        )  # fmt: skip
        refuse = _Refuser(self._s, actor, resource, r.version, decision)
        if r.version is None:
            raise refuse.input(f"say which version of {r.name} you {decision.value}",
                               f"use {r.name}@VERSION")  # fmt: skip
        if len(reason.strip()) < MIN_REASON:
            raise refuse.input(
                f"a {decision.value} needs a reason of at least {MIN_REASON} characters",
                "say what you checked (evaluation, card, lineage) and why you decide so",
            )
        nonce = nonce or uuid.uuid4().hex
        if not (8 <= len(nonce) <= 64 and set(nonce) <= _NONCE_CHARS):
            raise refuse.input("the nonce must be 8-64 characters of [0-9a-z_-]", None)
        v = self._resolve(project, r)
        policy_version, policy = active_policy(self._s.repo, project)
        card = self._ledger.current_card(v)
        if card is None:
            raise refuse(f"{v.ref} has no model card: a model without a card cannot be "
                         f"{decision.value}d",
                         f"write one first: bastion model card-set {v.ref} card.yaml")  # fmt: skip
        if card.spec.risk_tier is RiskTier.UNACCEPTABLE and decision is Decision.APPROVE:
            raise refuse(f"{v.ref} has risk tier 'unacceptable': it is never approved",
                         "an unacceptable-risk use is prohibited (EU AI Act Art. 5)")  # fmt: skip
        if expected_root_digest != v.root_digest:
            raise refuse(
                f"you were shown digest {expected_root_digest[:16]}…, but {v.ref} is "
                f"{v.root_digest[:16]}…: refusing to {decision.value} something you did not see",
                f"review the current version again: bastion model card {v.ref}",
            )
        if expected_card_version != card.card_version:
            raise refuse(
                f"you were shown card version {expected_card_version}, but the current card "
                f"of {v.ref} is version {card.card_version}",
                f"read the current card again: bastion model card {v.ref}",
            )
        humans = self._s.identities.humans(actor.name, actor.token_id)
        if decision is Decision.APPROVE:
            self._separation_of_duties(refuse, v, humans, policy)
        if self._s.repo.nonce_used(project, nonce):
            raise refuse(f"replayed approval: nonce {nonce} was already used",
                         "every approval is a new request; do not resend an old one")  # fmt: skip
        record = self._sign_and_store(
            refuse, actor, v, card, decision, reason, nonce, humans, policy, policy_version.sha256
        )
        return self._after(actor, v, record, policy)

    def _separation_of_duties(
        self, refuse: _Refuser, v: ModelVersion, humans: frozenset[str], policy: ReleasePolicy
    ) -> None:
        party = self._duties.conflict(v, humans)
        if party is not None:
            who = ", ".join(sorted(humans))
            if party.role == "registered":
                raise refuse(
                    f"self-approval refused: {who} registered or trained {v.ref} "
                    f"(as {party.principal})",
                    "separation of duties: a reviewer who is not its author must approve",
                    kind="author",
                )
            raise refuse(
                f"approval refused: {who} {party.role} (as {party.principal}), "
                f"training data of {v.ref}",
                "separation of duties: whoever released its training data may not approve it",
                kind="releaser",
            )
        for view in self._ledger.tally(v, policy).views:
            mine = set(view.record.human.split(",")) & humans
            if view.counts and view.record.decision is Decision.APPROVE and mine:
                raise refuse(
                    f"second approval by the same person refused: {view.record.human} "
                    f"already approved {v.ref} (as {view.record.principal})",
                    "another token or a service account of yours is still you",
                    kind="duplicate",
                )

    def _sign_and_store(
        self,
        refuse: _Refuser,
        actor: Actor,
        v: ModelVersion,
        card: CardVersion,
        decision: Decision,
        reason: str,
        nonce: str,
        humans: frozenset[str],
        policy: ReleasePolicy,
        policy_sha256: str,
    ) -> ApprovalRecord:
        now = self._s.now()
        expires = now + dt.timedelta(days=policy.valid_days)
        evaluations = [
            e.statement_digest for e in self._s.evidence.models.evaluations(v.project, v.name,
                                                                            v.version)
        ]  # fmt: skip
        predicate: dict[str, JSON] = {
            "decision": decision.value,
            "model": v.lineage_id,
            "root_digest": v.root_digest,
            "card_version": card.card_version,
            "card_sha256": card.spec_sha256,
            "risk_tier": card.spec.risk_tier.value,
            "principal": actor.name,
            "humans": sorted(humans),
            "token_id": actor.token_id,
            "reason": reason,
            "nonce": nonce,
            "decided_at": iso(now, exact=True),
            "expires_at": iso(expires),
            "policy_sha256": policy_sha256,
            "evidence": {
                "bundle_sha256": v.bundle_digest,
                "evaluation_statements": list(evaluations),
                "training_data": list(v.trained_on),
            },
        }
        subjects = [
            (f"model:{v.lineage_id}", v.root_digest),
            (f"card:{v.lineage_id}#{card.card_version}", card.spec_sha256),
        ]
        subjects += [(f"evaluation:{d[:12]}", d) for d in evaluations]  # fmt: skip
        key_id, pem = self._s.signing_key(v.project)
        statement = sign_statement(APPROVAL_PREDICATE, predicate, subjects, pem)
        digest = self._s.evidence.blobs.put_bytes(statement).digest
        record = ApprovalRecord(
            uuid.uuid4().hex, v.project, v.name, v.version, decision, actor.name,
            ",".join(sorted(humans)), actor.token_id, reason, v.root_digest, card.card_version,
            card.spec_sha256, nonce, digest, iso(now, exact=True), iso(expires),
        )  # fmt: skip
        if not self._s.repo.add_approval(record):  # two requests with one nonce at once
            raise refuse(f"replayed approval: nonce {nonce} was already used", None)
        self._s.access.record(
            actor, f"model.{'approved' if decision is Decision.APPROVE else 'rejected'}",
            model_resource(v.project, v.name), Outcome.OK,
            {"version": v.version, "approval_id": record.id, "statement": digest,
             "root_digest": v.root_digest, "card_version": card.card_version,
             "card_sha256": card.spec_sha256, "signer": key_id, "reason": reason[:500],
             "expires_at": record.expires_at},
        )  # fmt: skip
        return record

    def _after(
        self, actor: Actor, v: ModelVersion, record: ApprovalRecord, policy: ReleasePolicy
    ) -> ApprovalResult:
        tally = self._ledger.tally(v, policy)
        gate, stage = None, v.stage
        if record.decision is Decision.APPROVE and _ready(tally, v):
            gate, stage = self._promote(actor, v, tally)
        return ApprovalResult(record, tally.valid, tally.required, gate, stage.value)

    def promote(self, actor: Actor, project: str, ref: str) -> GateResult:
        """Promote MODEL@V once its approvals are complete and the gate passes (e.g. after a
        waiver); raises ``GateFailed`` (with the failing rules) or ``ApprovalRefused``."""
        r = ModelRef.parse(ref)
        resource = model_resource(project, r.name)
        self._s.access.authorize(actor, "model.approve", resource, details={"version": r.version})
        refuse = _Refuser(self._s, actor, resource, r.version, Decision.APPROVE)
        if r.version is None:
            raise refuse.input(f"say which version of {r.name} to promote", f"{r.name}@VERSION")
        v = self._resolve(project, r)
        _, policy = active_policy(self._s.repo, project)
        tally = self._ledger.tally(v, policy)
        if not _ready(tally, v):
            raise refuse(
                f"{v.ref} is {v.stage.value} with {tally.valid}/{tally.required} valid approvals "
                f"and {tally.rejections} rejections: it cannot be promoted",
                f"see bastion model approvals {v.ref}",
            )
        gate, _ = self._promote(actor, v, tally)
        if not gate.passed:
            raise GateFailed(
                f"{v.ref} is not promoted: the release gate failed {', '.join(gate.failed)}",
                hint=f"see bastion gate check {v.ref}; an admin may waive a rule",
            )
        return gate

    def _promote(self, actor: Actor, v: ModelVersion, tally: Tally) -> tuple[GateResult, Stage]:
        gate = self._gate.check(actor, v.project, v.ref)
        if not gate.passed:
            return gate, v.stage
        self._s.evidence.models.set_stage(v.project, v.name, v.version, Stage.APPROVED.value)
        self._s.access.record(
            actor, "model.promoted", model_resource(v.project, v.name), Outcome.OK,
            {"version": v.version, "stage": Stage.APPROVED.value, "approvals": tally.valid,
             "gate_outcomes_sha256": gate.outcomes_sha256, "gate_audit": gate.audit_seq},
        )  # fmt: skip
        return gate, Stage.APPROVED

    def _resolve(self, project: str, r: ModelRef) -> ModelVersion:
        return resolve_version(self._s.evidence.models, project, r)


class _Refuser:
    """Builds a refusal and audits it (``model.approval_refused``) before it is raised."""

    def __init__(
        self, s: ReleaseSources, actor: Actor, resource: str, version: int | None, d: Decision
    ) -> None:
        self._args = (s, actor, resource, version, d)

    def __call__(self, message: str, hint: str | None, *, kind: str = "refused") -> BastionError:
        return self._audit(ApprovalRefused(message, hint=hint), kind)

    def input(self, message: str, hint: str | None) -> BastionError:
        return self._audit(InputError(message, hint=hint), "input")

    def _audit(self, e: BastionError, kind: str) -> BastionError:
        s, actor, resource, version, d = self._args
        s.access.record(
            actor, "model.approval_refused", resource, Outcome.DENIED,
            {"version": version, "decision": d.value, "kind": kind, "reason": e.message[:500]},
        )  # fmt: skip
        return e


def _ready(t: Tally, v: ModelVersion) -> bool:
    # required is 0 only without a card or for the unacceptable tier: never ready then
    ready = t.required > 0 and t.valid >= t.required and t.rejections == 0
    return ready and v.stage in (Stage.DRAFT, Stage.CANDIDATE)


def approval_to_dict(r: ApprovalResult) -> dict[str, JSON]:
    return {
        "approval_id": r.approval.id,
        "decision": r.approval.decision.value,
        "model": f"{r.approval.model}@{r.approval.version}",
        "counted": r.counted,
        "required": r.required,
        "stage": r.stage,
        "expires_at": r.approval.expires_at,
        "statement_sha256": r.approval.statement_digest,
        "gate": r.gate.to_dict() if r.gate else None,
    }


def tally_to_dict(v: ModelVersion, t: Tally) -> dict[str, JSON]:
    return {
        "model": v.ref,
        "stage": v.stage.value,
        "root_digest": v.root_digest,
        "required": t.required,
        "valid": t.valid,
        "expired": t.expired,
        "rejections": t.rejections,
        "approvals": [view.to_dict() for view in t.views],
    }


__all__ = [
    "APPROVAL_PREDICATE",
    "ApprovalLedger",
    "ApprovalService",
    "Tally",
    "approval_to_dict",
    "tally_to_dict",
]
