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


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_admitted_request_is_prepared_during_the_commit_but_not_released_before_it(
        workspace: WS) -> None:
    """``admit`` wakes an allowed request once decided, while its decision is still being
    committed; ``recorded()`` returns only once the entry is durably in the log. Another
    connection holds the database's write lock, so the commit cannot finish until it lets
    go."""
    import sqlite3

    from bastion.core.access.cache import AccessCache

    app = _actor(workspace, "app", "consumer")
    reader = workspace.reopen()
    workspace.ws.access.cache = AccessCache(ttl=60)  # as `bastion serve` runs it
    auth = BatchedAuthorizer(workspace.ws.access)
    asyncio.run(auth.authorize(_with_rid(app, "warm"), "predict", RESOURCE))
    blocker = sqlite3.connect(workspace.db_url.removeprefix("sqlite:///"), timeout=60)
    blocker.execute("BEGIN IMMEDIATE")  # the audit commit queues behind this

    async def main() -> None:
        admission = await asyncio.wait_for(
            auth.admit(_with_rid(app, "early"), "predict", RESOURCE), 10)
        recorded = asyncio.ensure_future(admission.recorded())
        await asyncio.sleep(0.5)
        assert not recorded.done(), "recorded() returned while the commit was blocked"
        blocker.rollback()
        decision = await asyncio.wait_for(recorded, 30)
        found = reader.audit.query(AuditQuery(action="predict", actor="app", limit=10))
        assert any(e.request_id == "early" and e.seq == decision.audit_seq for e in found)

    try:
        asyncio.run(main())
    finally:
        blocker.close()


def test_admitted_request_whose_audit_commit_fails_is_never_recorded_as_answered(
        workspace: WS, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _actor(workspace, "app", "consumer")
    auth = BatchedAuthorizer(workspace.ws.access)

    def broken(*_: object, **__: object) -> object:
        raise StorageError("the database is gone")

    monkeypatch.setattr(workspace.ws.audit, "append_many", broken)

    async def main() -> list[object]:
        async def one(i: int) -> object:
            admission = await auth.admit(_with_rid(app, f"r{i}"), "predict", RESOURCE)
            return await admission.recorded()  # where the gateway would answer
        return list(await asyncio.gather(*(one(i) for i in range(10)),
                                         return_exceptions=True))

    results = asyncio.run(main())
    assert all(isinstance(r, StorageError) for r in results), results


def test_refused_principal_is_not_admitted_and_its_refusal_is_recorded_first(
        workspace: WS) -> None:
    mallory = _actor(workspace, "mallory", None)
    reader = workspace.reopen()
    auth = BatchedAuthorizer(workspace.ws.access)

    async def main() -> None:
        with pytest.raises(NotVisible):
            await auth.admit(_with_rid(mallory, "m1"), "predict", RESOURCE)
        denied = reader.audit.query(AuditQuery(actor="mallory", outcome="denied"))
        assert [e.request_id for e in denied] == ["m1"]

    asyncio.run(main())


def test_role_revoked_between_cached_admission_and_commit_refuses_the_request(
        workspace: WS) -> None:
    """The access cache lets an allowed request go on at once; the audited decision of its
    batch is made afterwards and is the one that counts: a role revoked in between turns
    ``recorded()`` into the refusal, so the request is never answered."""
    from bastion.core.access.cache import AccessCache
    from bastion.core.errors import AccessDenied

    app = _actor(workspace, "app", "consumer")
    workspace.ws.access.cache = AccessCache(ttl=60)
    auth = BatchedAuthorizer(workspace.ws.access)

    async def main() -> None:
        await auth.authorize(_with_rid(app, "warm"), "predict", RESOURCE)  # cache it
        admission = await auth.admit(_with_rid(app, "raced"), "predict", RESOURCE)
        # no await in between: the batch has not been decided yet
        workspace.ws.access.unbind(workspace.admin, "app", "consumer", "default")
        with pytest.raises((AccessDenied, NotVisible)):
            await admission.recorded()

    asyncio.run(main())
    denied = workspace.ws.audit.query(AuditQuery(actor="app", outcome="denied"))
    assert [e.request_id for e in denied] == ["raced"]
