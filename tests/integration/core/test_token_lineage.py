"""Tokens cannot outlive their parent (SQLite and PostgreSQL).

The attack: a leaked one-day token, even of a principal with no role, issues
itself a never-expiring token, which then survives revocation of the leaked one.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, AuthenticationFailed
from conftest import WS


def _user_with_day_token(w: WS, name: str) -> tuple[Actor, str]:
    w.ws.access.create_principal(w.admin, name, PrincipalKind.USER)
    issued = w.ws.access.create_token(w.admin, name, expires_in=dt.timedelta(days=1))
    return w.ws.access.authenticate(issued.secret), issued.secret


def test_leaked_day_token_cannot_mint_a_never_expiring_token(workspace: WS) -> None:
    mallory, _ = _user_with_day_token(workspace, "mallory")  # no role at all
    with pytest.raises(AccessDenied, match=r"token\.create_unexpiring"):
        workspace.ws.access.create_token(mallory, "mallory", expires_in=None)
    denied = workspace.ws.audit.query(AuditQuery(action="token.create_unexpiring"))
    assert denied and denied[-1].outcome == "denied"


def test_self_issued_token_expires_no_later_than_its_parent(workspace: WS) -> None:
    mallory, _ = _user_with_day_token(workspace, "mallory")
    parent = workspace.ws.access.tokens(mallory, "mallory")[0]
    child = workspace.ws.access.create_token(mallory, "mallory", expires_in=dt.timedelta(days=365))
    assert child.record.expires_at is not None and parent.expires_at is not None
    assert dt.datetime.fromisoformat(child.record.expires_at) <= dt.datetime.fromisoformat(
        parent.expires_at
    )
    assert child.record.parent_id == parent.id


def test_child_token_dies_with_its_revoked_parent(workspace: WS) -> None:
    access = workspace.ws.access
    mallory, _ = _user_with_day_token(workspace, "mallory")
    child = access.create_token(mallory, "mallory")
    grandchild = access.create_token(access.authenticate(child.secret), "mallory")
    access.revoke_token(workspace.admin, mallory.token_id or "")
    for secret in (child.secret, grandchild.secret):
        with pytest.raises(AuthenticationFailed, match="revoked"):
            access.authenticate(secret)
    cascaded = workspace.ws.audit.query(AuditQuery(action="token.revoked"))
    assert {e.resource for e in cascaded} == {
        f"system/tokens/{child.record.id}",
        f"system/tokens/{grandchild.record.id}",
    }


def test_revoked_parent_cannot_issue_a_child_in_a_race(workspace: WS) -> None:
    # The parent is revoked after it authenticated but before the child is stored.
    access = workspace.ws.access
    mallory, _ = _user_with_day_token(workspace, "mallory")
    with workspace.ws.engine.begin() as c:
        c.execute(
            sa.text("UPDATE tokens SET revoked_at = '2026-01-01T00:00:00+00:00' WHERE id = :i"),
            {"i": mallory.token_id},
        )
    with pytest.raises(AuthenticationFailed, match="revoked"):
        access.create_token(mallory, "mallory")
    assert all(t.parent_id != mallory.token_id for t in access.tokens(workspace.admin, "mallory"))


def test_concurrent_issue_and_revoke_leave_no_live_child(workspace: WS) -> None:
    access = workspace.ws.access
    other = workspace.reopen().access
    for round_ in range(5):
        name = f"m{round_}"
        actor, _ = _user_with_day_token(workspace, name)
        issued: list[str] = []

        def mint(actor: Actor = actor, issued: list[str] = issued) -> None:
            for _ in range(10):
                try:
                    issued.append(other.create_token(actor, actor.name).secret)
                except AuthenticationFailed:
                    return

        t = threading.Thread(target=mint)
        t.start()
        access.revoke_token(workspace.admin, actor.token_id or "")
        t.join()
        for secret in issued:
            with pytest.raises(AuthenticationFailed):
                access.authenticate(secret)


def test_admin_may_issue_never_expiring_service_tokens_with_lineage(workspace: WS) -> None:
    access = workspace.ws.access
    access.create_principal(workspace.admin, "svc", PrincipalKind.SERVICE)
    issued = access.create_token(workspace.admin, "svc", expires_in=None)
    assert issued.record.expires_at is None
    assert issued.record.parent_id == workspace.admin.token_id
