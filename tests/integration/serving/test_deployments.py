"""Deployments on SQLite and PostgreSQL: the gate, re-verification, history, rollback,
revocation; every refusal audited and changing nothing.  (Tests run in file order on one
workspace per database: the key-revocation test comes last.)"""

from __future__ import annotations

import json

import pytest
from serving_fixtures import GATE_POLICY, REVIEWED_POLICY, Credit

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, InputError
from bastion.model_security.registry import signing_purpose
from bastion.serving.errors import DeploymentRefused
from bastion.serving.values import DeploymentState

P = "default"


def _refusals(c: Credit, endpoint: str) -> list[dict[str, object]]:
    entries = c.ws.audit.query(AuditQuery(action="deployment.refused",
                                          resource=f"project/{P}/endpoint/{endpoint}"))
    return [json.loads(e.details) for e in entries]


def test_deploy_records_the_verified_digest_schema_and_history(credit: Credit) -> None:
    d = credit.ws.deployments.deploy(credit.admin, P, credit.v1.ref, "scoring")
    assert (d.state, d.seq, d.ref) == (DeploymentState.ACTIVE, 1, credit.v1.ref)
    assert d.root_digest == credit.v1.root_digest
    assert d.schema.columns == tuple(credit.features)
    home = next(f for f in d.schema.fields if f.name == "Home")
    assert home.allowed and "owner" in home.allowed
    assert json.loads(d.gate)["passed"] is True
    created = credit.ws.audit.query(AuditQuery(action="deployment.created"))
    assert json.loads(created[-1].details)["root_digest"] == credit.v1.root_digest
    status = credit.ws.deployments.status(credit.admin, P, "scoring")
    assert status.active == d and [h.ref for h in status.history] == [credit.v1.ref]


def test_deploy_of_an_unapproved_version_is_refused_by_the_gate(credit: Credit) -> None:
    ws = credit.ws
    ws.gate.set_policy(credit.admin, P, REVIEWED_POLICY)  # now a review is required
    try:
        with pytest.raises(DeploymentRefused) as e:
            ws.deployments.deploy(credit.admin, P, credit.v2.ref, "scoring")
    finally:
        ws.gate.set_policy(credit.admin, P, GATE_POLICY)
    assert "release gate refused scorer@2" in e.value.message and "approvals" in e.value.message
    assert ws.deployments.active(P, "scoring").ref == credit.v1.ref  # type: ignore[union-attr]
    assert _refusals(credit, "scoring")[-1]["model"] == credit.v2.ref
    checked = ws.audit.query(AuditQuery(action="gate.checked"))
    assert json.loads(checked[-1].details)["passed"] is False


def test_deploy_by_a_principal_without_deployment_create_is_refused(credit: Credit) -> None:
    ws = credit.ws
    ws.access.create_principal(credit.admin, "carl", PrincipalKind.USER)
    ws.access.bind(credit.admin, "carl", "consumer", P)
    carl = ws.access.authenticate(ws.access.create_token(credit.admin, "carl").secret)
    with pytest.raises(AccessDenied):
        ws.deployments.deploy(carl, P, credit.v2.ref, "scoring")
    assert ws.deployments.active(P, "scoring").ref == credit.v1.ref  # type: ignore[union-attr]


def test_deploy_of_an_unversioned_ref_is_refused(credit: Credit) -> None:
    with pytest.raises(InputError):
        credit.ws.deployments.deploy(credit.admin, P, "scorer", "scoring")


def test_second_deploy_supersedes_and_rollback_returns_to_it(credit: Credit) -> None:
    ws = credit.ws
    d2 = ws.deployments.deploy(credit.admin, P, credit.v2.ref, "scoring")
    assert d2.seq == 2
    history = ws.deployments.status(credit.admin, P, "scoring").history
    assert [h.state for h in history] == [DeploymentState.SUPERSEDED, DeploymentState.ACTIVE]
    back = ws.deployments.rollback(credit.admin, P, "scoring")
    assert (back.ref, back.seq, back.reason) == (credit.v1.ref, 3, "rollback to #1")
    states = [h.state for h in ws.deployments.status(credit.admin, P, "scoring").history]
    assert states == [DeploymentState.SUPERSEDED, DeploymentState.ROLLED_BACK,
                      DeploymentState.ACTIVE]
    # a version named explicitly may be any this endpoint served that still verifies
    named = ws.deployments.rollback(credit.admin, P, "scoring", to=credit.v2.version)
    assert (named.ref, named.seq) == (credit.v2.ref, 4)
    again = ws.deployments.rollback(credit.admin, P, "scoring", to=credit.v1.version)
    assert (again.ref, again.seq) == (credit.v1.ref, 5)
    rolled = ws.audit.query(AuditQuery(action="deployment.rolled_back"))
    assert json.loads(rolled[-1].details)["to"] == credit.v1.ref


def test_rollback_to_a_version_the_endpoint_never_served_is_refused(credit: Credit) -> None:
    ws = credit.ws
    ws.deployments.deploy(credit.admin, P, credit.v2.ref, "fresh")
    with pytest.raises(DeploymentRefused) as e:
        ws.deployments.rollback(credit.admin, P, "fresh", to=credit.v1.version)
    assert "never served" in e.value.message
    assert ws.deployments.active(P, "fresh").ref == credit.v2.ref  # type: ignore[union-attr]
    assert _refusals(credit, "fresh")[-1]["rollback_to"] == credit.v1.version


def test_revoked_signing_key_refuses_deploys_and_takes_versions_out_of_service(
    credit: Credit,
) -> None:
    """Revoking the key takes every version it signed out of service at once (in the
    database every gateway refreshes from each second), not at the gateways' next
    periodic re-verification."""
    ws = credit.ws
    key_id = credit.v1.signer_key_id
    assert any(k.key_id == key_id for k in ws.keyring.signing_keys(signing_purpose(P)))
    assert ws.deployments.active(P, "scoring") is not None
    taken_out = ws.revoke_signing_key(credit.admin, key_id)
    assert sorted(taken_out) == [f"{P}/fresh ({credit.v2.ref})", f"{P}/scoring ({credit.v1.ref})"]
    assert ws.deployments.active(P, "scoring") is None  # at once
    assert ws.deployments.active(P, "fresh") is None
    with pytest.raises(DeploymentRefused) as e:  # the gate's signature rule fails first
        ws.deployments.deploy(credit.admin, P, credit.v2.ref, "other")
    assert "signature" in e.value.message
    assert _refusals(credit, "other")[-1]["model"] == credit.v2.ref
    assert ws.deployments.enforce_revocations(credit.admin) == []  # nothing left to do
    last = ws.deployments.status(credit.admin, P, "scoring").history[-1]
    assert last.state is DeploymentState.REVOKED and last.end_reason
    assert ws.audit.query(AuditQuery(action="deployment.revoked"))
