"""A request the access cache admitted but whose audited decision (the batch's, the one
that counts) refuses it leaves nothing behind but its refusal, on the error paths too: no
prediction-log row, no ``predict.refused`` entry, no refusal counted in the metrics.
The gateway is driven as the predict route drives it (admit, then predict with the
admission), on a real workspace and a real sandboxed worker."""

from __future__ import annotations

import asyncio
import functools
import json

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
