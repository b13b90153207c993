"""The release gate: a project's CEL policy evaluated over signed evidence, and waivers.

``check`` computes the facts of a model version (:mod:`bastion.governance.gate_facts`),
evaluates every rule of the active policy (:mod:`bastion.governance.gate_policy`),
marks a failing rule *waived* when a valid waiver covers it, signs the verdict as
an in-toto statement (``GATE_PREDICATE``) and audits one ``gate.checked`` entry
carrying the sha256 of the canonical rule outcomes.  Promotion to approved runs
it (:mod:`bastion.governance.approvals`); deployment runs it again.

``set_policy`` stores a new policy version only if it compiles; a refused
document is audited and the previous policy stays active.  ``waive`` grants a
named waiver (admin, ``waiver.grant``) with a reason and an expiry no later than
the policy's ``waivers.max_days``; the model's author may not grant one.

Example::

    result = gate.check(actor, "credit", "scorer@3")
    for r in result.rules:
        print(r.rule, r.outcome, r.evidence)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Protocol

from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome as AuditOutcome
from bastion.core.canonical import JSON, canonical_json
from bastion.core.errors import BastionError
from bastion.governance.approvals import ApprovalLedger
from bastion.governance.errors import ReleasePolicyInvalid, WaiverRefused
from bastion.governance.facts import resolve_version
from bastion.governance.gate_facts import GateFacts, VerifyModel, compute_facts
from bastion.governance.gate_policy import ReleasePolicy, Rule, parse_policy
from bastion.governance.release_sources import (
    Duties,
    ReleaseSources,
    active_policy,
    iso,
    model_resource,
)
from bastion.governance.release_values import (
    GateResult,
    Outcome,
    PolicyVersion,
    RuleOutcome,
    Waiver,
)
from bastion.governance.values import ReleaseFact
from bastion.model_security.registry import signer_identity
from bastion.model_security.signing import AllowedIdentities, sign_statement, verify_statement
from bastion.model_security.values import ModelRef, ModelVersion

GATE_PREDICATE = "https://bastion.dev/attestations/gate-verdict/v1"
WAIVER_PREDICATE = "https://bastion.dev/attestations/gate-waiver/v1"
MIN_REASON = 10


def _policy_resource(project: str) -> str:
    return f"project/{project}/release-policy"


class GateService:
    def __init__(self, sources: ReleaseSources, verify: VerifyModel) -> None:
        self._s = sources
        self._verify = verify
        self._ledger = ApprovalLedger(sources)
        self._duties = Duties(sources)

    # -- the gate ----------------------------------------------------------------------
    def check(self, actor: Actor, project: str, ref: str) -> GateResult:
        """Evaluate the active policy on ``ref`` (MODEL@V); audited, signed, never raises on
        a failing rule (``GateResult.passed`` says)."""
        r = ModelRef.parse(ref)
        resource = model_resource(project, r.name)
        self._s.access.authorize(actor, "gate.check", resource, details={"version": r.version})
        v = self._resolve(project, r)
        version, policy = active_policy(self._s.repo, project)
        tally = self._ledger.tally(v, policy)
        facts = compute_facts(actor, v, self._s, tally, self._ledger.current_card(v),
                              self._verify)  # fmt: skip
        waivers = self._valid_waivers(v)
        outcomes = tuple(self._outcome(rule, policy, facts, waivers) for rule in policy.rules)
        now = iso(self._s.now())
        digest = hashlib.sha256(canonical_json([o.to_dict() for o in outcomes])).hexdigest()
        statement = self._sign_verdict(v, version, outcomes, digest, now)
        passed = all(o.outcome is not Outcome.FAIL for o in outcomes)
        seq = self._s.access.record(
            actor, "gate.checked", resource,
            AuditOutcome.OK if passed else AuditOutcome.FAILED,
            {"version": v.version, "root_digest": v.root_digest, "passed": passed,
             "policy_version": version.version, "policy_sha256": policy.sha256,
             "outcomes_sha256": digest, "statement": statement,
             "failed": [o.rule for o in outcomes if o.outcome is Outcome.FAIL],
             "waived": [o.rule for o in outcomes if o.outcome is Outcome.WAIVED]},
        )  # fmt: skip
        return GateResult(project, v.ref, v.root_digest, version.version, policy.sha256,
                          outcomes, now, digest, seq)  # fmt: skip

    def _outcome(
        self, rule: Rule, policy: ReleasePolicy, facts: GateFacts, waivers: dict[str, Waiver]
    ) -> RuleOutcome:
        evidence = tuple(e for g in rule.groups for e in facts.evidence.get(g, ()))
        read = ", ".join(f"{p}={_show(facts.values, p)}" for p in rule.paths)
        try:
            ok = rule.evaluate(facts.values, policy.thresholds)
            detail = read
        except ReleasePolicyInvalid as e:  # a fact of an unexpected type: fail closed
            ok, detail = False, f"could not evaluate: {e.message}"
        if ok:
            return RuleOutcome(rule.name, rule.expr, rule.description, Outcome.PASS, evidence,
                               detail)  # fmt: skip
        w = waivers.get(rule.name)
        if w is not None:
            return RuleOutcome(
                rule.name, rule.expr, rule.description, Outcome.WAIVED,
                (*evidence, f"waiver {w.id[:12]} statement sha256:{w.statement_digest}"),
                f"{detail}; waived by {w.granted_by} until {w.expires_at}: {w.reason}", w.id,
            )  # fmt: skip
        return RuleOutcome(rule.name, rule.expr, rule.description, Outcome.FAIL, evidence, detail)

    def _sign_verdict(
        self,
        v: ModelVersion,
        version: PolicyVersion,
        outcomes: tuple[RuleOutcome, ...],
        digest: str,
        now: str,
    ) -> str:
        predicate: dict[str, JSON] = {
            "model": v.lineage_id,
            "root_digest": v.root_digest,
            "policy_version": version.version,
            "policy_sha256": version.sha256,
            "checked_at": now,
            "passed": all(o.outcome is not Outcome.FAIL for o in outcomes),
            "outcomes_sha256": digest,
            "rules": {o.rule: o.outcome.value for o in outcomes},
        }
        _, pem = self._s.signing_key(v.project)
        statement = sign_statement(
            GATE_PREDICATE, predicate, [(f"model:{v.lineage_id}", v.root_digest)], pem
        )
        return self._s.evidence.blobs.put_bytes(statement).digest

    # -- policy ------------------------------------------------------------------------
    def set_policy(self, actor: Actor, project: str, text: str) -> PolicyVersion:
        """Store ``text`` as the next policy version if it compiles (else refused, audited)."""
        resource = _policy_resource(project)
        self._s.access.authorize(actor, "gate.policy", resource)
        self._s.access.require_project(project)
        try:
            policy = parse_policy(text)
        except ReleasePolicyInvalid as e:
            self._s.access.record(actor, "gate.policy_refused", resource, AuditOutcome.FAILED,
                                  {"reason": e.message[:500]})  # fmt: skip
            raise
        stored = self._s.repo.add_policy(
            PolicyVersion(
                uuid.uuid4().hex, project, 0, text, policy.sha256, iso(self._s.now()), actor.name
            )
        )
        self._s.access.record(
            actor, "gate.policy_set", resource, AuditOutcome.OK,
            {"policy_version": stored.version, "sha256": stored.sha256,
             "rules": [r.name for r in policy.rules]},
        )  # fmt: skip
        return stored

    def policy(self, actor: Actor, project: str) -> PolicyVersion:
        """The active policy (version 0: the built-in default)."""
        self._s.access.authorize(actor, "gate.check", _policy_resource(project))
        return active_policy(self._s.repo, project)[0]

    def policy_history(self, actor: Actor, project: str) -> list[PolicyVersion]:
        self._s.access.authorize(actor, "gate.check", _policy_resource(project))
        return self._s.repo.policies(project)

    # -- waivers -----------------------------------------------------------------------
    def waive(
        self,
        actor: Actor,
        project: str,
        ref: str,
        *,
        rule: str,
        reason: str,
        expires: str | None,
    ) -> Waiver:
        """Waive ``rule`` for ``ref`` until ``expires`` (ISO date or time, UTC)."""
        r = ModelRef.parse(ref)
        resource = model_resource(project, r.name)
        self._s.access.authorize(actor, "waiver.grant", resource,
                                 details={"version": r.version, "rule": rule})  # fmt: skip

        def refuse(message: str, hint: str, kind: str = "refused") -> BastionError:
            self._s.access.record(actor, "gate.waiver_refused", resource, AuditOutcome.DENIED,
                                  {"version": r.version, "rule": rule, "kind": kind,
                                   "reason": message[:500]})  # fmt: skip
            return WaiverRefused(message, hint=hint)

        if r.version is None:
            raise refuse(f"say which version of {r.name} the waiver is for",
                         f"use {r.name}@VERSION: a waiver covers one model version")  # fmt: skip
        v = self._resolve(project, r)
        _, policy = active_policy(self._s.repo, project)
        if policy.rule(rule) is None:
            raise refuse(
                f"unknown rule {rule!r} in the active release policy",
                "rules: " + ", ".join(x.name for x in policy.rules),
                "unknown_rule",
            )
        if len(reason.strip()) < MIN_REASON:
            raise refuse(
                f"a waiver needs a reason of at least {MIN_REASON} characters",
                "say why shipping with this rule failing is acceptable",
                "reason",
            )
        until = self._expiry(expires, policy, refuse)
        humans = self._s.identities.humans(actor.name, actor.token_id)
        author = self._duties.author_conflict(v, humans)
        if author is not None:
            raise refuse(
                f"a waiver by the model's author is refused: {', '.join(sorted(humans))} "
                f"registered or trained {v.ref}",
                "another admin, who is not its author, must grant it",
                "author",
            )
        now = iso(self._s.now())
        predicate: dict[str, JSON] = {
            "model": v.lineage_id, "root_digest": v.root_digest, "rule": rule,
            "reason": reason, "granted_by": actor.name, "humans": sorted(humans),
            "granted_at": now, "expires_at": iso(until),
        }  # fmt: skip
        _, pem = self._s.signing_key(project)
        statement = sign_statement(WAIVER_PREDICATE, predicate,
                                   [(f"model:{v.lineage_id}", v.root_digest)], pem)  # fmt: skip
        w = Waiver(uuid.uuid4().hex, project, v.name, v.version, rule, reason, actor.name, now,
                   iso(until), self._s.evidence.blobs.put_bytes(statement).digest)  # fmt: skip
        self._s.repo.add_waiver(w)
        self._s.access.record(actor, "gate.waiver_granted", resource, AuditOutcome.OK,
                              {"version": v.version, "waiver_id": w.id, "rule": rule,
                               "expires_at": w.expires_at, "statement": w.statement_digest,
                               "reason": reason[:500]})  # fmt: skip
        return w

    def _expiry(self, expires: str | None, policy: ReleasePolicy, refuse: _Refuse) -> dt.datetime:
        if not expires:
            raise refuse("a waiver needs an expiry", "pass --expires YYYY-MM-DD", "no_expiry")
        try:
            parsed = dt.datetime.fromisoformat(expires)
        except ValueError:
            raise refuse(f"cannot read expiry {expires!r}", "use YYYY-MM-DD or an ISO time",
                         "bad_expiry") from None  # fmt: skip
        until = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        now = self._s.now()
        if until <= now:
            raise refuse(f"expiry {expires} is in the past", "choose a future date", "past")
        if until > now + dt.timedelta(days=policy.waiver_max_days):
            raise refuse(
                f"expiry {expires} is more than {policy.waiver_max_days} days away",
                "the release policy's waivers.max_days bounds it",
                "too_far",
            )
        return until

    def waivers(self, actor: Actor, project: str, model: str | None = None) -> list[Waiver]:
        """Every waiver granted in ``project`` (of one model when given), for cards and audits."""
        name = ModelRef.parse(model).name if model else None
        target = model_resource(project, name) if name else f"project/{project}/models"
        self._s.access.authorize(actor, "gate.check", target)
        return self._s.repo.waivers(project, name)

    def release_facts(self, v: ModelVersion) -> tuple[ReleaseFact, ...]:
        """Approvals, rejections and waivers of ``v`` as a card shows them (the caller has
        authorized reading the card; nothing here is an editable column taken on trust)."""
        _, policy = active_policy(self._s.repo, v.project)
        facts = [
            ReleaseFact(x.record.decision.value, x.record.principal, x.record.created_at,
                        x.record.expires_at, f"card version {x.record.card_version}",
                        x.record.reason, x.record.statement_digest, x.counts, x.problem)
            for x in self._ledger.tally(v, policy).views
        ]  # fmt: skip
        valid = {w.id for w in self._valid_waivers(v).values()}
        for w in self._s.repo.waivers(v.project, v.name):
            if w.version == v.version:
                note = None if w.id in valid else "unverified, expired or for another digest"
                facts.append(ReleaseFact("waiver", w.granted_by, w.granted_at, w.expires_at,
                                         f"rule {w.rule}", w.reason, w.statement_digest,
                                         w.id in valid, note))  # fmt: skip
        return tuple(facts)

    def _valid_waivers(self, v: ModelVersion) -> dict[str, Waiver]:
        now = self._s.now()
        authors = self._duties.authors(v)
        found: dict[str, Waiver] = {}
        for w in self._s.repo.waivers(v.project, v.name):
            if w.version != v.version:
                continue
            try:
                st = verify_statement(
                    self._s.evidence.blobs.read_bytes(w.statement_digest),
                    self._s.evidence.trusted_keys(v.project),
                    AllowedIdentities.of([signer_identity(v.project)]),
                    predicate_type=WAIVER_PREDICATE,
                )
            except BastionError:
                continue
            p = st.predicate
            subjects = {(s.name, s.sha256) for s in st.subjects}
            humans = frozenset(str(h) for h in p.get("humans", []) or [])  # type: ignore[union-attr]
            if (
                (f"model:{v.lineage_id}", v.root_digest) not in subjects
                or p.get("rule") != w.rule
                or dt.datetime.fromisoformat(str(p.get("expires_at"))) <= now
                or any(a.humans & humans for a in authors)
            ):
                continue
            found[w.rule] = w
        return found

    def _resolve(self, project: str, r: ModelRef) -> ModelVersion:
        return resolve_version(self._s.evidence.models, project, r)


class _Refuse(Protocol):
    def __call__(self, message: str, hint: str, kind: str = ...) -> BastionError: ...


def _show(values: dict[str, dict[str, JSON]], path: str) -> str:
    group, _, key = path.partition(".")
    value = values.get(group, {}).get(key)
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 120 else text[:117] + "..."


__all__ = ["GATE_PREDICATE", "WAIVER_PREDICATE", "GateService"]
