"""Committee approvals and the release gate on real workspaces, SQLite AND PostgreSQL.

One workspace per database: a credit model trained by an ML engineer on an
accepted batch and evaluated (a signed statement with the project key), a second
batch quarantined (its checksum does not match) and released by a steward, and
reviewers, an auditor, a second admin and a service account he owns.  Every
refusal is an attack named in its test, and each asserts the audit entry and
that nothing changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sqlalchemy as sa

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.audit.entries import Outcome as AuditOutcome
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import AccessDenied, InputError
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.governance.approvals import ApprovalService
from bastion.governance.errors import ApprovalRefused, ReleasePolicyInvalid, WaiverRefused
from bastion.governance.gate import GateService
from bastion.governance.gate_policy import DEFAULT_POLICY
from bastion.governance.release_values import Outcome
from bastion.model_security.evaluation import AttackKind, RobustnessSuite
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework, ModelVersion, Stage
from bastion.workspace import Bastion

P = "default"
SPEC = "label: Status\nestimator: logistic_regression\nparams: {C: 1.0, max_iter: 300}\nseed: 7\n"
CARD = """\
intended_use: Rank credit applications for manual review.
out_of_scope_uses: [Automated rejection without a human]
owners: [erin@example.com]
risk_tier: high
limitations: [Trained on one bureau's applicants only]
"""
#: thresholds any honest model of the fixture passes (the gate's logic is what is tested)
LENIENT = (
    DEFAULT_POLICY.replace("min_accuracy: 0.6", "min_accuracy: 0.5")
    .replace("max_fairness_gap: 0.25", "max_fairness_gap: 1.0")
    .replace("max_attack_success_rate: 0.9", "max_attack_success_rate: 1.0")
)
REASON = "evaluation, card and lineage reviewed"


@dataclass
class Env:
    ws: Bastion
    admin: Actor
    tokens: dict[str, str]
    model: ModelVersion  # trained by erin on credit@1, evaluated, card v1 (high risk)
    work: Path

    def actor(self, name: str) -> Actor:
        return self.ws.access.authenticate(self.tokens[name])

    def user(self, name: str, *roles: str, kind: PrincipalKind = PrincipalKind.USER,
             by: Actor | None = None) -> Actor:  # fmt: skip
        creator = by or self.admin
        self.ws.access.create_principal(creator, name, kind)
        for role in roles:
            self.ws.access.bind(self.admin, name, role, P)
        self.tokens[name] = self.ws.access.create_token(creator, name).secret
        return self.actor(name)

    def register(self, name: str, trained_on: tuple[str, ...] = ("credit@1",),
                 who: str = "erin", card: bool = True) -> ModelVersion:  # fmt: skip
        from sklearn.linear_model import LogisticRegression

        x = np.random.default_rng(len(name)).normal(size=(60, 2))
        path = self.work / f"{name}-{uuid.uuid4().hex[:6]}.joblib"
        joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), path)
        v = self.ws.models.register(
            self.actor(who), RegisterRequest(P, name, path, Framework.SKLEARN, trained_on)
        )
        if card:
            self.ws.cards.edit(self.actor(who), P, v.ref, CARD)
        return v

    def approve(self, who: str | Actor, v: ModelVersion, **kw: Any) -> Any:
        actor = self.actor(who) if isinstance(who, str) else who
        card = self.ws.cards.card(self.admin, P, v.ref).card
        kw.setdefault("expected_root_digest", v.root_digest)
        kw.setdefault("expected_card_version", card.card_version if card else 0)
        return self.ws.approvals.approve(actor, P, v.ref, reason=kw.pop("reason", REASON), **kw)

    def refusals(self, actor: str) -> list[dict[str, Any]]:
        found = self.ws.audit.query(AuditQuery(action="model.approval_refused", actor=actor))
        return [json.loads(e.details) for e in found]

    def count(self, v: ModelVersion) -> int:
        return len(self.ws.approvals.approvals(self.admin, P, v.ref)[1].views)


def _pg_database() -> Iterator[str]:
    # (the root conftest's helper is shadowed here by this folder's conftest module)
    import psycopg
    from sqlalchemy.engine import make_url

    admin = os.environ.get("BASTION_TEST_POSTGRES_URL")
    if not admin:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must provide PostgreSQL (BASTION_TEST_POSTGRES_URL is not set)")
        pytest.skip("BASTION_TEST_POSTGRES_URL is not set")
    name = f"bastion_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("release")
    master = MasterKeySource.from_env_key("A" * 43 + "=")
    if request.param == "postgresql":
        gen = _pg_database()
        url: str | None = next(gen)
    else:
        gen, url = None, None
    ws, token = Bastion.init(work / "ws", master, database_url=url)
    try:
        yield _build(ws, token.secret, work)
    finally:
        ws.close()
        if gen is not None:
            gen.close()


def _build(ws: Bastion, admin_token: str, work: Path) -> Env:
    admin = ws.access.authenticate(admin_token)
    env = Env(ws, admin, {"admin": admin_token}, None, work)  # type: ignore[arg-type]
    env.user("erin", "ml-engineer")
    env.user("rita", "reviewer")
    env.user("ravi", "reviewer")
    env.user("sam", "data-steward", "reviewer")
    env.user("olga", "auditor")
    env.user("adam")
    ws.access.bind(admin, "adam", "admin", "*")  # a second workspace admin (creates accounts)
    env.user("adam-bot", "reviewer", kind=PrincipalKind.SERVICE, by=env.actor("adam"))
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
    first = work / "b0.csv"
    full.head(800).write_csv(first)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    req = IngestRequest(P, "credit", first, "bureau", digest, label="Status",
                        sensitive=("Age",), positive_label="good")  # fmt: skip
    assert ws.datasets.ingest(admin, req).accepted
    second = work / "b1.csv"
    full.slice(800, 300).write_csv(second)
    res = ws.datasets.ingest(admin, IngestRequest(P, "credit", second, "bureau", "0" * 64))
    assert not res.accepted  # the declared checksum does not match: quarantined
    ws.datasets.review(env.actor("sam"), P, res.version.ref, release=True,
                       reason="checksum typo by the bureau, bytes confirmed by phone")  # fmt: skip
    ws.gate.set_policy(admin, P, LENIENT)
    erin = env.actor("erin")
    env.model = ws.lab.train(erin, P, "scorer", SPEC, "credit@1")
    suite = RobustnessSuite(attacks=(AttackKind.FGSM,), eps=0.5, sample_size=20)
    ws.lab.evaluate(erin, P, env.model.ref, "credit@2", sensitive=("Age",), suite=suite)
    ws.cards.edit(erin, P, env.model.ref, CARD)
    return env


# -- refusals ------------------------------------------------------------------------------
def test_approval_of_a_model_without_a_card_is_refused(env: Env) -> None:
    v = env.register("nocard", card=False)
    with pytest.raises(ApprovalRefused, match="no model card"):
        env.approve("rita", v, expected_card_version=1)
    assert env.count(v) == 0
    assert "no model card" in env.refusals("rita")[-1]["reason"]


def test_self_approval_by_registrant_is_refused(env: Env) -> None:
    env.ws.access.bind(env.admin, "erin", "reviewer", P)  # erin now holds model.approve too
    try:
        with pytest.raises(ApprovalRefused, match="self-approval refused"):
            env.approve("erin", env.model)
    finally:
        env.ws.access.unbind(env.admin, "erin", "reviewer", P)
    assert env.count(env.model) == 0
    assert env.refusals("erin")[-1]["kind"] == "author"


def test_approval_by_releaser_of_a_quarantined_training_batch_is_refused(env: Env) -> None:
    v = env.register("on-released", trained_on=("credit@2",))
    with pytest.raises(ApprovalRefused, match=r"released credit@2"):
        env.approve("sam", v)
    assert env.count(v) == 0
    assert env.refusals("sam")[-1]["kind"] == "releaser"


def test_approval_by_non_reviewer_is_refused(env: Env) -> None:
    v = env.register("nonrev")
    with pytest.raises(AccessDenied, match=r"model\.approve"):
        env.approve("olga", v)
    denied = env.ws.audit.query(AuditQuery(action="model.approve", actor="olga"))
    assert denied[-1].outcome == "denied"
    assert env.count(v) == 0


def test_second_approval_by_same_person_through_another_token_is_refused(env: Env) -> None:
    v = env.register("twotokens")
    env.approve("rita", v)
    other = env.ws.access.create_token(env.actor("rita"), "rita").secret
    with pytest.raises(ApprovalRefused, match="same person"):
        env.approve(env.ws.access.authenticate(other), v)
    assert env.count(v) == 1
    assert env.refusals("rita")[-1]["kind"] == "duplicate"


def test_second_approval_through_a_service_account_the_approver_owns_is_refused(
    env: Env,
) -> None:
    v = env.register("bot")
    env.approve("adam", v)
    with pytest.raises(ApprovalRefused, match=r"same person.*adam"):
        env.approve("adam-bot", v)
    assert env.count(v) == 1
    assert env.ws._release_sources.identities.humans("adam-bot") == {"adam"}


def test_approval_of_a_digest_other_than_the_current_one_is_refused(env: Env) -> None:
    v = env.register("stale-digest")
    with pytest.raises(ApprovalRefused, match="did not see"):
        env.approve("rita", v, expected_root_digest="f" * 64)
    assert env.count(v) == 0


def test_approval_of_a_card_version_other_than_the_current_one_is_refused(env: Env) -> None:
    v = env.register("stale-card")
    env.ws.cards.edit(env.actor("erin"), P, v.ref, CARD.replace("one bureau", "two bureaus"))
    with pytest.raises(ApprovalRefused, match="card version 1, but the current card"):
        env.approve("rita", v, expected_card_version=1)
    assert env.count(v) == 0


def test_rejection_without_a_reason_is_refused(env: Env) -> None:
    v = env.register("noreason")
    with pytest.raises(InputError, match="reason"):
        env.ws.approvals.reject(
            env.actor("rita"), P, v.ref, reason=" ", expected_root_digest=v.root_digest,
            expected_card_version=1,
        )  # fmt: skip
    assert env.count(v) == 0


def test_replayed_approval_nonce_is_refused(env: Env) -> None:
    v = env.register("replay")
    env.approve("rita", v, nonce="nonce-replay-1")
    with pytest.raises(ApprovalRefused, match="replayed approval"):
        env.approve("ravi", v, nonce="nonce-replay-1")
    assert env.count(v) == 1


def test_replayed_statement_copied_into_the_database_counts_once(env: Env) -> None:
    v = env.register("replay-row")
    env.approve("rita", v)
    with env.ws.engine.begin() as c:
        row = dict(c.execute(sa.text("SELECT * FROM model_approvals WHERE model = 'replay-row'"))
                   .mappings().one())  # fmt: skip
        row.update(id=uuid.uuid4().hex, nonce=uuid.uuid4().hex)
        cols = ", ".join(row)
        c.execute(sa.text(f"INSERT INTO model_approvals ({cols}) VALUES "
                          f"({', '.join(':' + k for k in row)})"), row)  # fmt: skip
    _, tally = env.ws.approvals.approvals(env.admin, P, v.ref)
    assert tally.valid == 1
    assert sorted(view.counts for view in tally.views) == [False, True]
    (copy,) = [view for view in tally.views if not view.counts]
    assert "differs from its signed statement" in (copy.problem or "")


def test_expired_approval_does_not_count_and_the_gate_fails(env: Env) -> None:
    v = env.register("expiring")
    env.approve("rita", v)
    env.approve("ravi", v)  # two of two: the gate runs (fails: no evaluation), not promoted

    def later_now() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(days=91)

    later = dataclasses.replace(env.ws._release_sources, now=later_now)
    gate = GateService(later, lambda a, m: "verified")
    _, tally = ApprovalService(later, gate).approvals(env.admin, P, v.ref)
    assert (tally.valid, tally.expired) == (0, 2)
    result = gate.check(env.admin, P, v.ref)
    approvals = next(r for r in result.rules if r.rule == "approvals")
    assert approvals.outcome is Outcome.FAIL and "approvals.valid=0" in approvals.detail


def test_tampered_approval_row_does_not_count(env: Env) -> None:
    v = env.register("tampered")
    env.approve("rita", v)
    with env.ws.engine.begin() as c:
        c.execute(sa.text("UPDATE model_approvals SET human = 'nobody', principal = 'ravi' "
                          "WHERE model = 'tampered'"))  # fmt: skip
    _, tally = env.ws.approvals.approvals(env.admin, P, v.ref)
    assert tally.valid == 0 and not tally.views[0].counts


# -- the happy path and the gate --------------------------------------------------------
def test_two_reviewers_approve_the_gate_passes_and_the_model_is_approved(env: Env) -> None:
    first = env.approve("rita", env.model)
    assert (first.counted, first.required, first.stage) == (1, 2, env.model.stage.value)
    assert first.gate is None
    second = env.approve("ravi", env.model)
    assert second.gate is not None, second
    assert second.gate.passed, [(r.rule, r.detail) for r in second.gate.rules]
    assert second.stage == Stage.APPROVED.value
    stored = env.ws.models.version(env.admin, P, env.model.ref)
    assert stored.stage is Stage.APPROVED
    promoted = env.ws.audit.query(AuditQuery(action="model.promoted"))
    assert json.loads(promoted[-1].details)["gate_outcomes_sha256"] == second.gate.outcomes_sha256
    _, tally = env.ws.approvals.approvals(env.actor("olga"), P, env.model.ref)
    assert [view.record.principal for view in tally.views] == ["rita", "ravi"]
    assert all(view.signature_verified for view in tally.views)


def test_gate_check_reports_every_rule_with_evidence_and_is_audited(env: Env) -> None:
    result = env.ws.gate.check(env.actor("olga"), P, env.model.ref)
    assert result.passed
    by = {r.rule: r for r in result.rules}
    assert set(by) == {"signature", "scan", "training_data", "evaluation", "fairness",
                       "robustness", "approvals", "card", "providers", "drift"}  # fmt: skip
    assert any(e.startswith("audit#") for e in by["scan"].evidence)
    assert any("statement sha256:" in e for e in by["evaluation"].evidence)
    assert sum("approve" in e for e in by["approvals"].evidence) == 2
    entry = env.ws.audit.query(AuditQuery(action="gate.checked", actor="olga"))[-1]
    assert json.loads(entry.details)["outcomes_sha256"] == result.outcomes_sha256
    assert entry.seq == result.audit_seq


def test_gate_fails_rule_by_rule_without_signed_evaluation_and_one_approval(env: Env) -> None:
    v = env.register("unevaluated")
    env.approve("rita", v)
    result = env.ws.gate.check(env.admin, P, v.ref)
    assert not result.passed
    assert {"evaluation", "fairness", "robustness", "approvals"} <= set(result.failed)
    assert "signature" not in result.failed and "card" not in result.failed
    assert env.ws.models.version(env.admin, P, v.ref).stage is not Stage.APPROVED


def test_open_drift_alert_fails_the_gate(env: Env) -> None:
    v = env.register("drifting")
    env.ws.access.record(env.admin, "monitor.drift", f"project/{P}/monitoring",
                         AuditOutcome.OK,
                         {"reference": "credit@1", "verdict": "dataset_drift"})  # fmt: skip
    try:
        result = env.ws.gate.check(env.admin, P, v.ref)
        assert "drift" in result.failed
    finally:
        env.ws.access.record(env.admin, "monitor.drift", f"project/{P}/monitoring",
                             AuditOutcome.OK,
                             {"reference": "credit@1", "verdict": "no_drift"})  # fmt: skip
    assert "drift" not in env.ws.gate.check(env.admin, P, v.ref).failed


# -- policy -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("expr: facts.scan.clean", "expr: facts.scan.clean &&"),
         "line 17: rule 'scan' does not compile"),
        (("expr: facts.scan.clean", "expr: facts.scan.cleen"), "unknown fact 'facts.scan.cleen'"),
        (("min_accuracy: 0.5", "min_accuracy: 1.5"),
         "line 8: thresholds.min_accuracy = 1.5 is out of range"),
        (("valid_days: 90", "valid_days: 9000"), "out of range"),
        (("expr: facts.scan.clean", "expr: facts.scan.findings"), "not a boolean"),
        (("rules:", "rulez:"), "unknown key 'rulez'"),
    ],
)  # fmt: skip
def test_release_policy_that_does_not_compile_is_refused_and_the_previous_stays(
    env: Env, change: tuple[str, str], message: str
) -> None:
    before = env.ws.gate.policy(env.admin, P)
    with pytest.raises(ReleasePolicyInvalid, match=message.replace("(", r"\(")):
        env.ws.gate.set_policy(env.admin, P, LENIENT.replace(*change))
    after = env.ws.gate.policy(env.admin, P)
    assert (after.version, after.sha256) == (before.version, before.sha256)
    refused = env.ws.audit.query(AuditQuery(action="gate.policy_refused"))
    assert message.split(":")[-1].strip()[:20] in json.loads(refused[-1].details)["reason"]


def test_release_policy_set_by_a_reviewer_is_refused(env: Env) -> None:
    with pytest.raises(AccessDenied, match=r"gate\.policy"):
        env.ws.gate.set_policy(env.actor("rita"), P, LENIENT)


def test_release_policy_versions_and_history(env: Env) -> None:
    before = env.ws.gate.policy_history(env.admin, P)
    stored = env.ws.gate.set_policy(env.admin, P, LENIENT + "  # same rules, new version\n")
    history = env.ws.gate.policy_history(env.actor("olga"), P)
    assert [h.version for h in history] == [*(h.version for h in before), stored.version]
    assert env.ws.gate.policy(env.admin, P).version == stored.version


# -- waivers ------------------------------------------------------------------------------
def _soon(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()


@pytest.mark.parametrize(
    ("rule", "expires", "message", "kind"),
    [
        ("evaluation", None, "needs an expiry", "no_expiry"),
        ("evaluation", "2020-01-01", "in the past", "past"),
        ("evaluation", "2999-01-01", "more than 30 days away", "too_far"),
        ("no_such_rule", "+5", "unknown rule", "unknown_rule"),
    ],
)
def test_waiver_refusals(env: Env, rule: str, expires: str | None, message: str, kind: str) -> None:
    v = env.register("waive-bad")
    when = _soon(5) if expires == "+5" else expires
    with pytest.raises(WaiverRefused, match=message):
        env.ws.gate.waive(env.admin, P, v.ref, rule=rule, reason="accepted risk, see ticket 42",
                          expires=when)  # fmt: skip
    assert not env.ws.gate.waivers(env.admin, P, v.ref)
    refused = env.ws.audit.query(AuditQuery(action="gate.waiver_refused"))
    assert json.loads(refused[-1].details)["kind"] == kind


def test_waiver_granted_by_the_models_author_is_refused(env: Env) -> None:
    v = env.register("adams-model", who="adam")
    with pytest.raises(WaiverRefused, match="author"):
        env.ws.gate.waive(env.actor("adam"), P, v.ref, rule="evaluation",
                          reason="my own model, trust me", expires=_soon(5))  # fmt: skip
    assert not env.ws.gate.waivers(env.admin, P, v.ref)


def test_waiver_by_a_non_admin_is_refused(env: Env) -> None:
    v = env.register("waive-rev")
    with pytest.raises(AccessDenied, match=r"waiver\.grant"):
        env.ws.gate.waive(env.actor("rita"), P, v.ref, rule="evaluation",
                          reason="accepted risk, see ticket 42", expires=_soon(5))  # fmt: skip


def test_a_valid_waiver_turns_a_failing_rule_into_waived(env: Env) -> None:
    v = env.register("waived")
    assert "drift" not in env.ws.gate.check(env.admin, P, v.ref).failed
    before = env.ws.gate.check(env.admin, P, v.ref)
    assert "evaluation" in before.failed
    w = env.ws.gate.waive(env.admin, P, v.ref, rule="evaluation",
                          reason="evaluated offline by the bank's model-risk team",
                          expires=_soon(10))  # fmt: skip
    after = env.ws.gate.check(env.admin, P, v.ref)
    evaluation = next(r for r in after.rules if r.rule == "evaluation")
    assert evaluation.outcome is Outcome.WAIVED and evaluation.waiver == w.id
    assert "evaluation" not in after.failed
    granted = env.ws.audit.query(AuditQuery(action="gate.waiver_granted"))
    assert json.loads(granted[-1].details)["waiver_id"] == w.id
    # a waiver row moved to another rule in the database no longer matches its statement
    with env.ws.engine.begin() as c:
        c.execute(sa.text("UPDATE gate_waivers SET rule = 'approvals' WHERE id = :i"), {"i": w.id})
    assert "approvals" in env.ws.gate.check(env.admin, P, v.ref).failed


def test_card_shows_approvals_and_waivers_from_their_statements(env: Env) -> None:
    from bastion.governance.render import render_html, render_markdown

    v = env.register("carded")
    env.approve("rita", v)
    reason = "evaluated offline <b>by</b> model risk"
    w = env.ws.gate.waive(env.admin, P, v.ref, rule="evaluation", reason=reason, expires=_soon(3))
    card = env.ws.cards.card(env.actor("olga"), P, v.ref)
    facts = card.to_dict()["facts"]
    assert [(a["kind"], a["by"], a["valid"]) for a in facts["approvals"]] == [  # type: ignore[index]
        ("approve", "rita", True)
    ]
    (waiver,) = facts["waivers"]  # type: ignore[index]
    assert (
        waiver["subject"] == "rule evaluation" and waiver["statement_sha256"] == w.statement_digest
    )
    html = render_html(card)
    assert "<b>by</b>" not in html and "&lt;b&gt;by&lt;/b&gt;" in html
    assert "rule evaluation" in render_markdown(card)


def test_direct_stage_change_to_approved_bypassing_the_committee_is_refused(env: Env) -> None:
    from bastion.core.errors import PolicyDenied

    v = env.register("bypass")
    with pytest.raises(PolicyDenied, match="cannot be set to approved directly"):
        env.ws.models.set_stage(env.actor("rita"), P, v.ref, Stage.APPROVED)
    assert env.ws.models.version(env.admin, P, v.ref).stage is not Stage.APPROVED


def test_registering_the_same_bytes_again_does_not_make_a_reviewer_author_of_the_first(
    env: Env,
) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(9).normal(size=(60, 2))
    path = env.work / "twin.joblib"
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), path)
    first = env.ws.models.register(
        env.actor("erin"), RegisterRequest(P, "twin", path, Framework.SKLEARN, ("credit@1",))
    )
    second = env.ws.models.register(
        env.actor("adam"), RegisterRequest(P, "twin", path, Framework.SKLEARN, ("credit@1",))
    )
    assert first.root_digest == second.root_digest
    for v in (first, second):
        env.ws.cards.edit(env.actor("erin"), P, v.ref, CARD)
    assert env.approve("adam", first).counted == 1  # adam registered @2, not @1
    with pytest.raises(ApprovalRefused, match="self-approval"):
        env.approve("adam", second)


def test_promotion_without_complete_approvals_is_refused(env: Env) -> None:
    for name, card in (("promo-one", True), ("promo-nocard", False)):
        v = env.register(name, card=card)
        if card:
            env.approve("rita", v)
        with pytest.raises(ApprovalRefused, match="cannot be promoted"):
            env.ws.approvals.promote(env.actor("ravi"), P, v.ref)
        assert env.ws.models.version(env.admin, P, v.ref).stage is not Stage.APPROVED


def test_promotion_after_waivers_runs_the_gate_again(env: Env) -> None:
    from bastion.governance.errors import GateFailed

    v = env.register("promo-waived")
    env.approve("rita", v)
    assert env.approve("ravi", v).stage != Stage.APPROVED.value  # quorum, but the gate fails
    with pytest.raises(GateFailed, match="evaluation"):
        env.ws.approvals.promote(env.actor("ravi"), P, v.ref)
    for rule in ("evaluation", "fairness", "robustness"):
        env.ws.gate.waive(env.admin, P, v.ref, rule=rule, expires=_soon(5),
                          reason="evaluated offline by model risk, MR-7")  # fmt: skip
    gate = env.ws.approvals.promote(env.actor("ravi"), P, v.ref)
    assert gate.passed and env.ws.models.version(env.admin, P, v.ref).stage is Stage.APPROVED
