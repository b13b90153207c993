"""RBAC on a real database: deny by default, scoping, no self-grant, token life cycle."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bastion.core.access.roles import ACTIONS, PERMISSIONS, Role
from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import (
    AccessDenied,
    AuthenticationFailed,
    Conflict,
    InputError,
    NotFound,
    NotVisible,
)
from conftest import WS


def user(w: WS, name: str, role: str | None = None, project: str = "default") -> Actor:
    w.ws.access.create_principal(w.admin, name, PrincipalKind.USER)
    if role is not None:
        w.ws.access.bind(w.admin, name, role, project)
    return w.ws.access.authenticate(w.ws.access.create_token(w.admin, name).secret)


def denials(w: WS, actor: str) -> list[tuple[str, str]]:
    return [
        (e.action, e.resource) for e in w.ws.audit.query(AuditQuery(actor=actor, outcome="denied"))
    ]


def test_deny_by_default_and_denial_is_audited(workspace: WS) -> None:
    eve = user(workspace, "eve")
    with pytest.raises(NotVisible) as e:  # no role in the project: "not found" (404)
        workspace.ws.objects.list(eve, "default")
    assert e.value.message == "project/default/objects not found"
    with pytest.raises(AccessDenied):
        workspace.ws.access.principals(eve)
    assert denials(workspace, "eve") == [
        ("blob.read", "project/default/objects"),
        ("principal.read", "system/principals"),
    ]
    entry = workspace.ws.audit.query(AuditQuery(actor="eve", outcome="denied"))[0]
    assert entry.request_id == eve.request_id


def test_role_permissions_match_the_table(workspace: WS) -> None:
    wrong = []
    for role in Role:
        if role is Role.ADMIN:
            continue
        actor = user(workspace, f"user-{role.value}", role.value)
        for action in ACTIONS:
            try:
                workspace.ws.access.authorize(actor, action, "project/default/thing")
                allowed = True
            except AccessDenied:
                allowed = False
            if allowed != (action in PERMISSIONS[role]):
                wrong.append((role.value, action, allowed))
    assert not wrong, wrong


def test_project_scoping_role_in_a_gives_nothing_in_b(workspace: WS) -> None:
    access = workspace.ws.access
    access.create_project(workspace.admin, "credit")
    access.create_project(workspace.admin, "fraud")
    steward = user(workspace, "sam", "data-steward", "credit")
    assert access.authorize(steward, "dataset.read", "project/credit/dataset/loans").allowed
    with pytest.raises(AccessDenied):
        access.authorize(steward, "dataset.read", "project/fraud/dataset/cards")
    with pytest.raises(AccessDenied):  # system resources are outside any project
        access.authorize(steward, "dataset.read", "system/datasets")
    # A prefix trick does not widen the scope.
    with pytest.raises(AccessDenied):
        access.authorize(steward, "dataset.read", "project/credit-x/dataset/loans")
    with pytest.raises(AccessDenied):
        access.authorize(steward, "dataset.read", "projectcredit/dataset/loans")


def test_self_grant_refused_even_for_admin(workspace: WS) -> None:
    access = workspace.ws.access
    with pytest.raises(AccessDenied):
        access.bind(workspace.admin, "admin", "auditor", "default")
    with pytest.raises(AccessDenied):
        access.unbind(workspace.admin, "admin", "admin", "*")
    project_admin = user(workspace, "pat", "admin", "default")
    with pytest.raises(AccessDenied):
        access.bind(project_admin, "pat", "data-steward", "default")
    assert ("role.bind", "project/default/roles/pat") in denials(workspace, "pat")


def test_project_admin_cannot_bind_global_roles(workspace: WS) -> None:
    access = workspace.ws.access
    access.create_project(workspace.admin, "credit")
    pat = user(workspace, "pat", "admin", "credit")
    access.create_principal(workspace.admin, "bob", PrincipalKind.USER)
    assert access.bind(pat, "bob", "reviewer", "credit").project == "credit"
    with pytest.raises(AccessDenied):
        access.bind(pat, "bob", "admin", "*")
    with pytest.raises(AccessDenied):
        access.bind(pat, "bob", "reviewer", "default")
    with pytest.raises(AccessDenied):  # nor create principals (a system action)
        access.create_principal(pat, "mallory", PrincipalKind.USER)


def test_token_expiry_attack_refused(workspace: WS) -> None:
    access = workspace.ws.access
    access.create_principal(workspace.admin, "temp", PrincipalKind.SERVICE)
    issued = access.create_token(workspace.admin, "temp", expires_in=dt.timedelta(hours=1))
    assert access.authenticate(issued.secret).name == "temp"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat(timespec="seconds")
    with workspace.ws.engine.begin() as c:
        c.execute(
            sa.text("UPDATE tokens SET expires_at = :p WHERE id = :i"),
            {"p": past, "i": issued.record.id},
        )
    with pytest.raises(AuthenticationFailed, match="expired"):
        access.authenticate(issued.secret)
    with pytest.raises(InputError):
        access.create_token(workspace.admin, "temp", expires_in=dt.timedelta(0))


def test_revoked_token_refused(workspace: WS) -> None:
    access = workspace.ws.access
    bob = user(workspace, "bob", "auditor")
    second = access.create_token(workspace.admin, "bob")
    access.revoke_token(workspace.admin, second.record.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        access.authenticate(second.secret)
    # Self-service: bob may revoke his own token but not the admin's, and to him
    # the admin's token reads exactly like one that does not exist.
    own = access.create_token(bob, "bob")
    access.revoke_token(bob, own.record.id)
    with pytest.raises(NotFound) as theirs:
        access.revoke_token(bob, workspace.admin.token_id or "")
    with pytest.raises(NotFound) as missing:
        access.revoke_token(bob, "0123456789abcdef")
    assert str(theirs.value).replace(workspace.admin.token_id or "", "X") == str(
        missing.value
    ).replace("0123456789abcdef", "X")
    with pytest.raises(NotFound):
        access.revoke_token(workspace.admin, "0123456789abcdef")


GARBAGE_TOKENS = [
    None,
    "",
    " ",
    "garbage",
    "bst_",
    "bst__secret",
    "bst_id_",
    "bst_a_b_c",
    "Bearer bst_x_y",
    "xyz_0123456789abcdef_secret",
    "bst_0123456789abcdef_wrong",
    "bst_" + "a" * 5000 + "_x",
    "bst_' OR 1=1 --_x",
    # non-ASCII and control characters (HTTP headers are latin-1 decoded)
    "bst_abc_\u00e9",
    "bst_abcd_\udcff",
    "bst_\x00_x",
    "bst_ab\x00_x",
    "bst_0123456789abcdef_\x00",
]


def test_garbage_and_malformed_tokens_refused(workspace: WS) -> None:
    escaped = []
    for token in GARBAGE_TOKENS:
        try:
            workspace.ws.access.authenticate(token)
            escaped.append((token, "accepted"))
        except AuthenticationFailed:
            pass
        except Exception as e:  # anything but a 401-type error is a defect
            escaped.append((token, f"{type(e).__name__}: {e}"))
    assert not escaped, escaped


def test_token_secret_for_another_id_refused(workspace: WS) -> None:
    access = workspace.ws.access
    user(workspace, "bob")
    other = access.create_token(workspace.admin, "bob")
    _, tid, _ = other.secret.split("_")
    _, _, admin_secret = workspace.token.split("_")
    with pytest.raises(AuthenticationFailed):
        access.authenticate(f"bst_{tid}_{admin_secret}")


def test_unknown_id_and_wrong_secret_fail_identically(workspace: WS) -> None:
    """The constant-time path: an unknown token id and a wrong secret look the same."""
    _, tid, secret = workspace.token.split("_")
    with pytest.raises(AuthenticationFailed) as unknown:
        workspace.ws.access.authenticate(f"bst_{'0' * len(tid)}_{secret}")
    with pytest.raises(AuthenticationFailed) as wrong:
        workspace.ws.access.authenticate(f"bst_{tid}_{'x' * len(secret)}")
    assert unknown.value.message == wrong.value.message
    assert unknown.value.hint == wrong.value.hint


def test_disabled_principal_refused(workspace: WS) -> None:
    access = workspace.ws.access
    bob = user(workspace, "bob", "auditor")
    token = access.create_token(workspace.admin, "bob").secret
    access.disable_principal(workspace.admin, "bob")
    with pytest.raises(AuthenticationFailed, match="disabled"):
        access.authenticate(token)
    # An Actor resolved before the disable is refused at the decision point too.
    with pytest.raises(AccessDenied):
        access.authorize(bob, "audit.read", "system/audit")
    with pytest.raises(InputError):
        access.disable_principal(workspace.admin, "admin")


def test_duplicate_names_and_unknown_roles(workspace: WS) -> None:
    access = workspace.ws.access
    user(workspace, "bob", "auditor")
    with pytest.raises(Conflict):
        access.create_principal(workspace.admin, "bob", PrincipalKind.USER)
    with pytest.raises(Conflict):
        access.bind(workspace.admin, "bob", "auditor", "default")
    with pytest.raises(InputError):
        access.bind(workspace.admin, "bob", "superuser", "default")
    with pytest.raises(NotFound):
        access.bind(workspace.admin, "bob", "auditor", "no-such-project")
    for bad in ["Bob", "../etc", "a b", "", "x" * 101]:
        with pytest.raises(InputError):
            access.create_principal(workspace.admin, bad, PrincipalKind.USER)


def test_every_decision_is_logged_with_actor_action_resource_outcome_request(workspace: WS) -> None:
    access = workspace.ws.access
    auditor = user(workspace, "ann", "auditor", "*").with_request("req-42")
    allowed = access.authorize(auditor, "audit.read", "system/audit")
    with pytest.raises(AccessDenied):
        access.authorize(auditor, "keys.rotate", "system/keys")
    entries = workspace.ws.audit.query(AuditQuery(actor="ann", after_seq=allowed.audit_seq - 1))
    got = [(e.seq, e.actor, e.action, e.resource, e.outcome, e.request_id) for e in entries]
    assert got == [
        (allowed.audit_seq, "ann", "audit.read", "system/audit", "allowed", "req-42"),
        (allowed.audit_seq + 1, "ann", "keys.rotate", "system/keys", "denied", "req-42"),
    ]
    assert all(e.ts and '"reason"' in e.details for e in entries)
