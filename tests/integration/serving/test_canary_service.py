"""Canary releases through the services on real SQLite and PostgreSQL: the deploy path and
its refusals, rollback aborting a canary, one decision when two replicas decide at once,
promotion, and the feedback endpoint's refusals."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from canary_fixtures import fewer_features_version
from serving_fixtures import GATE_POLICY, REVIEWED_POLICY, Credit

from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import Conflict, InputError, NotFound
from bastion.serving._adapters.sql_canary import SqlCanaryRepository
from bastion.serving.canary import CanaryService
from bastion.serving.canary_values import CanaryState, canary_plan
from bastion.serving.errors import DeploymentRefused
from bastion.serving.values import DeploymentState

PLAN = canary_plan(20, promote_after=60)


def _fresh(c: Credit) -> str:
    """A new endpoint serving v1 (each test its own: the fixture is per module)."""
    name = f"ep-{uuid.uuid4().hex[:8]}"
    c.ws.deployments.deploy(c.admin, "default", c.v1.ref, name)
    return name


def _audit(c: Credit, action: str, endpoint: str) -> list[Any]:
    return [e for e in c.ws.audit.query(AuditQuery(action=action))
            if e.resource.endswith(f"/endpoint/{endpoint}")]


def _samples(c: Credit, canary_id: str, arm: str, n: int, *, outcome: str = "ok",
             labels: tuple[str, ...] = ("good", "bad", "good")) -> None:
    SqlCanaryRepository(c.ws.engine).add_samples([{
        "id": uuid.uuid4().hex, "canary_id": canary_id, "arm": arm,
        "request_id": uuid.uuid4().hex, "principal": "admin", "outcome": outcome,
        "latency_ms": 4.0, "rows": 1, "ood": -1,
        "labels": json.dumps([] if outcome != "ok" else [labels[i % len(labels)]]),
        "created_at": f"2026-01-01T00:00:{i % 60:02d}.{i:06d}"} for i in range(n)])


def test_canary_deploy_runs_the_gate_and_serves_beside_the_stable_version(
        credit: Credit) -> None:
    ep = _fresh(credit)
    d = credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep, canary=PLAN)
    assert d.state is DeploymentState.CANARY and d.ref == credit.v2.ref
    status = credit.ws.deployments.status(credit.admin, "default", ep)
    assert status.active is not None and status.active.ref == credit.v1.ref
    assert status.canary is not None and status.canary.state is CanaryState.RUNNING
    assert status.canary.plan.weight == 20 and status.canary.deployment_id == d.id
    assert json.loads(json.dumps(status.to_dict()))["canary"]["weight"] == 20
    assert len(_audit(credit, "deployment.canary.started", ep)) == 1


def test_deploy_over_a_running_canary_is_refused(credit: Credit) -> None:
    ep = _fresh(credit)
    credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep, canary=PLAN)
    before = credit.ws.deployments.status(credit.admin, "default", ep)
    for plan in (None, PLAN):
        with pytest.raises(DeploymentRefused, match="running canary"):
            credit.ws.deployments.deploy(credit.admin, "default", credit.v1.ref, ep,
                                         canary=plan)
    after = credit.ws.deployments.status(credit.admin, "default", ep)
    assert after.history == before.history and after.canary == before.canary
    refused = _audit(credit, "deployment.refused", ep)
    assert len(refused) == 2 and all("running canary" in e.details for e in refused)


def test_canary_of_the_version_in_service_or_without_a_stable_one_is_refused(
        credit: Credit) -> None:
    ep = _fresh(credit)
    with pytest.raises(DeploymentRefused, match="already the version in service"):
        credit.ws.deployments.deploy(credit.admin, "default", credit.v1.ref, ep, canary=PLAN)
    with pytest.raises(DeploymentRefused, match="no version in service"):
        credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref,
                                     f"new-{uuid.uuid4().hex[:6]}", canary=PLAN)


def test_canary_taking_other_input_fields_is_refused(credit: Credit, tmp_path: Path) -> None:
    ep = _fresh(credit)
    other = fewer_features_version(credit, tmp_path / "fewer")
    with pytest.raises(DeploymentRefused, match="other input fields"):
        credit.ws.deployments.deploy(credit.admin, "default", other.ref, ep, canary=PLAN)
    assert credit.ws.deployments.status(credit.admin, "default", ep).canary is None


def test_unapproved_canary_is_refused_by_the_release_gate(credit: Credit) -> None:
    ep = _fresh(credit)
    credit.ws.gate.set_policy(credit.admin, "default", REVIEWED_POLICY)
    try:
        with pytest.raises(DeploymentRefused, match="approvals"):
            credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep,
                                         canary=PLAN)
    finally:
        credit.ws.gate.set_policy(credit.admin, "default", GATE_POLICY)
    status = credit.ws.deployments.status(credit.admin, "default", ep)
    assert status.canary is None and len(status.history) == 1


def test_rollback_during_a_canary_aborts_it_and_keeps_the_stable_version(
        credit: Credit) -> None:
    ep = _fresh(credit)
    credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep, canary=PLAN)
    back = credit.ws.deployments.rollback(credit.admin, "default", ep)
    assert back.ref == credit.v1.ref
    status = credit.ws.deployments.status(credit.admin, "default", ep)
    assert status.canary is not None and status.canary.state is CanaryState.ABORTED
    assert [d.state for d in status.history] == [DeploymentState.ACTIVE,
                                                 DeploymentState.ROLLED_BACK]
    assert len(_audit(credit, "deployment.canary.aborted", ep)) == 1
    # a new canary may start afterwards
    credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep, canary=PLAN)


def test_two_replicas_deciding_a_rollback_at_once_make_one_decision(credit: Credit) -> None:
    ep = _fresh(credit)
    credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep, canary=PLAN)
    canary = SqlCanaryRepository(credit.ws.engine).running("default", ep)
    assert canary is not None
    _samples(credit, canary.id, "canary", 60, outcome="error")
    _samples(credit, canary.id, "stable", 60)
    replicas = [CanaryService(credit.ws.access, SqlCanaryRepository(credit.ws.engine))
                for _ in range(4)]
    barrier = threading.Barrier(len(replicas))
    results: list[object] = []

    def decide(s: CanaryService) -> None:
        barrier.wait()
        results.append(s.evaluate("default", ep))

    threads = [threading.Thread(target=decide, args=(s,)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and sum(r is not None for r in results) == 1
    entries = _audit(credit, "deployment.canary.rolled_back", ep)
    assert len(entries) == 1
    evidence = json.loads(entries[0].details)
    assert evidence["failed"] == ["error_rate"] and evidence["model"] == credit.v2.ref
    status = credit.ws.deployments.status(credit.admin, "default", ep)
    assert status.canary is not None and status.canary.state is CanaryState.ROLLED_BACK
    assert status.active is not None and status.active.ref == credit.v1.ref


def test_healthy_canary_is_promoted_after_n_requests_and_can_be_rolled_back(
        credit: Credit) -> None:
    ep = _fresh(credit)
    credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep, canary=PLAN)
    canary = SqlCanaryRepository(credit.ws.engine).running("default", ep)
    assert canary is not None
    _samples(credit, canary.id, "canary", 59)
    _samples(credit, canary.id, "stable", 200)
    assert credit.ws.canaries.evaluate("default", ep) is None  # 59 < promote_after
    _samples(credit, canary.id, "canary", 1)
    decided = credit.ws.canaries.evaluate("default", ep)
    assert decided is not None and decided.state is CanaryState.PROMOTED
    status = credit.ws.deployments.status(credit.admin, "default", ep)
    assert status.active is not None and status.active.ref == credit.v2.ref
    assert len(_audit(credit, "deployment.canary.promoted", ep)) == 1
    assert credit.ws.deployments.rollback(credit.admin, "default", ep).ref == credit.v1.ref


# -- feedback -------------------------------------------------------------------------------
def _prediction(c: Credit, ep: str, request_id: str, principal: str) -> None:
    c.ws.deployments.log_predictions([{
        "id": uuid.uuid4().hex, "request_id": request_id, "project": "default",
        "endpoint": ep, "deployment_id": "d", "model": "scorer", "version": 1, "rows": 1,
        "latency_ms": 1.0, "outcome": "ok", "features_digest": "x", "principal": principal,
        "created_at": "2026-01-01T00:00:00"}])


def test_feedback_for_an_unknown_request_id_is_refused(credit: Credit) -> None:
    ep = _fresh(credit)
    with pytest.raises(NotFound):
        credit.ws.canaries.feedback(credit.admin, "default", ep, "never-made", "good")
    with pytest.raises(InputError):
        credit.ws.canaries.feedback(credit.admin, "default", ep, "bad id\n", "good")
    assert len(_audit(credit, "predict.feedback.refused", ep)) == 2


def test_feedback_for_another_principals_request_is_refused(credit: Credit) -> None:
    ep = _fresh(credit)
    _prediction(credit, ep, "r-foreign", "someone-else")
    with pytest.raises(NotFound):  # the same answer as for an unknown id
        credit.ws.canaries.feedback(credit.admin, "default", ep, "r-foreign", "good")
    other = _fresh(credit)
    _prediction(credit, other, "r-other-endpoint", credit.admin.name)
    with pytest.raises(NotFound):
        credit.ws.canaries.feedback(credit.admin, "default", ep, "r-other-endpoint", "bad")


def test_second_label_for_one_request_is_refused(credit: Credit) -> None:
    ep = _fresh(credit)
    _prediction(credit, ep, "r-1", credit.admin.name)
    receipt = credit.ws.canaries.feedback(credit.admin, "default", ep, "r-1", "good")
    assert receipt.label == "good"
    with pytest.raises(Conflict):
        credit.ws.canaries.feedback(credit.admin, "default", ep, "r-1", "bad")
    with pytest.raises(InputError):
        credit.ws.canaries.feedback(credit.admin, "default", ep, "r-1", "x" * 201)


def test_canary_wrong_on_feedback_labels_is_rolled_back_by_accuracy(credit: Credit) -> None:
    """Same label mix in both arms (no shift), but the canary's answers contradict the
    labels its callers posted: the accuracy check (a SQL join of samples and feedback)."""
    ep = _fresh(credit)
    credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep,
                                 canary=canary_plan(20, promote_after=1000))
    repo = SqlCanaryRepository(credit.ws.engine)
    canary = repo.running("default", ep)
    assert canary is not None
    rows, feedback = [], []
    for arm in ("canary", "stable"):
        for i in range(60):
            predicted = "good" if i % 2 else "bad"
            truth = predicted if arm == "stable" else ("bad" if i % 2 else "good")
            rid = f"{arm}-{i}"
            rows.append({"id": uuid.uuid4().hex, "canary_id": canary.id, "arm": arm,
                         "request_id": rid, "principal": "app", "outcome": "ok",
                         "latency_ms": 4.0, "rows": 1, "ood": -1,
                         "labels": json.dumps([predicted]),
                         "created_at": f"2026-01-01T00:00:{i:02d}"})
            feedback.append({"id": uuid.uuid4().hex, "project": "default", "endpoint": ep,
                             "request_id": rid, "principal": "app", "label": truth,
                             "created_at": "2026-01-01T00:01:00"})
    repo.add_samples(rows)
    assert credit.ws.canaries.evaluate("default", ep) is None  # no labels yet: healthy
    for f in feedback:
        assert repo.add_feedback(f)
    decided = credit.ws.canaries.evaluate("default", ep)
    assert decided is not None and decided.state is CanaryState.ROLLED_BACK
    assert decided.analysis is not None and decided.analysis.failed == ("accuracy",)


def test_revoked_signing_key_rolls_back_a_running_canary(credit: Credit) -> None:
    """Last in the module: revoking the key takes everything it signed out of service."""
    ep = _fresh(credit)
    canary = credit.ws.deployments.deploy(credit.admin, "default", credit.v2.ref, ep,
                                          canary=PLAN)
    taken_out = credit.ws.revoke_signing_key(credit.admin, credit.v2.signer_key_id)
    assert f"default/{ep} ({credit.v2.ref})" in taken_out
    status = credit.ws.deployments.status(credit.admin, "default", ep)
    assert status.canary is not None and status.canary.state is CanaryState.ROLLED_BACK
    assert "no longer verifies" in (status.canary.end_reason or "")
    assert next(d for d in status.history if d.id == canary.id).state is (
        DeploymentState.ROLLED_BACK)
    assert len(_audit(credit, "deployment.canary.rolled_back", ep)) == 1
