"""Approvals, the gate, its policy and waivers on a real server on loopback.

Same permissions and refusals as the CLI: a non-reviewer is 403, a replayed nonce
and a stale digest are 403 ``approval_refused``, a policy that does not compile is
400 with its line, a waiver without expiry is 403 ``waiver_refused``.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.crypto.keyring import MasterKeySource
from bastion.governance.gate_policy import DEFAULT_POLICY
from bastion.workspace import Bastion
from conftest import start_server, stop_server

CARD = """\
intended_use: Rank credit applications.
out_of_scope_uses: [Automated rejection]
owners: [erin@example.com]
risk_tier: high
limitations: [One bureau only]
"""


@pytest.fixture
def release_server(tmp_path: Path, master_key_b64: str) -> Iterator[tuple[Any, dict[str, str]]]:
    home = tmp_path / "srv-ws"
    ws, issued = Bastion.init(home, MasterKeySource.from_env_key(master_key_b64))
    tokens = {"admin": issued.secret}
    try:
        admin = ws.access.authenticate(issued.secret)
        for name, role in (("erin", "ml-engineer"), ("rita", "reviewer"), ("ravi", "reviewer"),
                           ("olga", "auditor")):  # fmt: skip
            ws.access.create_principal(admin, name, PrincipalKind.USER)
            ws.access.bind(admin, name, role, "default")
            tokens[name] = ws.access.create_token(admin, name).secret
    finally:
        ws.close()
    srv = start_server(home, master_key_b64, issued.secret)
    try:
        yield srv, tokens
    finally:
        stop_server(srv.proc)


def test_api_approvals_gate_policy_and_waivers(release_server: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    srv, tokens = release_server
    base = f"{srv.url}/v1/projects/default"
    model = f"{base}/models/scorer/versions"

    def h(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[who]}"}

    x = np.random.default_rng(2).normal(size=(100, 3))
    buf = io.BytesIO()
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), buf)
    with httpx.Client(verify=False, timeout=60) as c:
        r = c.post(model, params={"framework": "sklearn", "filename": "m.joblib"},
                   content=buf.getvalue(), headers=h("erin"))  # fmt: skip
        assert r.status_code == 201, r.text
        r = c.put(f"{model}/1/card", content=CARD.encode(),
                  headers={**h("erin"), "Content-Type": "application/yaml"})  # fmt: skip
        assert r.status_code == 201, r.text
        shown = c.get(f"{model}/1/card", headers=h("rita")).json()
        body = {"reason": "card and lineage reviewed", "root_digest": shown["facts"]["root_digest"],
                "card_version": shown["card_version"], "nonce": "api-nonce-0001"}  # fmt: skip

        r = c.post(f"{model}/1/approvals", json=body, headers=h("olga"))
        assert r.status_code == 403 and "model.approve" in r.text
        r = c.post(f"{model}/1/approvals", json={**body, "root_digest": "e" * 64},
                   headers=h("rita"))  # fmt: skip
        assert r.status_code == 403 and "approval_refused" in r.text
        r = c.post(f"{model}/1/approvals", json=body, headers=h("rita"))
        assert r.status_code == 201, r.text
        assert (r.json()["counted"], r.json()["required"]) == (1, 2)
        r = c.post(f"{model}/1/approvals", json=body, headers=h("ravi"))
        assert r.status_code == 403 and "replayed approval" in r.text
        r = c.post(f"{model}/1/approvals", json={**body, "decision": "reject", "reason": "no",
                                                 "nonce": None}, headers=h("ravi"))  # fmt: skip
        assert r.status_code == 400 and "at least 10 characters" in r.text
        listed = c.get(f"{model}/1/approvals", headers=h("olga")).json()
        assert [a["principal"] for a in listed["approvals"]] == ["rita"]
        assert listed["approvals"][0]["signature_verified"] is True

        gate = c.post(f"{model}/1/gate", headers=h("olga"))
        assert gate.status_code == 200, gate.text
        outcomes = {r["rule"]: r["outcome"] for r in gate.json()["rules"]}
        assert gate.json()["passed"] is False
        assert outcomes["approvals"] == "fail" and outcomes["signature"] == "pass"
        assert c.post(f"{model}/1/gate", headers=h("rita")).status_code == 200

        bad = DEFAULT_POLICY.replace("max_fairness_gap: 0.25", "max_fairness_gap: 3")
        r = c.put(f"{base}/release-policy", content=bad.encode(), headers=h("admin"))
        assert r.status_code == 400 and "line 9" in r.text and "out of range" in r.text
        r = c.put(f"{base}/release-policy", content=DEFAULT_POLICY.encode(), headers=h("rita"))
        assert r.status_code == 403
        assert c.get(f"{base}/release-policy", headers=h("olga")).json()["version"] == 0
        r = c.put(f"{base}/release-policy", content=DEFAULT_POLICY.encode(), headers=h("admin"))
        assert r.status_code == 201 and r.json()["version"] == 1
        assert [p["version"] for p in c.get(f"{base}/release-policy/history",
                                            headers=h("olga")).json()] == [1]  # fmt: skip

        waiver = {"rule": "approvals", "reason": "committee quorum waived for the pilot"}
        r = c.post(f"{model}/1/waivers", json=waiver, headers=h("admin"))
        assert r.status_code == 403 and "needs an expiry" in r.text
        until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).date().isoformat()
        r = c.post(f"{model}/1/waivers", json={**waiver, "expires": until}, headers=h("rita"))
        assert r.status_code == 403 and "waiver.grant" in r.text
        r = c.post(f"{model}/1/waivers", json={**waiver, "expires": until}, headers=h("admin"))
        assert r.status_code == 201, r.text
        assert len(c.get(f"{base}/waivers", headers=h("olga")).json()) == 1
        rules = c.post(f"{model}/1/gate", headers=h("olga")).json()["rules"]
        outcomes = {r["rule"]: r["outcome"] for r in rules}
        assert outcomes["approvals"] == "waived"
        assert httpx.post(f"{model}/1/gate", verify=False).status_code == 401
