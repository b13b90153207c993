"""The gateway's group-committed ``predict`` authorizations (serving/admission.py) on a real
database (SQLite, PostgreSQL): concurrent requests share one audit commit, each decided
alone, and none is released before its decision is durably in the log."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import NotVisible, StorageError
from bastion.serving.admission import BatchedAuthorizer

RESOURCE = "project/default/endpoint/scoring"
WS = Any  # tests/conftest.py's WS (the serving conftest shadows that module name here)


def _actor(w: WS, name: str, role: str | None) -> Actor:
    w.ws.access.create_principal(w.admin, name, PrincipalKind.SERVICE)
    if role:
        w.ws.access.bind(w.admin, name, role, "default")
    return w.ws.access.authenticate(w.ws.access.create_token(w.admin, name).secret)


def _with_rid(actor: Actor, rid: str) -> Actor:
    return Actor(actor.principal_id, actor.name, actor.token_id, rid)


def test_group_committed_authorization_is_durable_before_the_request_goes_on(
        workspace: WS) -> None:
    app = _actor(workspace, "app", "consumer")
    reader = workspace.reopen()  # another connection: sees only what is committed
    auth = BatchedAuthorizer(workspace.ws.access)
    missing: list[str] = []

    async def one(i: int) -> None:
        rid = f"req-{i:03d}"
        decision = await auth.authorize(_with_rid(app, rid), "predict", RESOURCE)
        # released: its entry must already be committed, visible from elsewhere
        found = reader.audit.query(AuditQuery(action="predict", actor="app", limit=1000))
        if not any(e.request_id == rid and e.seq == decision.audit_seq for e in found):
            missing.append(rid)

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(60)))

    asyncio.run(main())
    assert missing == []
    assert sum(auth.batches) == 60 and max(auth.batches) > 1  # shared commits happened
    assert reader.audit.verify().ok


def test_a_refused_principal_in_a_shared_batch_is_refused_alone_and_audited(
        workspace: WS) -> None:
    app = _actor(workspace, "app", "consumer")
    mallory = _actor(workspace, "mallory", None)  # no role in the project
    auth = BatchedAuthorizer(workspace.ws.access)

    async def main() -> list[object]:
        calls = [auth.authorize(_with_rid(mallory if i % 5 == 0 else app, f"r{i}"),
                                "predict", RESOURCE) for i in range(20)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 4 and all(isinstance(r, NotVisible) for r in refused)
    denied = workspace.ws.audit.query(AuditQuery(actor="mallory", outcome="denied"))
    assert sorted(e.request_id for e in denied) == ["r0", "r10", "r15", "r5"]
    assert len(workspace.ws.audit.query(AuditQuery(actor="app", outcome="allowed"))) == 16


def test_failed_audit_commit_lets_no_request_of_the_batch_through(
        workspace: WS, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _actor(workspace, "app", "consumer")
    auth = BatchedAuthorizer(workspace.ws.access)

    def broken(*_: object, **__: object) -> object:
        raise StorageError("the database is gone")

    monkeypatch.setattr(workspace.ws.audit, "append_many", broken)

    async def main() -> list[object]:
        calls = [auth.authorize(_with_rid(app, f"r{i}"), "predict", RESOURCE)
                 for i in range(10)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(main())
    assert all(isinstance(r, StorageError) for r in results), results
