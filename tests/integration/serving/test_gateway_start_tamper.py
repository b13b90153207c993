"""A version whose stored artifact was tampered with before a gateway first serves it (a
gateway restarted after the tamper) is revoked when its worker would start, audited, and
never served: the decryption failure (BlobCorrupted) counts like a bad signature."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import pytest
from serving_fixtures import Credit

from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import IntegrityError
from bastion.serving.gateway import Gateway, GatewayOptions
from bastion.serving.ratelimit import RateLimitOptions
from bastion.serving.sandbox import MIB, SandboxLimits

P = "default"


def _flip_model_blob(c: Credit) -> None:
    target = next(f for f in c.v1.manifest if f.path.endswith(".joblib"))
    assert all(target.digest != f.digest for f in c.v2.manifest)
    path: Path = c.ws.home / "blobs" / "objects" / target.digest[:2] / f"{target.digest}.enc"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("credit", ["sqlite"], indirect=True)
def test_artifact_tampered_before_the_gateway_starts_its_worker_is_revoked_not_served(
        credit: Credit) -> None:
    c = credit
    deployment = c.ws.deployments.deploy(c.admin, P, c.v1.ref, "tampered")
    _flip_model_blob(c)
    gw = Gateway(c.ws.access, c.ws.deployments, c.ws.models, c.ws.scratch.workdir,
                 functools.partial(c.ws.keyring.keyed_digest, "prediction-features"),
                 GatewayOptions(limits=SandboxLimits(memory_bytes=1024 * MIB),
                                rate=RateLimitOptions("1000/second", "1000/second")))
    body = json.dumps({"row": c.holdout[0]}).encode()

    async def run() -> None:
        try:
            admission = await gw.admit(c.admin, P, "tampered")
            with pytest.raises(IntegrityError):
                await gw.predict(c.admin, P, "tampered", body, request_id="t1",
                                 admission=admission)
            assert list(gw.workers()) == []
        finally:
            await gw.close()

    asyncio.run(run())
    history = c.ws.deployments.status(c.admin, P, "tampered").history
    assert next(d for d in history if d.id == deployment.id).state.value == "revoked"
    revoked = c.ws.audit.query(AuditQuery(action="deployment.revoked"))
    assert revoked and revoked[-1].actor == "system:gateway"
