"""Layer-4 steps of the demo: the model card, approvals with separation of duties,
the release gate passing and failing rule by rule, a SOC 2 report.

One function per control, each asserting the specific control it shows: the
self-approval is refused *as* a self-approval (``ApprovalRefused`` naming the
author rule), the gate's failing rules for the rushed model are exactly the
evaluation rules and the approvals rule, the SOC 2 report's release control
finds the two signed approvals.

Example::

    run_governance(Runner(print), state, model_story)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from bastion.core.access.values import Actor, PrincipalKind
from bastion.demo.data_steps import PROJECT
from bastion.demo.foundation import DemoState
from bastion.demo.model_steps import SPEC, ModelStory
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.governance.compliance_render import render_report_html, render_report_json
from bastion.governance.errors import ApprovalRefused
from bastion.governance.mlbom import ml_bom
from bastion.governance.render import render_markdown
from bastion.model_security.values import Stage

RUSHED = "credit-scorer-rushed"
CARD = """\
intended_use: Rank consumer credit applications for manual review by an underwriter.
out_of_scope_uses: [Automated rejection without a human in the loop]
owners: [ml-team@example.com]
risk_tier: high
limitations: [Trained on one lender's applicants only; not validated for small business loans]
"""
#: the rules a model without a signed evaluation and with one approval must fail
EXPECTED_RUSHED_FAILURES = {"evaluation", "fairness", "robustness", "approvals"}


@dataclass
class GovernanceStory:
    models: ModelStory
    card_version: int = 0
    root_digest: str = ""
    reviewers: list[Actor] = field(default_factory=list)


def _reviewer(st: DemoState, name: str) -> Actor:
    st.ws.access.create_principal(st.admin, name, PrincipalKind.USER)
    st.ws.access.bind(st.admin, name, "reviewer", PROJECT)
    return st.ws.access.authenticate(st.ws.access.create_token(st.admin, name).secret)


def model_card(st: DemoState, story: GovernanceStory) -> list[str]:
    ref = story.models.ref()
    cv = st.ws.cards.edit(st.admin, PROJECT, ref, CARD, source="demo card.yaml")
    card = st.ws.cards.card(st.admin, PROJECT, ref)
    facts = card.facts
    verified = [e for e in facts.evaluations if e.verified]
    expect(bool(verified), "the card shows no verified (signed) evaluation")
    expect(bool(facts.training_data), "the card names no training data from lineage")
    md, bom = st.work / "model-card.md", st.work / "ml-bom.cdx.json"
    md.write_text(render_markdown(card))
    bom.write_text(ml_bom(card))
    story.card_version = cv.card_version
    story.root_digest = st.ws.models.version(st.admin, PROJECT, ref).root_digest
    return [
        f"card version {cv.card_version} (sha256 {cv.spec_sha256[:16]}…), risk tier high",
        f"facts from evidence: {len(facts.training_data)} training dataset version(s), "
        f"{len(verified)} signed evaluation(s), signer {facts.signer_identity}",
        f"Markdown card {md}; CycloneDX ML-BOM {bom}",
    ]


def self_approval(st: DemoState, story: GovernanceStory) -> list[str]:
    try:
        st.ws.approvals.approve(
            st.admin, PROJECT, story.models.ref(), reason="I trained it and it looks fine",
            expected_root_digest=story.root_digest, expected_card_version=story.card_version,
        )  # fmt: skip
    except ApprovalRefused as e:
        expect("self-approval" in e.message, f"refused for another reason: {e.message}")
        return [f"refused: {e.message[:160]}", "audited as model.approval_refused"]
    raise DemoFailed("the model's own author approved it")


def committee(st: DemoState, story: GovernanceStory) -> list[str]:
    story.reviewers = [_reviewer(st, n) for n in ("rita-reviewer", "ravi-reviewer")]
    result = None
    for r in story.reviewers:
        result = st.ws.approvals.approve(
            r, PROJECT, story.models.ref(), reason="card, signed evaluation and lineage checked",
            expected_root_digest=story.root_digest, expected_card_version=story.card_version,
        )  # fmt: skip
    expect(result is not None and result.gate is not None, "the quorum did not run the gate")
    assert result is not None and result.gate is not None
    failed = [f"{o.rule}: {o.detail}" for o in result.gate.rules if o.outcome.value == "fail"]
    expect(result.gate.passed, "the release gate failed: " + "; ".join(failed))
    expect(result.stage == Stage.APPROVED.value, f"stage is {result.stage}, not approved")
    rules = ", ".join(o.rule for o in result.gate.rules)
    evidence = sorted({e for o in result.gate.rules for e in o.evidence})
    return [
        f"{result.counted}/{result.required} signed approvals (risk tier high) → stage approved",
        f"gate passed, policy v{result.gate.policy_version}: {rules}",
        f"evidence: {', '.join(evidence[:4])}{' …' if len(evidence) > 4 else ''}",
        f"verdict audited (entry {result.gate.audit_seq}), outcomes sha256 "
        f"{result.gate.outcomes_sha256[:16]}…",
    ]


def rushed_model(st: DemoState, story: GovernanceStory) -> list[str]:
    v = st.ws.lab.train(st.admin, PROJECT, RUSHED, SPEC, story.models.data.accepted_ref)
    cv = st.ws.cards.edit(st.admin, PROJECT, v.ref, CARD, source="demo card.yaml")
    one = st.ws.approvals.approve(
        story.reviewers[0], PROJECT, v.ref, reason="looks fine to me, ship it today",
        expected_root_digest=v.root_digest, expected_card_version=cv.card_version,
    )  # fmt: skip
    expect(one.stage != Stage.APPROVED.value, "one approval promoted a high-risk model")
    gate = st.ws.gate.check(st.admin, PROJECT, v.ref)
    failed = {o.rule for o in gate.rules if o.outcome.value == "fail"}
    expect(not gate.passed, "the gate passed a model without a signed evaluation")
    expect(failed == EXPECTED_RUSHED_FAILURES, f"unexpected failing rules: {sorted(failed)}")
    return [f"{o.rule}: {o.outcome.value} — {o.detail[:90]}" for o in gate.rules]


def soc2_report(st: DemoState, story: GovernanceStory) -> list[str]:
    report = st.ws.compliance.report(st.admin, "soc2", PROJECT)
    html, js = st.work / "soc2-report.html", st.work / "soc2-report.json"
    html.write_text(render_report_html(report))
    js.write_text(render_report_json(report))
    checks = {k.name: k for c in report.controls for k in c.checks}
    release = checks.get("release_approvals")
    expect(release is not None, "the SOC 2 report has no release-approvals check")
    assert release is not None
    expect(release.status.value == "pass", f"release approvals: {release.summary}")
    counts = report.counts()
    return [
        f"{len(report.controls)} controls: {counts.get('pass', 0)} pass, "
        f"{counts.get('fail', 0)} fail, {counts.get('not-applicable', 0)} not applicable",
        f"release_approvals: {release.summary[:120]}",
        f"HTML {html}; JSON {js}",
    ]


GOVERNANCE: tuple[tuple[str, Callable[[DemoState, GovernanceStory], list[str]]], ...] = (
    ("model card from a YAML file plus evidence; CycloneDX ML-BOM", model_card),
    ("self-approval by the model's author refused", self_approval),
    ("two reviewers approve; the release gate passes with its evidence", committee),
    ("gate fails, rule by rule: no signed evaluation, one approval", rushed_model),
    ("SOC 2 compliance report written", soc2_report),
)


def run_governance(r: Runner, st: DemoState, models: ModelStory) -> GovernanceStory:
    story = GovernanceStory(models)
    for name, control in GOVERNANCE:
        r.step("governance", name, partial(control, st, story))
    return story


__all__ = ["GOVERNANCE", "GovernanceStory", "run_governance"]
