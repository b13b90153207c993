"""A request the access cache admitted but whose audited decision (the batch's, the one
that counts) refuses it leaves nothing behind but its refusal, on the error paths too: no
prediction-log row, no ``predict.refused`` entry, no refusal counted in the metrics.
The gateway is driven as the predict route drives it (admit, then predict with the
admission), on a real workspace and a real sandboxed worker."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest
from serving_fixtures import Credit

from bastion.core.access.cache import AccessCache
from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, NotVisible
from bastion.serving.gateway import Gateway, GatewayOptions
from bastion.serving.ratelimit import RateLimitOptions
from bastion.serving.sandbox import MIB, SandboxLimits

P = "default"


def _consumer(c: Credit, name: str) -> Actor:
    c.ws.access.create_principal(c.admin, name, PrincipalKind.SERVICE)
    c.ws.access.bind(c.admin, name, "consumer", P)
    return c.ws.access.authenticate(c.ws.access.create_token(c.admin, name).secret)


def _rid(actor: Actor, rid: str) -> Actor:
    return Actor(actor.principal_id, actor.name, actor.token_id, rid)


@pytest.mark.parametrize("credit", ["sqlite"], indirect=True)
def test_role_revoked_before_commit_with_invalid_input_leaves_no_log_row_nor_refusal_entry(
        credit: Credit) -> None:
    c = credit
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, "revoked-race")
    app = _consumer(c, "raceapp")
    c.ws.access.cache = AccessCache(ttl=60)  # as `bastion serve` runs it
    gw = Gateway(c.ws.access, c.ws.deployments, c.ws.models, c.ws.scratch.workdir,
                 functools.partial(c.ws.keyring.keyed_digest, "prediction-features"),
                 GatewayOptions(limits=SandboxLimits(memory_bytes=1024 * MIB),
                                rate=RateLimitOptions("1000/second", "1000/second")))
    good = json.dumps({"row": c.holdout[0]}).encode()
    bad = json.dumps({"row": {"no_such_feature": 1}}).encode()

    async def run() -> None:
        try:
            warm = await gw.admit(_rid(app, "warm"), P, "revoked-race")  # caches the subject
            await gw.predict(_rid(app, "warm"), P, "revoked-race", good, request_id="warm",
                             admission=warm)
            admission = await gw.admit(_rid(app, "raced"), P, "revoked-race")
            # no await in between: admitted from the cache, the batch not yet decided
            c.ws.access.unbind(c.admin, "raceapp", "consumer", P)
            with pytest.raises((AccessDenied, NotVisible)):
                await gw.predict(_rid(app, "raced"), P, "revoked-race", bad,
                                 request_id="raced", admission=admission)
            assert [r["request_id"] for r in gw._log] == ["warm"]
            invalid = gw.metrics.refusals.labels("revoked-race", "invalid_input")._value.get()
            assert invalid == 0
        finally:
            await gw.close()

    asyncio.run(run())
    entries = c.ws.audit.query(AuditQuery(actor="raceapp", limit=100))
    raced = [(e.action, str(e.outcome)) for e in entries if e.request_id == "raced"]
    assert raced == [("predict", "denied")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_client_gone_between_admission_and_commit_leaves_the_decision_audited_and_no_task_stuck(
        workspace: Any) -> None:
    """The request's task is cancelled (client disconnect, shutdown of its handler) while
    its decision is still being committed: the decision is still recorded, the batch task
    ends, and later requests are admitted as before."""
    import sqlite3

    from bastion.serving.admission import BatchedAuthorizer

    w = workspace  # tests/conftest.py's WS
    ws, admin = w.ws, w.admin
    ws.access.create_principal(admin, "goneapp", PrincipalKind.SERVICE)
    ws.access.bind(admin, "goneapp", "consumer", P)
    app = ws.access.authenticate(ws.access.create_token(admin, "goneapp").secret)
    ws.access.cache = AccessCache(ttl=60)
    auth = BatchedAuthorizer(ws.access)
    resource = f"project/{P}/endpoint/scoring"
    asyncio.run(auth.authorize(_rid(app, "warm"), "predict", resource))
    blocker = sqlite3.connect(w.db_url.removeprefix("sqlite:///"), timeout=60)
    blocker.execute("BEGIN IMMEDIATE")

    async def main() -> None:
        async def request() -> None:
            admission = await auth.admit(_rid(app, "gone"), "predict", resource)
            await admission.recorded()

        task = asyncio.create_task(request())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        blocker.rollback()
        after = await asyncio.wait_for(auth.authorize(_rid(app, "after"), "predict",
                                                      resource), 30)
        assert after.allowed
        draining = auth._draining
        assert draining is not None
        await asyncio.wait_for(draining, 30)

    try:
        asyncio.run(main())
    finally:
        blocker.close()
    found = ws.audit.query(AuditQuery(actor="goneapp", action="predict", limit=10))
    assert sorted(e.request_id for e in found) == ["after", "gone", "warm"]
