"""Release evidence for the ``release_approvals`` compliance check.

For a model version in stage ``approved`` or ``deployed`` this reads, without
authorizing (the compliance report has authorized ``compliance.report``):

- its approvals, re-checked by :class:`bastion.governance.approvals.ApprovalLedger`
  (signature, current digest and card, expiry, separation of duties) against the
  number the project's active release policy requires for the card's risk tier;
- the newest ``gate.checked`` audit entry for exactly this version and digest,
  which must say the gate passed;
- its waivers (rule, reason, grantor, expiry, statement digest), listed as evidence.

Example::

    finding = release_finding(sources)(model_version)
"""

from __future__ import annotations

from collections.abc import Callable

from bastion.governance.approvals import ApprovalLedger
from bastion.governance.compliance_checks import ApprovalFinding, EvidenceItem
from bastion.governance.release_sources import (
    ReleaseSources,
    active_policy,
    details,
    entries,
    model_resource,
)
from bastion.model_security.values import ModelVersion


def release_finding(sources: ReleaseSources) -> Callable[[ModelVersion], ApprovalFinding]:
    ledger = ApprovalLedger(sources)

    def finding(v: ModelVersion) -> ApprovalFinding:
        policy_version, policy = active_policy(sources.repo, v.project)
        tally = ledger.tally(v, policy)
        ev = [
            EvidenceItem(
                f"{v.ref}: {view.record.decision.value} by {view.record.human} ("
                + ("counted" if view.counts else f"not counted: {view.problem}")
                + ")",
                sha256=view.record.statement_digest,
                at=view.record.created_at,
            )
            for view in tally.views
        ]
        problems = []
        if ledger.current_card(v) is None:
            problems.append("no model card, so no risk tier to set the approvals it needs")
        elif tally.valid < tally.required:
            problems.append(
                f"{tally.valid} valid approval(s) of {tally.required} required by release "
                f"policy v{policy_version.version}"
            )
        # Waivers are shown wherever the release is (issue 11): each with its reason,
        # grantor, expiry and the digest of its signed statement.
        ev += [
            EvidenceItem(
                f"{v.ref}: rule {w.rule} waived by {w.granted_by} until {w.expires_at}: {w.reason}",
                sha256=w.statement_digest,
                at=w.granted_at,
            )
            for w in sources.repo.waivers(v.project, v.name)
            if w.version == v.version
        ]
        gate = _last_gate(sources, v)
        if gate is None:
            problems.append("no release-gate verdict for this version and digest")
        else:
            seq, at, passed = gate
            ev.append(
                EvidenceItem(
                    f"{v.ref}: release gate {'passed' if passed else 'FAILED'}",
                    audit_seq=seq,
                    sha256=v.root_digest,
                    at=at,
                )
            )
            if not passed:
                problems.append("its latest release-gate verdict failed")
        summary = "; ".join(problems) or (
            f"{tally.valid} valid approval(s) of {tally.required} required; gate passed"
        )
        return ApprovalFinding(not problems, summary, tuple(ev))

    return finding


def _last_gate(sources: ReleaseSources, v: ModelVersion) -> tuple[int, str, bool] | None:
    found = None
    for e in entries(sources.audit, "gate.checked", model_resource(v.project, v.name)):
        d = details(e)
        if d.get("version") == v.version and d.get("root_digest") == v.root_digest:
            found = (e.seq, e.ts, d.get("passed") is True)
    return found


__all__ = ["release_finding"]
