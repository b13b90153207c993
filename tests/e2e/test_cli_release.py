"""``bastion model approve|reject|approvals`` and ``bastion gate`` through the real CLI.

A model registered by an ML engineer (no signed evaluation): a self-approval is
refused (exit 5), two reviewers approve, ``gate check`` prints every rule with its
evidence and exits 5 on the failing evaluation rules, a bad policy is refused with
its line (exit 2) and the old one stays, the admin waives the failing rules and
the gate passes (exit 0).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.crypto.keyring import MasterKeySource
from bastion.demo.data_steps import credit_data
from bastion.governance.gate_policy import DEFAULT_POLICY
from bastion.workspace import Bastion

CARD = """\
intended_use: Rank credit applications for manual review.
out_of_scope_uses: [Automated rejection]
owners: [erin@example.com]
risk_tier: high
limitations: [One bureau only]
"""


def _ok(cli: Any, *args: str, token: str | None = None) -> str:
    r = cli.run(*args, token=token)
    assert r.returncode == 0, f"bastion {' '.join(args)} -> {r.returncode}\n{r.output}"
    return str(r.output)


def _users(cli: Any) -> dict[str, str]:
    ws = Bastion.open(cli.home, MasterKeySource.from_env_key(cli.master_key_b64))
    try:
        admin = ws.access.authenticate(ws.stored_token())
        tokens = {}
        for name, role in (("erin", "ml-engineer"), ("rita", "reviewer"), ("ravi", "reviewer")):
            ws.access.create_principal(admin, name, PrincipalKind.USER)
            ws.access.bind(admin, name, role, "default")
            tokens[name] = ws.access.create_token(admin, name).secret
        return tokens
    finally:
        ws.close()


def test_cli_approvals_gate_policy_and_waivers(cli: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    _ok(cli, "init")
    tokens = _users(cli)
    _ok(cli, "data", "sources", "register", "bureau", "--dataset", "credit")
    batch = tmp_path / "train.csv"
    credit_data().drop_nulls().head(600).write_csv(batch)
    sha = hashlib.sha256(batch.read_bytes()).hexdigest()
    _ok(cli, "data", "ingest", str(batch), "-d", "credit", "-s", "bureau", "--sha256", sha,
        "--label", "Status")  # fmt: skip
    x = np.random.default_rng(2).normal(size=(100, 3))
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), tmp_path / "model.joblib")
    for who in ("erin", None):  # scorer@1 by erin, scorer@2 by the admin
        _ok(cli, "model", "register", "scorer", str(tmp_path / "model.joblib"), "--framework",
            "sklearn", "--trained-on", "credit@1", token=tokens.get(who or ""))  # fmt: skip
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    for v in (1, 2):
        _ok(cli, "model", "card-set", f"scorer@{v}", str(card), token=tokens["erin"])

    # the admin registered scorer@2: approving it is a self-approval
    r = cli.run("model", "approve", "scorer@2", "--reason", "looks fine to me, ship it")
    assert r.returncode == 5 and "self-approval refused" in r.output, r.output
    r = cli.run("model", "reject", "scorer@1", "--reason", "short", token=tokens["rita"])
    assert r.returncode == 2 and "at least 10 characters" in r.output, r.output
    r = cli.run("model", "approve", "scorer@1", "--reason", "card and lineage reviewed",
                "--card-version", "7", token=tokens["rita"])  # fmt: skip
    assert r.returncode == 5 and "card version 7" in r.output, r.output

    out = _ok(cli, "model", "approve", "scorer@1", "--reason", "card and lineage reviewed",
              token=tokens["rita"])  # fmt: skip
    assert "approvals 1/2" in out
    out = _ok(cli, "model", "approve", "scorer@1", "--reason", "second reviewer, agreed",
              token=tokens["ravi"])  # fmt: skip
    assert "approvals 2/2" in out and "not promoted" in out and "evaluation" in out
    listed = json.loads(_ok(cli, "model", "approvals", "scorer@1", "--json"))
    assert [a["principal"] for a in listed["approvals"]] == ["rita", "ravi"]
    assert all(a["signature_verified"] and a["counts"] for a in listed["approvals"])
    table = _ok(cli, "model", "approvals", "scorer@1")
    assert "signature verified" in table and "rita" in table

    r = cli.run("gate", "check", "scorer@1")
    assert r.returncode == 5, r.output
    assert "FAIL   evaluation" in r.output and "PASS   approvals" in r.output
    assert "PASS   signature" in r.output and "evidence: audit#" in r.output
    assert "FAILED scorer@1" in r.output
    r = cli.run("model", "promote", "scorer@1", token=tokens["rita"])
    assert r.returncode == 5 and "gate failed" in r.output, r.output

    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_POLICY.replace("expr: facts.scan.clean", "expr: facts.scan.cleen"))
    r = cli.run("gate", "policy", "set", str(bad))
    assert r.returncode == 2 and "line 17" in r.output and "facts.scan.cleen" in r.output
    assert "version 0" in _ok(cli, "gate", "policy", "show")
    good = tmp_path / "good.yaml"
    good.write_text(DEFAULT_POLICY.replace("min_accuracy: 0.6", "min_accuracy: 0.65"))
    assert "version 1" in _ok(cli, "gate", "policy", "set", str(good))
    assert "min_accuracy: 0.65" in _ok(cli, "gate", "policy", "show")
    assert json.loads(_ok(cli, "gate", "policy", "history", "--json"))[0]["version"] == 1
    assert "facts.approvals.valid" in _ok(cli, "gate", "policy", "show", "--facts")

    r = cli.run("gate", "waive", "scorer@1", "--rule", "evaluation", "--reason",
                "evaluated offline by model risk")  # fmt: skip
    assert r.returncode == 5 and "needs an expiry" in r.output
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).date().isoformat()
    for rule in ("evaluation", "fairness", "robustness"):
        _ok(cli, "gate", "waive", "scorer@1", "--rule", rule, "--reason",
            "evaluated offline by model risk, ticket MR-7", "--expires", until)  # fmt: skip
    result = json.loads(_ok(cli, "gate", "check", "scorer@1", "--json"))
    assert result["passed"] is True
    assert {r["rule"]: r["outcome"] for r in result["rules"]}["evaluation"] == "waived"
    assert len(json.loads(_ok(cli, "gate", "waivers", "--json"))) == 3
    assert "approved" in _ok(cli, "model", "promote", "scorer@1", token=tokens["rita"])
    assert json.loads(_ok(cli, "model", "approvals", "scorer@1", "--json"))["stage"] == "approved"


pytestmark = pytest.mark.filterwarnings("ignore")
